// QuantSpec keys/validation and the range observers (core/quant/quant_spec.h).
#include "core/quant/quant_spec.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "core/util/error.h"
#include "tests/support/expect_error.h"

namespace qs::quant {
namespace {

using qs::test::expectError;

TEST(QuantSpec, Defaults) {
  const QuantSpec s;
  EXPECT_EQ(s.bits, 4);
  EXPECT_FALSE(s.symmetric);
  EXPECT_EQ(s.chAxis, 0);
  EXPECT_EQ(s.quantizer, "FixedFakeQuantize");
  EXPECT_EQ(s.observer, Observer::MinMax);
  EXPECT_EQ(s.groupSize, -1);
  EXPECT_FALSE(s.actOrder);
  EXPECT_FALSE(s.staticGroups);
  EXPECT_DOUBLE_EQ(s.mseMaxShrink, 0.8);
  EXPECT_EQ(s.mseGrid, 100);
  EXPECT_DOUBLE_EQ(s.mseNorm, 2.4);
  EXPECT_NO_THROW(s.validate());
}

TEST(QuantSpec, SetAcceptsOsPlusSpellingsAndRoundTrips) {
  QuantSpec s;
  s.set("bit", "3");
  s.set("symmetric", "True");
  s.set("ch_axis", "0");
  s.set("observer", "MSEObserver");
  s.set("group_size", "64");
  s.set("act_order", "true");
  s.set("static_groups", "yes");
  s.set("mse_norm", "2.0");
  EXPECT_EQ(s.bits, 3);
  EXPECT_TRUE(s.symmetric);
  EXPECT_EQ(s.observer, Observer::Mse);
  const QuantSpec back = QuantSpec::fromMap(s.toMap());
  EXPECT_EQ(back.toMap(), s.toMap());
}

TEST(QuantSpec, ErrorsNameTheKey) {
  QuantSpec s;
  expectError([&] { s.set("bits_per_weight", "3"); }, "bits_per_weight: unknown");
  expectError([&] { s.set("bit", "three"); }, "bit: 'three' is not an integer");
  expectError([&] { s.set("symmetric", "maybe"); }, "symmetric:");
  expectError([&] { s.set("observer", "EMAMinMaxObserver"); }, "observer:");
  expectError([&] { QuantSpec().withBits(9).validate(); }, "bit: 9");
  expectError([&] { QuantSpec().withChAxis(1).validate(); }, "ch_axis:");
  expectError([&] { QuantSpec().withGroupSize(0).validate(); }, "group_size:");
  expectError([&] { QuantSpec().withChAxis(-1).withGroupSize(32).validate(); }, "group_size:");
  expectError([&] { QuantSpec().withStaticGroups(true).validate(); }, "static_groups:");
  expectError([&] { QuantSpec().withPercentile(0.3).validate(); }, "percentile:");
  expectError([&] { QuantSpec().withMse(1.5, 100, 2.4).validate(); }, "mse_maxshrink:");
  // A group size that does not divide in_features is legal: the last group is shorter.
  EXPECT_NO_THROW(QuantSpec().withGroupSize(100).validateFor(8, 256));
  EXPECT_EQ(QuantSpec().withGroupSize(100).numGroups(256), 3);
  expectError([&] { QuantSpec().validateFor(0, 256); }, "weight:");
  QuantSpec q;
  q.quantizer = "LSQFakeQuantize";
  expectError([&] { q.validate(); }, "quantizer:");
}

TEST(Observers, MinMaxMatchesFakeQuantParams) {
  at::Generator gen = at::detail::createCPUGenerator(3);
  const at::Tensor rows = at::randn({16, 64}, gen, at::kFloat);
  for (bool sym : {false, true}) {
    const QuantParams a = observeRows(rows, QuantSpec().withBits(4).withSymmetric(sym));
    const QuantParams b = computeParams(rows, FakeQuantOptions().withBits(4).withSymmetric(sym).withGranularity(
                                                  Granularity::PerToken));
    EXPECT_TRUE(at::equal(a.scale, b.scale));
    EXPECT_TRUE(at::equal(a.zero, b.zero));
  }
}

TEST(Observers, MseSearchNeverWorseThanMinMaxInItsNorm) {
  at::Generator gen = at::detail::createCPUGenerator(4);
  const at::Tensor rows = at::randn({32, 128}, gen, at::kFloat);
  const QuantSpec mm = QuantSpec().withBits(3);
  const QuantSpec mse = QuantSpec().withBits(3).withMse(0.8, 100, 2.4);
  auto err = [&](const QuantSpec& s) {
    const QuantParams p = observeRows(rows, s);
    const at::Tensor sc = p.scale.unsqueeze(1), z = p.zero.unsqueeze(1);
    const at::Tensor q = dequantizeCodes(quantizeCodes(rows, sc, z, s), sc, z);
    return at::sum(at::pow(at::abs(q - rows), 2.4), 1);
  };
  const at::Tensor a = err(mm), b = err(mse);
  EXPECT_TRUE(at::all(b <= a).item<bool>());
  EXPECT_LT(b.sum().item<double>(), 0.95 * a.sum().item<double>());
  // The chosen range is a shrink of min/max: scales no larger.
  EXPECT_TRUE(at::all(observeRows(rows, mse).scale <= observeRows(rows, mm).scale).item<bool>());
}

TEST(Observers, PercentileClipsASingleOutlier) {
  at::Tensor row = at::linspace(-1, 1, 1001, at::kFloat).reshape({1, -1});
  row[0][500] = 100.0f;
  const QuantParams mm = observeRows(row, QuantSpec().withBits(8).withSymmetric(true));
  const QuantParams pc = observeRows(row, QuantSpec().withBits(8).withSymmetric(true).withPercentile(0.99));
  EXPECT_NEAR(mm.scale.item<float>(), 100.0f / 127, 1e-6);
  EXPECT_LT(pc.scale.item<float>(), 1.0f / 127 * 1.01);
  EXPECT_GT(pc.scale.item<float>(), 0.9f / 127);
}

TEST(Observers, CodesAndDequantizeMatchFakeQuant) {
  at::Generator gen = at::detail::createCPUGenerator(5);
  const at::Tensor x = at::randn({8, 32}, gen, at::kFloat);
  const auto fq = FakeQuantOptions().withBits(5).withSymmetric(false).withGranularity(Granularity::PerToken);
  const QuantParams p = computeParams(x, fq);
  const QuantSpec s = QuantSpec().withBits(5);
  const at::Tensor codes = quantizeCodes(x, p.scale.unsqueeze(1), p.zero.unsqueeze(1), s);
  EXPECT_TRUE(at::equal(codes, at::round(codes)));
  EXPECT_GE(codes.min().item<float>(), 0);
  EXPECT_LE(codes.max().item<float>(), 31);
  EXPECT_TRUE(at::equal(dequantizeCodes(codes, p.scale.unsqueeze(1), p.zero.unsqueeze(1)), fakeQuant(x, p, fq)));
}

}  // namespace
}  // namespace qs::quant
