// OS+ (os_plus.h), SmoothQuant and model activation quantization (act_calibration.h): the
// threshold search finds the optimum of its objective on a constructed case; on a tiny OPT with
// planted asymmetric outlier channels, OS+ keeps the FP logits and beats naive per-tensor
// W8A8 / W6A6 by a wide margin.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>

#include "core/algo/act_calibration.h"
#include "core/algo/os_plus.h"
#include "core/algo/smoothquant.h"
#include "core/model/model.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

using qs::algo::OsPlusOptions;
using qs::quant::ActQuantOptions;
using qs::quant::QuantSpec;

at::Generator gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// Test-side objective, written out independently: per-tensor asymmetric activation fake-quant
// over the tokens' own min/max, per-row symmetric weight fake-quant.
double bruteObjective(const at::Tensor& x, const at::Tensor& z, const at::Tensor& s, const at::Tensor& w, int abits,
                      int wbits) {
  at::Tensor xm = (x - z) / s;
  const double lo = std::min(0.0, xm.min().item<double>()), hi = std::max(0.0, xm.max().item<double>());
  const double as = (hi - lo) / (std::pow(2.0, abits) - 1), az = std::nearbyint(-lo / as);
  at::Tensor xq = ((xm / as).round() + az).clamp(0, std::pow(2.0, abits) - 1).sub(az).mul(as);
  at::Tensor ws = w * s;
  at::Tensor wscale = std::get<0>(ws.abs().max(1, true)) / (std::pow(2.0, wbits - 1) - 1);
  at::Tensor wq = (ws / wscale).round().clamp(-std::pow(2.0, wbits - 1), std::pow(2.0, wbits - 1) - 1) * wscale;
  at::Tensor y = at::matmul(xq, wq.t()) + at::matmul(w, z);
  return (y - at::matmul(x, w.t())).pow(2).sum().item<double>();
}

// 16 channels: 13 ordinary (|x| ~ 1), three asymmetric outliers of very different widths, and a
// consumer w; z and r the channels' shift and half-range; the search assumes 6-bit activations
// and 6-bit symmetric weights (as bruteObjective).
struct Planted {
  at::Tensor x, w, z, r;
  OsPlusOptions o;
};
Planted plantedOutliers() {
  auto g = gen(0);
  Planted p;
  p.x = at::randn({512, 16}, g);
  p.x.select(1, 3).mul_(40).add_(60);
  p.x.select(1, 7).mul_(12).sub_(20);
  p.x.select(1, 11).mul_(5).add_(8);
  p.w = at::randn({24, 16}, g) * 0.2;
  at::Tensor mn = std::get<0>(p.x.min(0)), mx = std::get<0>(p.x.max(0));
  p.z = (mx + mn) / 2;
  p.r = (mx - mn) / 2;
  p.o.act = ActQuantOptions().withBits(6);
  p.o.weight = QuantSpec().withBits(6).withSymmetric(true);
  return p;
}

TEST(OsPlusTest, ThresholdSearchFindsTheOptimumOfItsObjective) {
  c10::InferenceMode guard;
  auto [x, w, z, r, o] = plantedOutliers();
  o.search = qs::algo::OsPlusSearch::Grid;
  auto ts = qs::algo::searchThreshold(x, z, r, {{w, {}}}, o);
  ASSERT_EQ(ts.candidates.size(), 101u);
  EXPECT_NEAR(ts.candidates.front(), r.min().item<double>(), 1e-5);
  EXPECT_NEAR(ts.candidates.back(), r.max().item<double>(), 1e-3);
  // Independent brute force over the same grid.
  size_t best = 0;
  std::vector<double> brute;
  for (size_t k = 0; k < ts.candidates.size(); ++k) {
    brute.push_back(bruteObjective(x, z, (r / ts.candidates[k]).clamp_min(1.0), w, 6, 6));
    // float32 vs the test's float64 zero-points can round a few boundary values differently.
    EXPECT_NEAR(brute.back(), ts.errors[k], 5e-3 * brute.back() + 1e-6) << "candidate " << k;
    if (brute.back() < brute[best]) best = k;
  }
  const size_t chosen = static_cast<size_t>(
      std::find(ts.candidates.begin(), ts.candidates.end(), ts.threshold) - ts.candidates.begin());
  ASSERT_LT(chosen, ts.candidates.size());
  EXPECT_LE(brute[chosen], brute[best] * 1.005) << "chosen t " << ts.threshold << ", brute optimum "
                                                << ts.candidates[best];
  EXPECT_LE(std::abs(static_cast<double>(chosen) - static_cast<double>(best)), 2.0);
  // The optimum is a real trade-off: inside the grid, far better than no scaling (t = max).
  EXPECT_GT(best, 0u);
  EXPECT_LT(best, ts.candidates.size() - 1);
  EXPECT_LT(ts.error, 0.5 * brute.back());
  // Channels below t are left alone, the others scaled to range t.
  at::Tensor after = r / ts.scale;
  EXPECT_LE(after.max().item<double>(), ts.threshold * (1 + 1e-5));
}

// The default coarse-to-fine search evaluates about a fifth of the grid and lands on the grid's
// own optimum of this objective (the same planted outliers as above; the grid search is the
// reference): every candidate it tried is a grid point with the grid's error.
TEST(OsPlusTest, RefinedSearchFindsTheGridOptimumWithAFifthOfTheEvaluations) {
  c10::InferenceMode guard;
  auto [x, w, z, r, o] = plantedOutliers();
  o.search = qs::algo::OsPlusSearch::Grid;
  const auto grid = qs::algo::searchThreshold(x, z, r, {{w, {}}}, o);
  o.search = qs::algo::OsPlusSearch::Refine;
  const auto refined = qs::algo::searchThreshold(x, z, r, {{w, {}}}, o);
  EXPECT_EQ(qs::algo::thresholdEvaluations(o), 19);  // 11 coarse (every 10th) + 2 x (5, 3, 2, 1)
  EXPECT_LE(refined.candidates.size(), 19u);
  EXPECT_GE(refined.candidates.size(), 15u);
  for (size_t k = 0; k < refined.candidates.size(); ++k) {
    auto it = std::find(grid.candidates.begin(), grid.candidates.end(), refined.candidates[k]);
    ASSERT_NE(it, grid.candidates.end()) << "candidate " << refined.candidates[k] << " is not a grid point";
    EXPECT_EQ(refined.errors[k], grid.errors[static_cast<size_t>(it - grid.candidates.begin())]);
  }
  EXPECT_EQ(refined.threshold, grid.threshold);
  EXPECT_EQ(refined.error, grid.error);
  // Ascending thresholds, as the grid reports them.
  EXPECT_TRUE(std::is_sorted(refined.candidates.begin(), refined.candidates.end()));
  // A grid of at most 10 steps is searched candidate by candidate either way.
  o.searchSteps = 10;
  EXPECT_EQ(qs::algo::thresholdEvaluations(o), 11);
  EXPECT_EQ(qs::algo::searchThreshold(x, z, r, {{w, {}}}, o).candidates.size(), 11u);
}

// Tiny OPT whose norms produce asymmetric outlier channels (large gain and offset).
std::unique_ptr<qs::model::Model> outlierOpt(const std::string& dir) {
  auto m = qs::model::openModel(dir);
  for (int b = 0; b < m->numBlocks(); ++b)
    for (int which = 1; which <= 2; ++which) {
      auto p = m->normParams(b, which);
      for (int64_t c : {3, 17, 40}) {
        p.weight[c] = 25.0 + 5 * c / 40.0;
        p.bias[c] = 30.0 + c;
      }
      m->setNormParams(b, which, p);
    }
  return m;
}

at::Tensor ids(int64_t n, int64_t t, uint64_t seed) {
  auto g = gen(seed);
  return at::randint(0, 256, {n, t}, g, at::kLong);
}

double relError(const at::Tensor& a, const at::Tensor& b) { return (a - b).norm().item<double>() / b.norm().item<double>(); }

// Quantizes weights (RTN per channel) and activations (per-tensor static min/max) and returns
// the logits' relative error to `fp`.
double quantizedError(qs::model::Model& m, int wbits, int abits, const at::Tensor& calib, const at::Tensor& eval,
                      const at::Tensor& fp) {
  qs::algo::quantizeWeightsRtn(m, QuantSpec().withBits(wbits).withSymmetric(true));
  qs::algo::ActQuantSession session(m, ActQuantOptions().withBits(abits).withObserver(qs::quant::ActObserver::MinMax));
  session.calibrate(calib);
  return relError(m.forward(eval), fp);
}

TEST(OsPlusTest, BeatsNaivePerTensorOnPlantedOutliers) {
  const std::string dir = qs::test::writeTinyOpt(qs::test::tempDir("osp_outliers"));
  const at::Tensor calib = ids(16, 32, 1), eval = ids(4, 32, 2);
  const at::Tensor fp = outlierOpt(dir)->forward(eval);
  for (int bits : {8, 6}) {
    auto naive = outlierOpt(dir);
    const double eNaive = quantizedError(*naive, bits, bits, calib, eval, fp);

    auto osp = outlierOpt(dir);
    OsPlusOptions o;
    o.act = ActQuantOptions().withBits(bits);
    o.weight = QuantSpec().withBits(bits).withSymmetric(true);
    auto report = qs::algo::applyOsPlus(*osp, calib, o);
    ASSERT_EQ(report.pairs.size(), 3u * 2);
    EXPECT_LT(relError(osp->forward(eval), fp), 1e-4) << "OS+ must keep the FP model";
    for (const auto& p : report.pairs) {
      EXPECT_LE(p.errorAfter, p.errorBefore * (1 + 1e-9)) << p.name;
      if (p.name.find("ln") != std::string::npos) {
        EXPECT_LT(p.maxAbsAfter, 0.5 * p.maxAbsBefore) << p.name;
      }
    }
    const double eOsp = quantizedError(*osp, bits, bits, calib, eval, fp);

    auto sq = outlierOpt(dir);
    qs::algo::applySmoothQuant(*sq, calib, qs::algo::SmoothQuantOptions());
    EXPECT_LT(relError(sq->forward(eval), fp), 1e-4) << "SmoothQuant must keep the FP model";
    const double eSq = quantizedError(*sq, bits, bits, calib, eval, fp);
    std::cout << "[osplus] W" << bits << "A" << bits << " rel. logit error: naive " << eNaive << ", SmoothQuant "
              << eSq << ", OS+ " << eOsp << "\n";
    EXPECT_LT(eOsp, 0.5 * eNaive) << "W" << bits << "A" << bits;
  }
}

TEST(OsPlusTest, ActivationQuantizationChangesAndRestoresTheModel) {
  const std::string dir = qs::test::writeTinyOpt(qs::test::tempDir("osp_session"));
  auto m = qs::model::openModel(dir);
  const at::Tensor e = ids(2, 16, 3);
  const at::Tensor fp = m->forward(e);
  {
    qs::algo::ActQuantSession s(*m, ActQuantOptions().withBits(4), {"fc2"});
    EXPECT_EQ(s.quantizer("layers.0.fc2"), nullptr);
    EXPECT_EQ(s.quantizer("layers.0.self_attn.q_proj"), s.quantizer("layers.0.self_attn.v_proj"));
    EXPECT_THROW(m->forward(e), qs::Error);  // static ranges not calibrated yet
    s.calibrate(ids(4, 16, 4));
    EXPECT_TRUE(s.quantizer("layers.1.fc1")->calibrated());
    EXPECT_GT(relError(m->forward(e), fp), 1e-3);
  }
  EXPECT_EQ(relError(m->forward(e), fp), 0.0);  // the session removed its transform
}

// Matmul operands: with every Linear input excluded, the session's logits equal those of the
// model with a hand-installed per-token fake-quant (ActQuantizer::apply, tested against the
// closed form above) on exactly the non-excluded q/k/v operands.
TEST(OsPlusTest, MatmulOperandsAreQuantizedWhenAsked) {
  c10::InferenceMode guard;
  const std::string dir = qs::test::writeTinyOpt(qs::test::tempDir("osp_matmul"));
  auto m = qs::model::openModel(dir);
  const at::Tensor e = ids(2, 16, 5);
  const at::Tensor fp = m->forward(e);
  const auto opts = ActQuantOptions().withBits(4).withGranularity(qs::quant::Granularity::PerToken);
  const std::vector<std::string> linears = {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"};
  std::vector<std::string> except = linears;
  except.push_back("layers.1.self_attn.k_matmul");
  at::Tensor got;
  {
    qs::algo::ActQuantSession s(*m, opts, except, true);
    EXPECT_EQ(s.numQuantizers(), 5);  // 2 blocks x q/k/v, one excluded
    EXPECT_EQ(s.quantizer("layers.0.fc1"), nullptr);
    EXPECT_EQ(s.quantizer("layers.1.self_attn.k_matmul"), nullptr);
    EXPECT_NE(s.quantizer("layers.0.self_attn.q_matmul"), s.quantizer("layers.0.self_attn.k_matmul"));
    got = m->forward(e);
  }
  EXPECT_EQ(relError(m->forward(e), fp), 0.0);  // the session removed its matmul transform
  qs::quant::ActQuantizer reference(opts);
  m->setMatmulTransform([&](const std::string& site, const at::Tensor& x) {
    return site == "layers.1.self_attn.k_matmul" ? x : reference.apply(x);
  });
  const at::Tensor want = m->forward(e);
  m->setMatmulTransform({});
  EXPECT_GT(relError(got, fp), 1e-3);
  EXPECT_TRUE(at::allclose(got, want, 1e-5, 1e-6));
  // Without the flag nothing but the Linear inputs is touched.
  qs::algo::ActQuantSession plain(*m, opts, linears);
  EXPECT_EQ(plain.numQuantizers(), 0);
  EXPECT_EQ(relError(m->forward(e), fp), 0.0);
}

TEST(OsPlusTest, SmoothQuantScalesFollowTheFormula) {
  at::Tensor xMax = at::tensor({4.0f, 1.0f, 9.0f});
  at::Tensor w1 = at::tensor({1.0f, -2.0f, 0.5f}).view({1, 3}), w2 = at::tensor({-3.0f, 1.0f, 0.25f}).view({1, 3});
  at::Tensor s = qs::algo::smoothQuantScales(xMax, {w1, w2}, qs::algo::SmoothQuantOptions().withAlpha(0.5));
  EXPECT_NEAR(s[0].item<float>(), std::sqrt(4.0) / std::sqrt(3.0), 1e-6);
  EXPECT_NEAR(s[1].item<float>(), std::sqrt(1.0) / std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(s[2].item<float>(), std::sqrt(9.0) / std::sqrt(0.5), 1e-6);
  EXPECT_THROW(qs::algo::smoothQuantScales(xMax, {w1}, qs::algo::SmoothQuantOptions().withAlpha(2)), qs::Error);
}

}  // namespace
