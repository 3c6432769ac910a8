// Activation quantizers against closed forms (per-token, per-group, per-tensor static), the
// observers as documented in act_quant.h, and the OS+-style q-config files (presets load, bad
// keys name themselves and the file).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/quant/act_quant.h"
#include "core/quant/qconfig_yaml.h"
#include "core/util/error.h"

namespace {

using qs::quant::ActObserver;
using qs::quant::ActQuantizer;
using qs::quant::ActQuantOptions;
using qs::quant::Granularity;

// Closed form of one asymmetric/symmetric b-bit fake-quant of v with range [lo, hi].
float closedForm(float v, double lo, double hi, int bits, bool sym) {
  if (sym) {
    const double qmax = std::pow(2.0, bits - 1) - 1;
    double scale = std::max(std::abs(lo), std::abs(hi)) / qmax;
    if (scale == 0) scale = 1;
    const double q = std::clamp(std::nearbyint(v / scale), -qmax - 1, qmax);
    return static_cast<float>(q * scale);
  }
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  const double qmax = std::pow(2.0, bits) - 1;
  double scale = (hi - lo) / qmax;
  if (scale == 0) scale = 1;
  const double zero = std::nearbyint(-lo / scale);
  const double q = std::clamp(std::nearbyint(v / scale) + zero, 0.0, qmax);
  return static_cast<float>((q - zero) * scale);
}

at::Tensor randn(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen);
}

TEST(ActQuantTest, PerTokenMatchesClosedForm) {
  at::Tensor x = randn({2, 5, 8}, 1) * 3 + 0.7;
  ActQuantizer q(ActQuantOptions().withBits(4).withGranularity(Granularity::PerToken));
  ASSERT_TRUE(q.options().isDynamic());
  at::Tensor y = q.apply(x);
  auto xa = x.accessor<float, 3>();
  auto ya = y.accessor<float, 3>();
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 5; ++t) {
      double lo = 1e30, hi = -1e30;
      for (int c = 0; c < 8; ++c) lo = std::min<double>(lo, xa[b][t][c]), hi = std::max<double>(hi, xa[b][t][c]);
      for (int c = 0; c < 8; ++c) EXPECT_NEAR(ya[b][t][c], closedForm(xa[b][t][c], lo, hi, 4, false), 1e-5);
    }
}

TEST(ActQuantTest, PerGroupMatchesClosedForm) {
  at::Tensor x = randn({3, 12}, 2) * 2;
  ActQuantizer q(ActQuantOptions().withBits(5).withSymmetric(true).withGranularity(Granularity::PerGroup).withGroupSize(4));
  at::Tensor y = q.apply(x);
  auto xa = x.accessor<float, 2>();
  auto ya = y.accessor<float, 2>();
  for (int t = 0; t < 3; ++t)
    for (int g = 0; g < 3; ++g) {
      double lo = 1e30, hi = -1e30;
      for (int c = 4 * g; c < 4 * g + 4; ++c) lo = std::min<double>(lo, xa[t][c]), hi = std::max<double>(hi, xa[t][c]);
      for (int c = 4 * g; c < 4 * g + 4; ++c) EXPECT_NEAR(ya[t][c], closedForm(xa[t][c], lo, hi, 5, true), 1e-5);
    }
  // Groups that do not divide the width are a clear error.
  ActQuantizer bad(ActQuantOptions().withGranularity(Granularity::PerGroup).withGroupSize(5));
  EXPECT_THROW(bad.apply(x), qs::Error);
}

ActQuantizer observed(ActObserver o) {
  ActQuantizer q(ActQuantOptions().withBits(8).withObserver(o));
  q.observe(at::tensor({-1.0f, 0.5f, 2.0f}));
  q.observe(at::tensor({-3.0f, 0.0f, 1.0f}));
  q.finalize();
  return q;
}

TEST(ActQuantTest, MinMaxObserversFollowTheirFormulas) {
  auto mm = observed(ActObserver::MinMax);
  EXPECT_FLOAT_EQ(mm.lo().item<float>(), -3.0f);
  EXPECT_FLOAT_EQ(mm.hi().item<float>(), 2.0f);
  auto avg = observed(ActObserver::AvgMinMax);
  EXPECT_FLOAT_EQ(avg.lo().item<float>(), -2.0f);
  EXPECT_FLOAT_EQ(avg.hi().item<float>(), 1.5f);
  auto ema = observed(ActObserver::EmaMinMax);  // r = 0.9
  EXPECT_NEAR(ema.lo().item<float>(), 0.9 * -1 + 0.1 * -3, 1e-6);
  EXPECT_NEAR(ema.hi().item<float>(), 0.9 * 2 + 0.1 * 1, 1e-6);
  // The static grid is the closed form over [lo, hi], and values outside clamp to it.
  at::Tensor y = mm.apply(at::tensor({-5.0f, 0.3f, 1.7f}));
  EXPECT_NEAR(y[0].item<float>(), closedForm(-5.0f, -3, 2, 8, false), 1e-6);
  EXPECT_NEAR(y[1].item<float>(), closedForm(0.3f, -3, 2, 8, false), 1e-6);
  EXPECT_NEAR(y[2].item<float>(), closedForm(1.7f, -3, 2, 8, false), 1e-6);
}

TEST(ActQuantTest, PercentileIsTheNearestRankQuantile) {
  ActQuantizer q(ActQuantOptions().withObserver(ActObserver::Percentile).withPercentile(0.99));
  at::Tensor x = at::randperm(1001, at::kLong).to(at::kFloat);  // 0..1000 shuffled
  q.observe(x);
  q.observe(x * 2);
  q.finalize();
  // Means over the two batches of v_round(0.01 * 1000) = 10 and v_990.
  EXPECT_FLOAT_EQ(q.lo().item<float>(), (10.0f + 20.0f) / 2);
  EXPECT_FLOAT_EQ(q.hi().item<float>(), (990.0f + 1980.0f) / 2);
}

TEST(ActQuantTest, MseClipsAnOutlierButNotUniformData) {
  at::Tensor x = randn({20000}, 3);
  x[0] = 12.0f;  // one outlier: clipping it costs less than the rounding error of a wide grid
  ActQuantizer q(ActQuantOptions().withBits(4).withSymmetric(true).withObserver(ActObserver::Mse));
  q.observe(x);
  q.finalize();
  EXPECT_LT(q.hi().item<float>(), 0.6 * 12);
  EXPECT_GE(q.hi().item<float>(), 0.2 * 12 - 1e-4);  // never below 1 - maxShrink
  // Its range beats min/max on the documented objective.
  auto err = [&](const ActQuantizer& qq) { return (qq.apply(x) - x).pow(2).sum().item<double>(); };
  ActQuantizer mm(ActQuantOptions().withBits(4).withSymmetric(true).withObserver(ActObserver::MinMax));
  mm.observe(x);
  mm.finalize();
  EXPECT_LT(err(q), err(mm));
  // Uniform data has nothing to clip at 8 bits.
  ActQuantizer u(ActQuantOptions().withBits(8).withObserver(ActObserver::Mse));
  u.observe(at::linspace(-1, 1, 4001));
  u.finalize();
  EXPECT_GE(u.hi().item<float>(), 0.97f);
}

TEST(ActQuantTest, StaticNeedsCalibrationDynamicDoesNot) {
  ActQuantizer s{ActQuantOptions()};
  EXPECT_THROW(s.apply(at::ones({2, 3})), qs::Error);
  EXPECT_THROW(s.finalize(), qs::Error);
  ActQuantizer d(ActQuantOptions().withDynamic(true).withBits(3));
  at::Tensor x = at::linspace(-1, 2.5, 9);  // scale 0.5, zero-point 2: no float32/float64 tie
  at::Tensor y = d.apply(x);
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(y[i].item<float>(), closedForm(x[i].item<float>(), -1, 2.5, 3, false), 1e-6);
  EXPECT_THROW(ActQuantizer(ActQuantOptions().withBits(1)), qs::Error);
  EXPECT_EQ(ActQuantOptions().describe(), "a8 per_tensor asym ema_minmax");
}

std::string preset(const std::string& name) { return std::string(QS_SOURCE_DIR) + "/resources/presets/" + name; }

TEST(QConfigTest, PresetsLoad) {
  auto i8 = qs::quant::loadQConfig(preset("osplus_int8.yaml"));
  EXPECT_EQ(i8.act.bits, 8);
  EXPECT_FALSE(i8.act.symmetric);
  EXPECT_EQ(i8.act.granularity, Granularity::PerTensor);
  EXPECT_EQ(i8.act.observer, ActObserver::EmaMinMax);
  EXPECT_EQ(i8.weight.bits, 8);
  EXPECT_TRUE(i8.weight.symmetric);
  EXPECT_EQ(i8.weight.chAxis, 0);
  EXPECT_TRUE(i8.migrate);
  EXPECT_TRUE(i8.isRemovePadding);
  EXPECT_EQ(i8.calibrate, 128);
  EXPECT_EQ(qs::quant::loadQConfig(preset("osplus_int6.yaml")).act.bits, 6);
  auto tok = qs::quant::loadQConfig(preset("osplus_int4_token.yaml"));
  EXPECT_EQ(tok.act.granularity, Granularity::PerToken);
  EXPECT_EQ(tok.weight.bits, 4);
  auto grp = qs::quant::loadQConfig(preset("osplus_int4_group.yaml"));
  EXPECT_EQ(grp.act.granularity, Granularity::PerGroup);
  EXPECT_EQ(grp.act.groupSize, 64);
}

void expectError(const std::string& yaml, const std::string& needle) {
  try {
    qs::quant::parseQConfig(yaml, "cfg.yaml");
    FAIL() << "accepted: " << yaml;
  } catch (const qs::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cfg.yaml"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

TEST(QConfigTest, BadKeysAreClearErrors) {
  expectError("quant:\n  a_qconfig:\n    bits: 8\n", "quant.a_qconfig.bits");
  expectError("quant:\n  migrte: true\n", "quant.migrte");
  expectError("quant:\n  w_qconfig:\n    bitz: 4\n", "quant.w_qconfig.bitz");
  expectError("quant:\n  a_qconfig:\n    quantizer: LSQFakeQuantize\n", "LSQFakeQuantize");
  expectError("quant:\n  a_qconfig:\n    observer: Magic\n", "Magic");
  expectError("quant:\n  a_qconfig:\n    bit: 12\n", "bit");
  expectError("other: 1\n", "other");
  expectError("quant:\n  calibrate: [1]\n", "quant.calibrate");
  expectError("quant:\n  quantize_matmul: maybe\n", "quant.quantize_matmul");
  EXPECT_FALSE(qs::quant::parseQConfig("quant:\n  migrate: true\n", "q.yaml").quantizeMatmul);
  EXPECT_TRUE(qs::quant::parseQConfig("quant:\n  quantize_matmul: true\n", "q.yaml").quantizeMatmul);
  EXPECT_THROW(qs::quant::loadQConfig("/nonexistent/q.yaml"), qs::Error);
}

TEST(QConfigTest, ExceptQuantizerMatchesSuffixes) {
  auto c = qs::quant::parseQConfig("quant:\n  except_quantizer: [fc2, layers.0.self_attn.q_proj]\n", "c.yaml");
  EXPECT_TRUE(qs::quant::siteExcluded("layers.3.fc2", c.exceptQuantizer));
  EXPECT_TRUE(qs::quant::siteExcluded("layers.0.self_attn.q_proj", c.exceptQuantizer));
  EXPECT_FALSE(qs::quant::siteExcluded("layers.1.self_attn.q_proj", c.exceptQuantizer));
  EXPECT_FALSE(qs::quant::siteExcluded("layers.3.xfc2", c.exceptQuantizer));
}

}  // namespace
