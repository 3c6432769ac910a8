// columnArrays / rowArrays (the weight-statistics loops) against direct float64 computation
// (torch ops on a double copy: mean, population variance, Pearson m4/m2^2) and against the
// streaming ChannelStats they replace for weights: odd sizes (lane tails), a large common offset
// (where one-pass raw moments would cancel), constant channels (NaN kurtosis), half inputs, errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/analysis/channel_stats.h"
#include "core/analysis/column_moments.h"
#include "core/util/error.h"

using namespace qs::analysis;

namespace {

at::Tensor vec(const std::vector<float>& v) { return at::tensor(at::ArrayRef<float>(v)).to(at::kDouble); }

// Column statistics of x by definition, in float64.
void expectColumns(const ChannelArrays& a, const at::Tensor& xf, double kurtTol, const char* what) {
  SCOPED_TRACE(what);
  const at::Tensor x = xf.to(at::kDouble);
  ASSERT_EQ(a.size(), static_cast<size_t>(x.size(1)));
  const at::Tensor mean = x.mean(0), var = x.var(0, false);
  const at::Tensor kurt = (x - mean).pow(4).mean(0) / var.pow(2);
  const double scale = x.abs().max().item<double>();
  EXPECT_TRUE(at::allclose(vec(a.mean), mean, 1e-6, 1e-7 * scale));
  EXPECT_TRUE(at::allclose(vec(a.var), var, 1e-6, 0));
  EXPECT_TRUE(at::allclose(vec(a.kurtosis), kurt, kurtTol, 0, /*equal_nan=*/true));
  EXPECT_TRUE(at::equal(vec(a.min), std::get<0>(x.min(0))));
  EXPECT_TRUE(at::equal(vec(a.max), std::get<0>(x.max(0))));
  EXPECT_TRUE(at::equal(vec(a.absmax), std::get<0>(x.abs().max(0))));
  EXPECT_TRUE(at::allclose(vec(a.center), (std::get<0>(x.max(0)) + std::get<0>(x.min(0))) / 2, 1e-7, 0));
  EXPECT_TRUE(at::allclose(vec(a.halfRange), (std::get<0>(x.max(0)) - std::get<0>(x.min(0))) / 2, 1e-7, 0));
}

}  // namespace

TEST(ColumnMoments, ColumnsAndRowsEqualTheDefinitionForOddShapes) {
  at::manual_seed(3);
  for (auto shape : {std::pair<int64_t, int64_t>{37, 13}, {5, 203}, {130, 70}, {1, 9}}) {
    at::Tensor w = at::randn({shape.first, shape.second}) * 0.05 + 0.01;
    w[0][0] = 2.5f;  // an outlier weight in row 0 and column 0
    expectColumns(columnArrays(w), w, 1e-5, "columns");
    expectColumns(rowArrays(w), w.t(), 1e-5, "rows");
  }
}

TEST(ColumnMoments, LargeOffsetKeepsTheSpread) {
  // 1e4 + N(0, 1e-2): float32 holds the noise to ~1e-3 relative, which the two-pass sums keep;
  // raw power sums would lose it entirely (1e8 vs 1e-4).
  at::manual_seed(4);
  at::Tensor w = 1e4 + at::randn({64, 24}) * 1e-2;
  expectColumns(columnArrays(w), w, 1e-4, "columns");
  expectColumns(rowArrays(w), w.t(), 1e-4, "rows");
}

TEST(ColumnMoments, ConstantChannelsHaveNanKurtosisAndHalfIsWidened) {
  at::Tensor w = at::randn({16, 8});
  w.select(1, 2).fill_(0.5f);
  ChannelArrays a = columnArrays(w);
  EXPECT_TRUE(std::isnan(a.kurtosis[2]));
  EXPECT_EQ(a.var[2], 0.0f);
  EXPECT_FALSE(std::isnan(a.kurtosis[1]));
  at::Tensor h = (at::randn({32, 16}) * 300).to(at::kHalf);  // 4th powers of 300s overflow in fp16
  expectColumns(columnArrays(h), h.to(at::kFloat), 1e-5, "half columns");
  expectColumns(rowArrays(h), h.to(at::kFloat).t(), 1e-5, "half rows");
  EXPECT_THROW(columnArrays(at::randn({2, 3, 4})), qs::Error);
  EXPECT_THROW(rowArrays(at::randn({5})), qs::Error);
  EXPECT_EQ(columnArrays(at::zeros({0, 4})).size(), 0u);
}

// weightStats takes these loops on the CPU; its arrays agree with the streaming ChannelStats.
TEST(ColumnMoments, WeightStatsAgreesWithChannelStats) {
  at::manual_seed(5);
  at::Tensor w = at::randn({96, 40}) * 0.02;
  SiteResult r;
  weightStats(w, r);
  auto opts = ChannelStatsOptions().withTopTokens(0).withPositions(false);
  ChannelStats perIn(opts), perOut(opts);
  perIn.update(w);
  perOut.update(w.t());
  ChannelArrays in = perIn.arrays(), out = perOut.arrays();
  EXPECT_TRUE(at::allclose(vec(r.channel.var), vec(in.var), 1e-5, 0));
  EXPECT_TRUE(at::allclose(vec(r.channel.kurtosis), vec(in.kurtosis), 1e-4, 0));
  EXPECT_TRUE(at::equal(vec(r.channel.absmax), vec(in.absmax)));
  EXPECT_TRUE(at::allclose(vec(r.outChannel.var), vec(out.var), 1e-5, 0));
  EXPECT_TRUE(at::allclose(vec(r.outChannel.kurtosis), vec(out.kurtosis), 1e-4, 0));
  EXPECT_TRUE(at::equal(vec(r.outChannel.min), vec(out.min)));
}
