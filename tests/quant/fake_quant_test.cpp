// Closed-form and property checks of the CPU fake-quant twin (core/quant/fake_quant.h).
#include "core/quant/fake_quant.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/util/error.h"
#include "tests/quant/fake_quant_reference.h"
#include "tests/support/expect_error.h"

namespace qs::quant {
namespace {

at::Tensor floats(std::vector<float> v, std::vector<int64_t> shape) {
  return at::tensor(v, at::kFloat).reshape(shape);
}

void expectValues(const at::Tensor& t, const std::vector<float>& expected) {
  const at::Tensor f = t.to(at::kFloat).contiguous().flatten();
  ASSERT_EQ(f.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_FLOAT_EQ(f[i].item<float>(), expected[i]) << "element " << i;
}

using qs::test::expectError;

FakeQuantOptions perTensor(int bits, bool symmetric = true) {
  return FakeQuantOptions().withBits(bits).withSymmetric(symmetric).withGranularity(Granularity::PerTensor);
}

TEST(FakeQuantOptions, Defaults) {
  const FakeQuantOptions o;
  EXPECT_EQ(o.bits, 8);
  EXPECT_TRUE(o.symmetric);
  EXPECT_EQ(o.granularity, Granularity::PerChannel);
  EXPECT_EQ(o.chAxis, 0);
  EXPECT_EQ(o.groupSize, 128);
  EXPECT_STREQ(granularityName(Granularity::PerGroup), "per_group");
}

TEST(FakeQuant, IntGridIsTwosComplementOrUnsigned) {
  EXPECT_EQ(intGrid(4, true).qmin, -8);
  EXPECT_EQ(intGrid(4, true).qmax, 7);
  EXPECT_EQ(intGrid(4, false).qmin, 0);
  EXPECT_EQ(intGrid(4, false).qmax, 15);
  EXPECT_EQ(intGrid(16, false).qmax, 65535);
}

TEST(FakeQuant, Symmetric4BitPerTensorClosedForm) {
  // absmax 1 -> scale 1/7. float32(1/7) is a hair above 1/7, so 0.5/scale = 3.4999998 -> 3
  // (not a tie; ties are checked in RoundsHalfToEven) and 0.25/scale = 1.7499999 -> 2.
  const at::Tensor x = floats({-1.f, 0.5f, 0.25f, 1.f}, {4});
  const QuantParams p = computeParams(x, perTensor(4));
  EXPECT_EQ(p.scale.dim(), 0);
  EXPECT_FLOAT_EQ(p.scale.item<float>(), 1.f / 7.f);
  EXPECT_EQ(p.zero.item<float>(), 0.f);
  const float s = 1.f / 7.f;
  expectValues(fakeQuant(x, perTensor(4)), {-7 * s, 3 * s, 2 * s, 7 * s});
}

TEST(FakeQuant, RoundsHalfToEven) {
  // scale exactly 1: 2.5 -> 2, -2.5 -> -2, 0.5 -> 0, 1.5 -> 2.
  const at::Tensor x = floats({127.f, 2.5f, -2.5f, 0.5f, 1.5f}, {5});
  expectValues(fakeQuant(x, perTensor(8)), {127.f, 2.f, -2.f, 0.f, 2.f});
}

TEST(FakeQuant, AsymmetricPerChannelClosedForm) {
  const at::Tensor x = floats({0.f, 1.f, 2.f, 3.f,        // range [0, 3] -> scale 1, zero 0
                               -1.f, -0.5f, 0.5f, 1.f,    // scale 2/3, zero round(1.5) = 2
                               1.f, 2.f, 3.f, 4.f},       // min widened to 0: scale 4/3, zero 0
                              {3, 4});
  const auto o = FakeQuantOptions().withBits(2).withSymmetric(false);
  const QuantParams p = computeParams(x, o);
  ASSERT_EQ(p.scale.sizes(), at::IntArrayRef({3}));
  const float s1 = 2.f / 3.f, s2 = 4.f / 3.f;
  expectValues(p.scale, {1.f, s1, s2});
  expectValues(p.zero, {0.f, 2.f, 0.f});
  // Row 1: x/s = -1.5, -0.75, 0.75, 1.5 -> -2, -1, 1, 2; +2 -> 0, 1, 3, 4 -> clamp to 3.
  expectValues(fakeQuant(x, o), {0.f, 1.f, 2.f, 3.f,             //
                                 -2 * s1, -1 * s1, 1 * s1, 1 * s1,  //
                                 1 * s2, 2 * s2, 2 * s2, 3 * s2});  // 0.75,1.5,2.25,3 -> 1,2,2,3
}

TEST(FakeQuant, PerGroupOfFourClosedForm) {
  const at::Tensor x = floats({-1.f, 0.5f, 0.25f, 1.f, 2.f, 4.f, -8.f, 1.f}, {1, 8});
  const auto o = FakeQuantOptions().withBits(4).withGranularity(Granularity::PerGroup).withGroupSize(4);
  const QuantParams p = computeParams(x, o);
  ASSERT_EQ(p.scale.sizes(), at::IntArrayRef({1, 2}));
  const float a = 1.f / 7.f, b = 8.f / 7.f;
  expectValues(p.scale, {a, b});
  // Group 2: x/b = 1.75, 3.4999998 (float32 8/7 rounds up), -7, 0.875 -> 2, 3, -7, 1.
  expectValues(fakeQuant(x, o), {-7 * a, 3 * a, 2 * a, 7 * a, 2 * b, 3 * b, -7 * b, 1 * b});
}

TEST(FakeQuant, PerTokenIsPerRowOfFlattenedTokens) {
  at::manual_seed(5);
  const at::Tensor x = at::randn({2, 3, 16}, at::TensorOptions().dtype(at::kFloat));
  const auto o = FakeQuantOptions().withBits(4).withGranularity(Granularity::PerToken);
  EXPECT_EQ(computeParams(x, o).scale.sizes(), at::IntArrayRef({6}));
  const at::Tensor y = fakeQuant(x, o).reshape({6, 16});
  const at::Tensor rows = x.reshape({6, 16});
  for (int64_t t = 0; t < 6; ++t)
    EXPECT_TRUE(at::equal(y[t], fakeQuant(rows[t], perTensor(4)))) << "token " << t;
}

TEST(FakeQuant, PerChannelOnOtherAxisEqualsTransposed) {
  at::manual_seed(1);
  const at::Tensor x = at::randn({5, 7});
  const auto o = FakeQuantOptions().withBits(3).withSymmetric(false);
  const at::Tensor viaAxis1 = fakeQuant(x, FakeQuantOptions(o).withChAxis(1));
  const at::Tensor viaNeg1 = fakeQuant(x, FakeQuantOptions(o).withChAxis(-1));
  const at::Tensor viaT = fakeQuant(x.t().contiguous(), o).t();
  EXPECT_TRUE(at::equal(viaAxis1, viaT));
  EXPECT_TRUE(at::equal(viaNeg1, viaT));
  EXPECT_EQ(computeParams(x, FakeQuantOptions(o).withChAxis(1)).scale.sizes(), at::IntArrayRef({7}));
}

TEST(FakeQuant, HalfAndBFloat16InSameDtypeOut) {
  const float s = 1.f / 7.f;
  for (const auto dt : {at::kHalf, at::kBFloat16}) {
    const at::Tensor x = floats({-1.f, 0.5f, 0.25f, 1.f}, {1, 4}).to(dt);
    const at::Tensor y = fakeQuant(x, FakeQuantOptions().withBits(4));
    EXPECT_EQ(y.scalar_type(), dt);
    // Computed in float32, rounded once to the output dtype.
    const at::Tensor expected = floats({-7 * s, 3 * s, 2 * s, 7 * s}, {1, 4}).to(dt);
    EXPECT_TRUE(at::equal(y, expected)) << y << expected;
  }
}

TEST(FakeQuant, AllZeroRowPassesThrough) {
  const at::Tensor x = at::zeros({2, 8});
  for (bool sym : {true, false}) {
    const auto o = FakeQuantOptions().withBits(4).withSymmetric(sym);
    // Asymmetric: AutoGPTQ's range [-1, 1] for an all-zero row (scale 2/15, zero point 7), so
    // GPTQ's v1 format can store it (tests/algo/gptq_test.cpp); symmetric: scale 1.
    const float s = sym ? 1.f : 2.f / 15.f;
    expectValues(computeParams(x, o).scale, {s, s});
    EXPECT_TRUE(at::equal(fakeQuant(x, o), x));
  }
}

TEST(FakeQuant, EmptyTensorIsReturnedAsIs) {
  const at::Tensor x = at::empty({0, 16});
  EXPECT_EQ(fakeQuant(x, FakeQuantOptions()).numel(), 0);
}

TEST(FakeQuant, IdempotentWithSameParamsAndNearlyWithRecomputed) {
  at::manual_seed(2);
  const at::Tensor x = at::randn({16, 256}) * 3;
  const std::vector<FakeQuantOptions> cases = {
      FakeQuantOptions().withBits(4),
      FakeQuantOptions().withBits(3).withSymmetric(false),
      FakeQuantOptions().withBits(4).withGranularity(Granularity::PerGroup).withGroupSize(64),
      FakeQuantOptions().withBits(8).withSymmetric(false).withGranularity(Granularity::PerToken),
      perTensor(2)};
  for (const auto& o : cases) {
    const QuantParams p = computeParams(x, o);
    const at::Tensor y = fakeQuant(x, p, o);
    // y = k * scale exactly reproduces k on the second pass.
    EXPECT_TRUE(at::equal(fakeQuant(y, p, o), y)) << granularityName(o.granularity);
    // Params recomputed from y differ from p by at most a few ulps.
    EXPECT_TRUE(at::allclose(fakeQuant(y, o), y, 1e-5, 1e-6)) << granularityName(o.granularity);
  }
}

TEST(FakeQuant, EightBitErrorIsAtMostHalfAStep) {
  at::manual_seed(3);
  const at::Tensor x = at::randn({32, 512});
  for (bool sym : {true, false}) {
    const auto o = FakeQuantOptions().withBits(8).withSymmetric(sym);
    const QuantParams p = computeParams(x, o);
    const at::Tensor err = (fakeQuant(x, p, o) - x).abs();
    const at::Tensor bound = p.scale.reshape({32, 1}) * 0.5 * (1 + 1e-5);
    EXPECT_TRUE((err <= bound).all().item<bool>()) << "symmetric=" << sym;
  }
}

TEST(FakeQuant, ParamsFromCalibrationDataClampOutliers) {
  const auto o = perTensor(4);
  const QuantParams p = computeParams(floats({-1.f, 1.f}, {2}), o);  // scale 1/7
  // 3 -> 21 -> clamp 7; -3 -> -21 -> clamp -8 (the extra two's-complement code).
  const float s = 1.f / 7.f;
  expectValues(fakeQuant(floats({3.f, -3.f}, {2}), p, o), {7 * s, -8 * s});
}

TEST(FakeQuant, MatchesScalarModelBitForBit) {
  // The CUDA kernel implements the scalar model; this pins the ATen path to it, including
  // the per-tensor case where a broadcast scale could tempt ATen into reciprocal multiply.
  at::manual_seed(4);
  const at::Tensor x = at::randn({24, 192}) * 5;
  for (auto g : {Granularity::PerTensor, Granularity::PerChannel, Granularity::PerGroup,
                 Granularity::PerToken})
    for (int bits : {2, 3, 4, 8, 16})
      for (bool sym : {true, false}) {
        const auto o = FakeQuantOptions().withBits(bits).withSymmetric(sym).withGranularity(g).withGroupSize(32);
        const at::Tensor rows = toQuantRows(x, o);
        const at::Tensor expected = fromQuantRows(test::scalarFakeQuantRows(rows, bits, sym), x, o);
        EXPECT_TRUE(at::equal(fakeQuant(x, o), expected))
            << granularityName(g) << " bits=" << bits << " symmetric=" << sym;
      }
}

TEST(FakeQuant, BadOptionsNameTheKey) {
  const at::Tensor x = at::randn({4, 8});
  expectError([&] { fakeQuant(x, FakeQuantOptions().withBits(1)); }, "bit: 1 is out of range 2..16");
  expectError([&] { fakeQuant(x, FakeQuantOptions().withBits(17)); }, "bit: 17 is out of range 2..16");
  const auto group = FakeQuantOptions().withGranularity(Granularity::PerGroup);
  expectError([&] { fakeQuant(x, FakeQuantOptions(group).withGroupSize(3)); },
              "group_size: 3 does not divide the last dimension (8)");
  expectError([&] { computeParams(x, FakeQuantOptions(group).withGroupSize(0)); },
              "group_size: 0 must be positive");
  expectError([&] { fakeQuant(x, FakeQuantOptions().withChAxis(2)); }, "ch_axis: 2 is out of range");
  expectError([&] { fakeQuant(x, FakeQuantOptions().withChAxis(-3)); }, "ch_axis: -3");
  expectError([&] { fakeQuant(at::ones({4}, at::kLong), FakeQuantOptions()); }, "dtype:");
  const QuantParams wrong = computeParams(at::randn({3, 8}), FakeQuantOptions());
  expectError([&] { fakeQuant(x, wrong, FakeQuantOptions()); }, "params do not fit");
}

}  // namespace
}  // namespace qs::quant
