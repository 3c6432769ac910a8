// GPTQ on small correlated layers: beats RTN, lazy batches are exact, act-order/group/static-group
// bookkeeping round-trips, dead columns, option errors and cancellation.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>

#include "core/algo/gptq.h"
#include "core/algo/rtn.h"
#include "core/algo/weight_grid.h"
#include "core/io/gptq_pack.h"
#include "core/quant/fake_quant.h"
#include "tests/algo/algo_fixtures.h"

namespace qs::algo {
namespace {

using test::makeLayer;

TEST(Gptq, ErrorAtMostRtnOnCorrelatedInputs) {
  const auto l = makeLayer();
  for (int bits : {3, 4}) {
    for (int group : {-1, 32}) {
      const auto spec = quant::QuantSpec().withBits(bits).withGroupSize(group);
      const LayerQuantResult rtn = quantizeRtn(l.w, spec, l.h);
      const LayerQuantResult g = quantizeGptq(l.w, l.h, GptqOptions().withSpec(spec));
      EXPECT_LT(g.relError, rtn.relError) << bits << " bits, group " << group;
      EXPECT_NEAR(g.relError, test::directRelError(l.w, g.weight, l.x), 1e-5 * g.relError);
      EXPECT_LE(test::maxDistinctPerGroup(g.weight, group > 0 ? group : l.w.size(1)), int64_t{1} << bits);
    }
  }
}

TEST(Gptq, LazyBatchesMatchColumnByColumn) {
  const auto l = makeLayer();
  const LayerQuantResult a = quantizeGptq(l.w, l.h, GptqOptions().withBits(4).withBlockSize(128));
  const LayerQuantResult b = quantizeGptq(l.w, l.h, GptqOptions().withBits(4).withBlockSize(1));
  const double mismatch = at::ne(a.codes, b.codes).to(at::kDouble).mean().item<double>();
  EXPECT_LT(mismatch, 0.002);  // float32 reassociation may flip a rare tie, nothing more
  EXPECT_NEAR(a.relError, b.relError, 0.01 * a.relError);
}

TEST(Gptq, ActOrderWithGroupsRoundTrips) {
  const auto l = makeLayer();
  const auto opts = GptqOptions().withBits(3).withGroupSize(32).withActOrder(true);
  const LayerQuantResult r = quantizeGptq(l.w, l.h, opts);
  // codes * scale through g_idx give the returned weight exactly.
  const at::Tensor idx = r.gIdx.to(at::kLong);
  const at::Tensor deq = (r.codes.to(at::kFloat) - r.zeros.index_select(1, idx)) * r.scales.index_select(1, idx);
  EXPECT_TRUE(at::equal(deq, r.weight));
  EXPECT_GE(r.codes.min().item<int>(), 0);
  EXPECT_LE(r.codes.max().item<int>(), 7);
  // Act-order groups are made of columns in Hessian-diagonal order, so g_idx is not j / 32,
  // but every group still has exactly 32 columns.
  EXPECT_FALSE(at::equal(r.gIdx, at::div(at::arange(128, at::kInt), 32, "floor").to(at::kInt)));
  EXPECT_TRUE(at::equal(at::bincount(idx), at::full({4}, 32, at::kLong)));
  // Column of the largest H diagonal (channel 3) is quantized first: group 0.
  EXPECT_EQ(r.gIdx[3].item<int>(), 0);
  // Per (row, group) at most 2^bits values, with groups taken through g_idx.
  const at::Tensor order = std::get<1>(at::sort(idx, c10::optional<bool>(true), 0, false));
  EXPECT_LE(test::maxDistinctPerGroup(r.weight.index_select(1, order), 32), 8);
  EXPECT_LT(r.relError, quantizeRtn(l.w, opts.spec, l.h).relError);
  // 3 bits + (16 + 3) bits per 32 weights + a 32-bit g_idx entry per input column.
  EXPECT_NEAR(r.bitsPerWeight, 3.0 + 19.0 / 32.0 + 32.0 / 64.0, 1e-12);
}

TEST(Gptq, StaticGroupsKeepOriginalGroupsAndParams) {
  const auto l = makeLayer();
  const auto spec = quant::QuantSpec().withBits(4).withGroupSize(32).withActOrder(true).withStaticGroups(true);
  const LayerQuantResult r = quantizeGptq(l.w, l.h, GptqOptions().withSpec(spec));
  EXPECT_TRUE(at::equal(r.gIdx, at::div(at::arange(128, at::kInt), 32, "floor").to(at::kInt)));
  const LayerQuantResult rtn = quantizeRtn(l.w, spec, l.h);
  EXPECT_TRUE(at::equal(r.scales, rtn.scales));  // fixed on the original W before GPTQ runs
  EXPECT_TRUE(at::equal(r.zeros, rtn.zeros));
  EXPECT_TRUE(at::equal(reconstructWeight(r), r.weight));
  EXPECT_LT(r.relError, rtn.relError);
  EXPECT_LE(test::maxDistinctPerGroup(r.weight, 32), 16);
}

TEST(Gptq, DeadColumnsAreZeroedAndHandled) {
  auto l = makeLayer();
  l.x.select(1, 5).zero_();
  l.x.select(1, 90).zero_();
  l.h = hessianFromInputs(l.x, jobs::Progress::none());
  ASSERT_EQ(l.h[5][5].item<double>(), 0.0);
  const LayerQuantResult r = quantizeGptq(l.w, l.h, GptqOptions().withBits(4).withActOrder(true));
  EXPECT_TRUE(at::all(r.weight.select(1, 5) == 0).item<bool>());
  EXPECT_TRUE(at::all(r.weight.select(1, 90) == 0).item<bool>());
  EXPECT_TRUE(std::isfinite(r.relError));
  EXPECT_NEAR(r.relError, test::directRelError(l.w, r.weight, l.x), 1e-5 * r.relError);
  EXPECT_LT(r.relError, quantizeRtn(l.w, quant::QuantSpec().withBits(4), l.h).relError);
}

TEST(Gptq, MseAndPercentileObserversRun) {
  const auto l = makeLayer();
  const double minmax = quantizeGptq(l.w, l.h, GptqOptions().withBits(3)).relError;
  auto mse = GptqOptions().withBits(3);
  mse.spec.withMse(0.8, 100, 2.4);
  const LayerQuantResult a = quantizeGptq(l.w, l.h, mse);
  auto pct = GptqOptions().withBits(3);
  pct.spec.withPercentile(0.99);
  const LayerQuantResult b = quantizeGptq(l.w, l.h, pct);
  EXPECT_LT(a.relError, 1.0);
  EXPECT_LT(b.relError, 1.0);
  // Clipping search on Gaussian weights at 3 bits beats min/max (shrinking is its whole point).
  EXPECT_LT(a.relError, minmax);
}

TEST(Gptq, BadOptionsNameTheKey) {
  const auto l = makeLayer();
  test::expectError([&] { quantizeGptq(l.w, l.h, GptqOptions().withGroupSize(0)); }, "group_size:");
  test::expectError([&] { quantizeGptq(l.w, l.h, GptqOptions().withBits(9)); }, "bit:");
  test::expectError([&] { quantizeGptq(l.w, l.h, GptqOptions().withPercdamp(-1)); }, "percdamp:");
  test::expectError([&] { quantizeGptq(l.w, l.h, GptqOptions().withBlockSize(0)); }, "blocksize:");
  test::expectError([&] { quantizeGptq(l.w, l.h, GptqOptions().withStaticGroups(true)); }, "static_groups:");
  test::expectError([&] { quantizeGptq(l.w, l.h.narrow(0, 0, 64), GptqOptions()); }, "hessian:");
}

TEST(Gptq, NotPositiveDefiniteNamesPercdamp) {
  const auto l = makeLayer(16, 32, 512);
  at::Tensor h = l.h.clone();
  h[0][1] = h[1][0] = 10 * (h[0][0] + h[1][1]);  // indefinite, diagonal still positive
  test::expectError([&] { quantizeGptq(l.w, h, GptqOptions().withPercdamp(0)); }, "percdamp:");
}

TEST(Gptq, CancelThrowsCancelled) {
  const auto l = makeLayer();
  test::CancelAfter progress(1);
  EXPECT_THROW(quantizeGptq(l.w, l.h, GptqOptions().withBlockSize(16), progress), qs::Cancelled);
  EXPECT_EQ(progress.updates(), 1);
}

// Issue 17: an asymmetric group whose weights are all zero got scale 1 and zero point 0, which the
// GPTQ v1 format (zero - 1 stored) cannot hold, so `export --format gptq` refused such runs. The
// reference is AutoGPTQ's Quantizer.find_params: where xmin = xmax = 0 it sets the range to
// [-1, 1], i.e. scale 2 / maxq and zero point torch.round(-xmin / scale) in float32, which is
// 2, 3, 7 and 127 for 2, 3, 4 and 8 bits (1 / float32(2 / 15) = 7.4999995).
TEST(Gptq, AllZeroGroupsTakeAutoGptqsZeroPointSoTheV1FormatHoldsThem) {
  const std::map<int, float> autoGptqZero = {{2, 2.f}, {3, 3.f}, {4, 7.f}, {8, 127.f}};
  for (int bits : {2, 3, 4, 8}) {
    at::Tensor w = at::randn({8, 64}, at::TensorOptions().dtype(at::kFloat));
    w.select(0, 3).narrow(0, 0, 32).zero_();  // row 3, group 0: all zero
    const quant::QuantSpec spec = quant::QuantSpec().withBits(bits).withGroupSize(32);
    const WeightGrid g = observeWeight(w, spec);
    const double maxq = static_cast<double>((1 << bits) - 1);
    EXPECT_FLOAT_EQ(g.scales[3][0].item<float>(), static_cast<float>(2.0 / maxq)) << bits;
    EXPECT_EQ(g.zeros[3][0].item<float>(), autoGptqZero.at(bits)) << bits;
    const at::Tensor codes = quant::quantizeCodes(w, expandToColumns(g.scales, g.gIdx), expandToColumns(g.zeros, g.gIdx), spec);
    const io::GptqLinear q = io::packGptq(codes.to(at::kInt), g.scales, g.zeros, g.gIdx, bits, /*symmetric=*/false,
                                          at::kFloat, /*v1=*/true, "layer");
    const at::Tensor back = io::dequantizeGptq(q, bits, /*v1=*/true);
    EXPECT_TRUE(at::equal(back.select(0, 3).narrow(0, 0, 32), at::zeros({32}))) << bits << ": zeros stay exactly 0";
  }
}

}  // namespace
}  // namespace qs::algo
