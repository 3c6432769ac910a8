// Ragged last group (group_size need not divide in_features; the last group is shorter, as GPTQ
// allows): RTN, GPTQ and QuantEase against a direct per-group computation written element by
// element here, plus the shapes every consumer relies on (scales [out, ceil(in / g)], g_idx).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/algo/act_calibration.h"
#include "core/algo/gptq.h"
#include "core/algo/quantease.h"
#include "core/algo/rtn.h"
#include "core/quant/quant_spec.h"
#include "tests/algo/algo_fixtures.h"

namespace qs::algo {
namespace {

using test::makeLayer;

// The independent reference: for each row and each group [g0, min(g0 + g, in)), asymmetric
// min/max (range widened to include 0) in float32, element by element, with its own loop bounds.
at::Tensor directPerGroup(const at::Tensor& w, int bits, int64_t g) {
  const at::Tensor c = w.contiguous();
  at::Tensor out = at::empty_like(c);
  const int64_t rows = c.size(0), cols = c.size(1);
  const float* p = c.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const float levels = static_cast<float>((1 << bits) - 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g0 = 0; g0 < cols; g0 += g) {
      const int64_t g1 = std::min(cols, g0 + g);
      float lo = 0, hi = 0;
      for (int64_t j = g0; j < g1; ++j) {
        lo = std::min(lo, p[r * cols + j]);
        hi = std::max(hi, p[r * cols + j]);
      }
      float scale = (hi - lo) / levels;
      if (scale == 0) scale = 1;
      const float zero = std::nearbyint(-lo / scale);
      for (int64_t j = g0; j < g1; ++j) {
        float q = std::min(std::max(std::nearbyint(p[r * cols + j] / scale) + zero, 0.0f), levels);
        o[r * cols + j] = (q - zero) * scale;
      }
    }
  return out;
}

// stories260K's down_proj has 172 inputs: group 32 leaves a last group of 12 columns.
constexpr int64_t kIn = 172, kGroup = 32;

TEST(RaggedGroups, RtnEqualsDirectPerGroup) {
  const auto l = makeLayer(24, kIn, 256);
  const auto spec = quant::QuantSpec().withBits(4).withGroupSize(kGroup);
  const LayerQuantResult r = quantizeRtn(l.w, spec, l.h);
  ASSERT_EQ(r.scales.size(1), 6);  // ceil(172 / 32)
  EXPECT_EQ(r.gIdx[171].item<int>(), 5);
  EXPECT_EQ(r.gIdx[160].item<int>(), 5);
  EXPECT_EQ(r.gIdx[159].item<int>(), 4);
  EXPECT_TRUE(at::equal(r.weight, directPerGroup(l.w, 4, kGroup)));
  // The ragged group is observed on its own 12 columns: its scale is that of those columns.
  const at::Tensor last = l.w.narrow(1, 160, 12);
  const at::Tensor expected =
      at::div(at::sub(at::clamp_min(at::amax(last, 1), 0.0), at::clamp_max(at::amin(last, 1), 0.0)), 15.0);
  EXPECT_TRUE(at::allclose(r.scales.select(1, 5), expected, 1e-6, 0));
  // The emulation helper used by OS+ and `migrate` agrees.
  EXPECT_TRUE(at::equal(fakeQuantWeight(l.w, spec), r.weight));
}

TEST(RaggedGroups, GptqWithDiagonalHessianEqualsDirectPerGroup) {
  // With a diagonal H no error is propagated to later columns, so GPTQ's groups (observed on the
  // current weights, which stay the original ones) must equal the direct per-group rounding.
  const auto l = makeLayer(24, kIn, 256);
  const at::Tensor h = at::diag(at::add(at::rand({kIn}, at::kDouble), 0.5));
  for (int blockSize : {128, 40}) {  // a block boundary inside groups and inside the ragged group
    auto o = GptqOptions().withBits(4).withGroupSize(kGroup);
    o.blockSize = blockSize;
    const LayerQuantResult r = quantizeGptq(l.w, h, o);
    EXPECT_TRUE(at::equal(r.weight, directPerGroup(l.w, 4, kGroup))) << "blocksize " << blockSize;
    EXPECT_EQ(r.scales.size(1), 6);
  }
}

TEST(RaggedGroups, GptqCorrelatedInputsStayOnTheirGroupGrids) {
  const auto l = makeLayer(24, kIn, 512);
  for (bool actOrder : {false, true}) {
    const LayerQuantResult r =
        quantizeGptq(l.w, l.h, GptqOptions().withBits(3).withGroupSize(kGroup).withActOrder(actOrder));
    EXPECT_EQ(r.scales.size(1), 6);
    // Every code lies on its group's 3-bit grid and the weight rebuilds from codes/scales/zeros/g_idx.
    EXPECT_GE(r.codes.min().item<int>(), 0);
    EXPECT_LE(r.codes.max().item<int>(), 7);
    EXPECT_TRUE(at::equal(r.weight, reconstructWeight(r)));
    // Each group holds g columns except exactly one ragged group of 12.
    const at::Tensor counts = at::bincount(r.gIdx.to(at::kLong));
    EXPECT_EQ(at::sum(counts == kGroup).item<int64_t>(), 5);
    EXPECT_EQ(at::sum(counts == 12).item<int64_t>(), 1);
    // GPTQ still beats RTN on correlated inputs with ragged groups.
    const LayerQuantResult rtn = quantizeRtn(l.w, quant::QuantSpec().withBits(3).withGroupSize(kGroup), l.h);
    EXPECT_LT(r.relError, rtn.relError) << "act_order " << actOrder;
  }
}

TEST(RaggedGroups, QuantEaseWithDiagonalHessianEqualsDirectPerGroup) {
  // Diagonal H: every coordinate's exact minimiser is its own rounding, so QuantEase keeps RTN.
  const auto l = makeLayer(24, kIn, 256);
  const at::Tensor h = at::diag(at::add(at::rand({kIn}, at::kDouble), 0.5));
  auto o = QuantEaseOptions().withBits(4).withGroupSize(kGroup).withNumIter(3);
  const LayerQuantResult r = quantizeQuantEase(l.w, h, o);
  EXPECT_TRUE(at::equal(r.weight, directPerGroup(l.w, 4, kGroup)));
  // On correlated inputs the objective decreases and codes stay on the per-group grid.
  const LayerQuantResult c = quantizeQuantEase(l.w, l.h, o);
  EXPECT_LE(c.objectiveTrace.back(), c.objectiveTrace.front());
  EXPECT_TRUE(at::equal(c.weight, reconstructWeight(c)));
  EXPECT_LE(test::maxDistinctPerGroup(c.weight, kGroup), 16);
}

TEST(RaggedGroups, StaticGroupsUseTheRaggedGrid) {
  const auto l = makeLayer(16, kIn, 256);
  const LayerQuantResult r =
      quantizeGptq(l.w, l.h, GptqOptions().withBits(4).withGroupSize(kGroup).withActOrder(true).withStaticGroups(true));
  const quant::QuantParams p = quant::observeGroups(l.w, quant::QuantSpec().withBits(4).withGroupSize(kGroup));
  EXPECT_TRUE(at::equal(r.scales, p.scale));
  EXPECT_TRUE(at::equal(r.gIdx, quant::naturalGroupIndex(kIn, quant::QuantSpec().withGroupSize(kGroup))));
}

}  // namespace
}  // namespace qs::algo
