// QuantEase and its outlier-aware and GPTQ-initialised variants. Three tests guard the known
// defects of the public QuantEase release (each named for it):
//   OutlierVariantWritesUpdatesIntoQuantizedWeights  - updates went into the wrong matrix, the
//                                                       "quantized" output equalled W
//   OutlierCorrectionIsDividedByHessianDiagonal      - the incremental correction lacked / H_jj
//   GptqInitMinimisesDistanceToOriginalWeights        - the CD stage targeted GPTQ's output
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/algo/gptq.h"
#include "core/algo/layer_quant.h"
#include "core/algo/quantease.h"
#include "core/algo/quantease_outlier.h"
#include "core/algo/rtn.h"
#include "tests/algo/algo_fixtures.h"

namespace qs::algo {
namespace {

using test::makeLayer;

double totalEnergy(const test::Layer& l) { return quadraticError(l.w, l.h); }

void expectNonIncreasing(const std::vector<double>& trace) {
  ASSERT_GE(trace.size(), 2u);
  for (size_t i = 1; i < trace.size(); ++i)
    EXPECT_LE(trace[i], trace[i - 1] * (1 + 1e-5) + 1e-9) << "sweep " << i;
}

TEST(QuantEase, ProjectedDescentFromRoundToNearestNeverIncreases) {
  // Every sweep rounding, from a point on the grid: pure projected coordinate descent, monotone.
  const auto l = makeLayer();
  const auto opts = QuantEaseOptions().withBits(3).withNumIter(8).withInit(QuantEaseInit::Rtn).withRelaxedSweeps(false);
  const LayerQuantResult r = quantizeQuantEase(l.w, l.h, opts);
  EXPECT_EQ(r.iterations, 8);
  ASSERT_EQ(r.objectiveTrace.size(), 9u);
  expectNonIncreasing(r.objectiveTrace);
  EXPECT_LT(r.objectiveTrace.back(), 0.9 * r.objectiveTrace.front());  // it does something
  // The trace is the true objective: its last value is relError * tr(W H W^T).
  EXPECT_NEAR(r.objectiveTrace.back() / totalEnergy(l), r.relError, 1e-4 * r.relError);
  EXPECT_NEAR(r.relError, test::directRelError(l.w, r.weight, l.x), 1e-5 * r.relError);
  const LayerQuantResult rtn = quantizeRtn(l.w, quant::QuantSpec().withBits(3), l.h);
  EXPECT_NEAR(r.objectiveTrace.front() / totalEnergy(l), rtn.relError, 1e-4 * rtn.relError);  // RTN init
  EXPECT_LT(r.relError, rtn.relError);
  EXPECT_TRUE(at::equal(reconstructWeight(r), r.weight));
  EXPECT_LE(test::maxDistinctPerGroup(r.weight, 128), 8);
}

// Issue 16, cause 1: the reference starts from W itself, off the grid, so the first sweep rounds
// column by column with the error of the rounded columns fed forward; we started from round to
// nearest and stopped in a worse local minimum (0.429% vs 0.357% w4 on the layer).
TEST(QuantEase, StartsFromTheWeightsNotTheirRounding) {
  const auto l = makeLayer();
  for (int bits : {3, 4}) {
    const auto base = QuantEaseOptions().withBits(bits).withNumIter(30);  // the reference's loop
    const LayerQuantResult fromW = quantizeQuantEase(l.w, l.h, QuantEaseOptions(base).withInit(QuantEaseInit::Weights));
    const LayerQuantResult fromRtn = quantizeQuantEase(l.w, l.h, QuantEaseOptions(base).withInit(QuantEaseInit::Rtn));
    EXPECT_LT(fromW.relError, fromRtn.relError) << bits << " bits";
    EXPECT_EQ(fromW.objectiveTrace.size(), 21u) << "from W the first rounding sweep makes the first iterate";
  }
  // The first sweep from W is sequential rounding with error feedback: on a small problem it
  // equals a dense loop that rounds column j at W_j + sum_{k<j} (W_k - Q_k) H_kj / H_jj.
  const auto s = makeLayer(4, 12, 64, 3);
  const LayerQuantResult one =
      quantizeQuantEase(s.w, s.h, QuantEaseOptions().withBits(3).withNumIter(1).withBlockSize(5).withInit(QuantEaseInit::Weights));
  const at::Tensor h = s.h.to(at::kFloat);
  const at::Tensor scale = one.scales.expand({4, 12}), zero = one.zeros.expand({4, 12});
  at::Tensor q = s.w.clone();
  for (int64_t j = 0; j < 12; ++j) {
    at::Tensor beta = s.w.select(1, j).clone();
    for (int64_t k = 0; k < j; ++k) beta += (s.w.select(1, k) - q.select(1, k)) * h[k][j] / h[j][j];
    const at::Tensor code = at::clamp(at::round(beta / scale.select(1, j)) + zero.select(1, j), 0, 7);
    q.select(1, j).copy_((code - zero.select(1, j)) * scale.select(1, j));
  }
  EXPECT_TRUE(at::allclose(one.weight, q, 1e-5, 1e-6)) << (one.weight - q).abs().max().item<double>();
}

// Issue 16, cause 2: the reference's every third sweep (1, 4, 7, ...) is relaxed, each weight to its
// unconstrained optimum; the rounding sweep after it leaves the local minimum the earlier ones
// settled in. We rounded every sweep (1.984% vs 1.666% w3 on the layer).
TEST(QuantEase, RelaxedSweepsLeaveTheLocalMinimum) {
  const auto l = makeLayer();
  for (int bits : {3, 4}) {
    const auto base = QuantEaseOptions().withBits(bits).withNumIter(30).withInit(QuantEaseInit::Weights);
    const LayerQuantResult relaxed = quantizeQuantEase(l.w, l.h, base);
    const LayerQuantResult rounded = quantizeQuantEase(l.w, l.h, QuantEaseOptions(base).withRelaxedSweeps(false));
    EXPECT_LT(relaxed.relError, rounded.relError) << bits << " bits";
    // The trace holds the rounded iterates only: 30 sweeps, 9 of them relaxed.
    EXPECT_EQ(relaxed.objectiveTrace.size(), 21u);
  }
  int relaxedCount = 0;
  for (int it = 0; it < 30; ++it) relaxedCount += relaxedSweep(it, 30);
  EXPECT_EQ(relaxedCount, 9);
  EXPECT_TRUE(relaxedSweep(1, 30) && relaxedSweep(25, 30) && !relaxedSweep(26, 30) && !relaxedSweep(28, 30));
  // A relaxed sweep is a Gauss-Seidel sweep on the unconstrained quadratic: CoordinateDescent from
  // a point, one relaxed sweep, against a dense loop.
  const auto s = makeLayer(3, 10, 64, 5);
  const at::Tensor h = s.h.to(at::kFloat);
  const at::Tensor start = at::round(s.w * 2) / 2;
  const at::Tensor ones = at::ones_like(s.w);
  CoordinateDescent cd(s.w, start, at::zeros_like(s.w), h, ones, at::zeros_like(s.w), quant::QuantSpec().withBits(4), 4);
  cd.sweep(jobs::Progress::none(), 0, 1, /*quantize=*/false);
  at::Tensor g = start.clone();
  for (int64_t j = 0; j < 10; ++j) {
    at::Tensor beta = g.select(1, j).clone();
    for (int64_t k = 0; k < 10; ++k) beta += (s.w.select(1, k) - g.select(1, k)) * h[k][j] / h[j][j];
    g.select(1, j).copy_(beta);
  }
  EXPECT_TRUE(at::allclose(cd.weight(), g, 1e-4, 1e-5)) << (cd.weight() - g).abs().max().item<double>();
}

// "And better": the result is the best rounded iterate, not the last, so QuantEase from GPTQ is
// never worse than GPTQ, and relError is the smallest value of the trace.
TEST(QuantEase, ResultIsTheBestRoundedIterate) {
  const auto l = makeLayer();
  for (bool gptqInit : {false, true}) {
    const LayerQuantResult r = quantizeQuantEase(l.w, l.h, QuantEaseOptions().withBits(3).withGptqInit(gptqInit));
    double best = r.objectiveTrace.front();
    for (double f : r.objectiveTrace) best = std::min(best, f);
    EXPECT_NEAR(best / totalEnergy(l), r.relError, 1e-4 * r.relError);
  }
  const auto spec = quant::QuantSpec().withBits(3);
  const double gptq = quantizeGptq(l.w, l.h, GptqOptions().withSpec(spec)).relError;
  EXPECT_LE(quantizeQuantEase(l.w, l.h, QuantEaseOptions().withSpec(spec).withGptqInit(true)).relError, gptq);
}

TEST(QuantEase, GroupsAndSymmetricGridHold) {
  const auto l = makeLayer();
  const auto opts =
      QuantEaseOptions().withBits(4).withGroupSize(32).withSymmetric(true).withNumIter(4).withInit(QuantEaseInit::Weights);
  const LayerQuantResult r = quantizeQuantEase(l.w, l.h, opts);
  EXPECT_LE(test::maxDistinctPerGroup(r.weight, 32), 16);
  EXPECT_GE(r.codes.min().item<int>(), -8);
  EXPECT_LE(r.codes.max().item<int>(), 7);
  expectNonIncreasing(r.objectiveTrace);
}

TEST(QuantEase, GptqInitMinimisesDistanceToOriginalWeights) {
  const auto l = makeLayer();
  for (bool actOrder : {false, true}) {
    const auto spec = quant::QuantSpec().withBits(3).withGroupSize(32).withActOrder(actOrder);
    const LayerQuantResult g = quantizeGptq(l.w, l.h, GptqOptions().withSpec(spec));
    const LayerQuantResult q =
        quantizeQuantEase(l.w, l.h, QuantEaseOptions().withSpec(spec).withGptqInit(true).withNumIter(5));
    EXPECT_EQ(q.method, "gptq_quantease");
    // Starts at GPTQ's objective measured against the ORIGINAL W ...
    EXPECT_NEAR(q.objectiveTrace.front() / totalEnergy(l), g.relError, 1e-4 * g.relError);
    expectNonIncreasing(q.objectiveTrace);
    // ... and strictly improves on it. Targeting GPTQ's output instead would leave it unchanged.
    EXPECT_LT(q.relError, g.relError * 0.999) << "act_order " << actOrder;
    EXPECT_FALSE(at::equal(q.weight, g.weight));
    EXPECT_TRUE(at::equal(q.gIdx, g.gIdx));  // GPTQ's grid is kept
    EXPECT_TRUE(at::equal(reconstructWeight(q), q.weight));
  }
}

TEST(QuantEase, OutlierVariantWritesUpdatesIntoQuantizedWeights) {
  const auto l = makeLayer();
  const auto opts = QuantEaseOptions().withBits(3).withGroupSize(32).withNumIter(4).withOutlier(0.01);
  const LayerQuantResult r = quantizeQuantEase(l.w, l.h, opts);
  EXPECT_EQ(r.method, "quantease_outlier");
  // Away from the outliers the returned weight itself must take at most 2^bits values per row
  // and group (at outlier positions, the dense value from the codes stands in).
  const at::Tensor idx = r.gIdx.to(at::kLong);
  const at::Tensor deq = (r.codes.to(at::kFloat) - r.zeros.index_select(1, idx)) * r.scales.index_select(1, idx);
  at::Tensor dense = r.weight.clone();
  const at::Tensor flat = r.outlierIndices.select(1, 0) * 128 + r.outlierIndices.select(1, 1);
  dense.view({-1}).index_copy_(0, flat, deq.reshape({-1}).index_select(0, flat));
  EXPECT_LE(test::maxDistinctPerGroup(dense, 32), 8);
  EXPECT_FALSE(at::allclose(r.weight, l.w));
  EXPECT_GT(r.relError, 0.0);
  EXPECT_TRUE(at::allclose(reconstructWeight(r), r.weight));
}

TEST(QuantEase, OutlierCorrectionIsDividedByHessianDiagonal) {
  // Inputs scaled up so H's diagonal is far from 1: a correction without / H_jj overshoots and
  // the iteration blows up.
  auto l = makeLayer();
  l.x = l.x * 30.0;
  l.h = hessianFromInputs(l.x, jobs::Progress::none());
  for (bool structured : {false, true}) {
    const auto opts =
        QuantEaseOptions().withBits(3).withNumIter(6).withOutlier(0.02, structured).withInit(QuantEaseInit::Weights);
    const LayerQuantResult r = quantizeQuantEase(l.w, l.h, opts);
    expectNonIncreasing(r.objectiveTrace);
    EXPECT_TRUE(std::isfinite(r.relError));
    EXPECT_LT(r.relError, quantizeRtn(l.w, opts.spec, l.h).relError);
    EXPECT_NEAR(r.objectiveTrace.back() / totalEnergy(l), r.relError, 1e-3 * r.relError);
  }
}

TEST(QuantEase, OutlierFractionIsExactAndHelps) {
  const auto l = makeLayer();
  const auto base = QuantEaseOptions().withBits(3).withNumIter(5);
  const LayerQuantResult plain = quantizeQuantEase(l.w, l.h, base);

  auto u = base;
  u.withOutlier(0.01);
  const LayerQuantResult ru = quantizeQuantEase(l.w, l.h, u);
  const int64_t k = std::llround(0.01 * 64 * 128);  // 82
  EXPECT_EQ(ru.outlierValues.numel(), k);
  EXPECT_EQ(ru.outlierIndices.size(0), k);
  EXPECT_EQ(std::get<0>(at::_unique(ru.outlierIndices.select(1, 0) * 128 + ru.outlierIndices.select(1, 1))).numel(), k);
  EXPECT_NEAR(ru.outlierBits, k * 48.0 / (64 * 128), 1e-12);
  EXPECT_LT(ru.relError, plain.relError);

  auto s = base;
  s.withOutlier(0.05, true);
  const LayerQuantResult rs = quantizeQuantEase(l.w, l.h, s);
  ASSERT_EQ(rs.keptColumns.numel(), 6);  // round(0.05 * 128)
  EXPECT_EQ(std::get<0>(at::_unique(rs.keptColumns)).numel(), 6);
  EXPECT_EQ(rs.outlierValues.numel(), 6 * 64);
  EXPECT_NEAR(rs.outlierBits, 6 * (16.0 * 64 + 32) / (64 * 128), 1e-12);
  EXPECT_LT(rs.relError, plain.relError);
  // The dense part of a kept column is exactly 0; the column's weight is full precision.
  const at::Tensor kept = rs.keptColumns;
  const at::Tensor idx = rs.gIdx.to(at::kLong).index_select(0, kept);
  const at::Tensor zeroPts = rs.zeros.index_select(1, idx);
  EXPECT_TRUE(at::equal(rs.codes.index_select(1, kept).to(at::kFloat), zeroPts));
  EXPECT_TRUE(at::allclose(reconstructWeight(rs), rs.weight));
  // The outlier channel (3, input scale x8) is among the kept columns.
  EXPECT_TRUE(at::any(kept == 3).item<bool>());
}

// A down projection's layer: ReLU inputs (H has a large rank-1 mean part, lambda_max >> H_jj) and
// a few heavy weights per row, as trained MLP weights have.
test::Layer reluLayer(int64_t out = 32, int64_t in = 256, int64_t tokens = 1024) {
  at::Generator g = at::detail::createCPUGenerator(17);
  test::Layer l;
  l.w = at::randn({out, in}, g, at::kFloat);
  const at::Tensor heavy = at::rand({out, in}, g) < 0.01;
  l.w.masked_fill_(heavy, 0.0).add_(heavy.to(at::kFloat) * at::randn({out, in}, g) * 8);
  l.x = at::relu(at::randn({tokens, in}, g, at::kFloat));
  l.h = hessianFromInputs(l.x, jobs::Progress::none());
  return l;
}

// Issue 16, causes 3 and 4: the outlier variant changed nothing on a ReLU-input layer (4.036% vs
// 4.044% on the 768x3072 layer; the reference reaches 1.863%). Its support grew from 0 by
// iterative-hard-thresholding steps of alpha / lambda_max(H), negligible where lambda_max >> H_jj,
// and its grid kept each row's full range. Now the support starts at the largest |W| and the grid
// is fitted to the other weights.
TEST(QuantEase, KeptWeightsNarrowTheGridAndLowerTheError) {
  const auto l = reluLayer();
  const double lambda = largestEigenvalue(l.h);
  EXPECT_GT(lambda, 50 * at::diagonal(l.h).max().item<double>()) << "the fixture is the hard case";
  for (int bits : {3, 4}) {
    const auto base = QuantEaseOptions().withBits(bits).withNumIter(12);
    const LayerQuantResult plain = quantizeQuantEase(l.w, l.h, base);
    const LayerQuantResult kept = quantizeQuantEase(l.w, l.h, QuantEaseOptions(base).withOutlier(0.01));
    EXPECT_LT(kept.relError, 0.7 * plain.relError) << bits << " bits";
    // Every row's step is smaller: the heavy weights it kept no longer span its grid.
    EXPECT_TRUE(at::all(kept.scales <= plain.scales).item<bool>());
    EXPECT_LT(kept.scales.mean().item<double>(), 0.8 * plain.scales.mean().item<double>());
    // The kept weights are the heavy ones, at full value.
    const at::Tensor flat = kept.outlierIndices.select(1, 0) * 256 + kept.outlierIndices.select(1, 1);
    const at::Tensor keptAbs = at::abs(l.w.flatten().index_select(0, flat));
    EXPECT_GT(keptAbs.min().item<double>(), at::abs(l.w).median().item<double>() * 4);
  }
}

// Structured outliers keep whole input columns; the reference picks the columns of largest
// ||W_col||, which ignores what the column's input carries. The output energy ||W_col||^2 H_jj
// finds the activation outlier channels a kept column is for.
TEST(QuantEase, StructuredKeepsTheHighEnergyInputChannels) {
  const auto l = makeLayer();
  const auto opts = QuantEaseOptions().withBits(3).withNumIter(6).withOutlier(2.0 / 128, true);
  const LayerQuantResult r = quantizeQuantEase(l.w, l.h, opts);
  ASSERT_EQ(r.keptColumns.numel(), 2);
  // Channels 3 (x8) and 77 (x5) carry the outlier inputs of the fixture.
  EXPECT_TRUE(at::any(r.keptColumns == 3).item<bool>());
  EXPECT_TRUE(at::any(r.keptColumns == 77).item<bool>());
  EXPECT_LT(r.relError, quantizeQuantEase(l.w, l.h, QuantEaseOptions().withBits(3).withNumIter(6)).relError * 0.9);
}

// Inputs like a layer after a norm with a few shifted (asymmetric) outlier channels: a shared
// low-rank part and channels with a large mean, so H is dominated by a few directions.
test::Layer shiftedLayer(int64_t out = 64, int64_t in = 512, int64_t tokens = 2048) {
  at::Generator g = at::detail::createCPUGenerator(23);
  test::Layer l;
  l.w = at::randn({out, in}, g, at::kFloat) * 0.02;
  const at::Tensor mix = at::randn({16, in}, g, at::kFloat);
  l.x = at::randn({tokens, in}, g, at::kFloat) + at::matmul(at::randn({tokens, 16}, g, at::kFloat), mix) * 0.5;
  for (int64_t c : {int64_t{5}, int64_t{100}, int64_t{201}}) l.x.select(1, c).mul_(20.0).add_(40.0);
  l.h = hessianFromInputs(l.x, jobs::Progress::none());
  return l;
}

// Issue 16, "and better": the reference's descent from W is local; on strongly correlated inputs
// it settles above GPTQ (2.241% vs 1.988% w3 on bench_quantease's first layer, the reference the
// same). QuantEase's default (quantease_init best) also descends from GPTQ's rounding and keeps the
// better result, so it is below GPTQ and never above the descent from W.
TEST(QuantEase, DefaultKeepsTheBetterOfTheDescentsFromWAndFromGptq) {
  const auto l = shiftedLayer();
  for (int bits : {3, 4}) {
    const auto spec = quant::QuantSpec().withBits(bits);
    const double gptq = quantizeGptq(l.w, l.h, GptqOptions().withSpec(spec)).relError;
    const auto base = QuantEaseOptions().withSpec(spec).withNumIter(30);
    const LayerQuantResult fromW = quantizeQuantEase(l.w, l.h, QuantEaseOptions(base).withInit(QuantEaseInit::Weights));
    const LayerQuantResult best = quantizeQuantEase(l.w, l.h, base);
    EXPECT_GT(fromW.relError, gptq) << bits << " bits: the fixture is the case where the descent from W loses";
    EXPECT_LT(best.relError, gptq) << bits << " bits";
    EXPECT_LE(best.relError, fromW.relError * (1 + 1e-6)) << bits << " bits: the descent from W is one of the two";
    EXPECT_EQ(best.method, "quantease");
    // 30 sweeps from W (21 of them rounding), then GPTQ's start polished by at most 30 / 10 rounding
    // sweeps (fewer once one no longer lowers the objective).
    EXPECT_GE(best.iterations, 31);
    EXPECT_LE(best.iterations, 30 + polishSweeps(30));
    EXPECT_EQ(polishSweeps(30), 3);
    EXPECT_EQ(polishSweeps(5), 1);
    EXPECT_EQ(best.objectiveTrace.size(), 21u + 1u + static_cast<size_t>(best.iterations - 30));
    const double polished = *std::min_element(best.objectiveTrace.begin() + 21, best.objectiveTrace.end());
    EXPECT_LT(polished, best.objectiveTrace[21]) << "the polish improves GPTQ's rounding";
    EXPECT_TRUE(at::equal(reconstructWeight(best), best.weight));
  }
  EXPECT_EQ(parseQuantEaseInit("best"), QuantEaseInit::Best);
  EXPECT_EQ(parseQuantEaseInit("gptq"), QuantEaseInit::Gptq);
  EXPECT_STREQ(quantEaseInitName(QuantEaseInit::Best), "best");
  test::expectError([] { parseQuantEaseInit("zero"); }, "quantease_init:");
}

// Issue 16: outliers must always lower the error. Started from W, structured 1% on the 768x3072
// ReLU layer ended above plain QuantEase (5.337% vs 5.292% w3): more freedom, a different greedy
// path. The outlier variant now also starts from GPTQ with the kept weights left unrounded.
TEST(QuantEase, OutliersAlwaysLowerTheError) {
  const test::Layer layers[] = {makeLayer(), reluLayer(), shiftedLayer()};
  for (const auto& l : layers) {
    for (int bits : {3, 4}) {
      const auto base = QuantEaseOptions().withBits(bits).withNumIter(12);
      const double plain = quantizeQuantEase(l.w, l.h, base).relError;
      const int64_t cols = std::max<int64_t>(1, std::llround(0.01 * l.w.size(1)));
      const double unstructured = quantizeQuantEase(l.w, l.h, QuantEaseOptions(base).withOutlier(0.01)).relError;
      const double structured =
          quantizeQuantEase(l.w, l.h, QuantEaseOptions(base).withOutlier(static_cast<double>(cols) / l.w.size(1), true))
              .relError;
      EXPECT_LT(unstructured, plain) << l.w.sizes() << " " << bits << " bits";
      EXPECT_LT(structured, plain) << l.w.sizes() << " " << bits << " bits";
    }
  }
}

TEST(Gptq, KeptWeightsAreNotRoundedAndLeaveTheGrid) {
  const auto l = reluLayer();
  const auto spec = quant::QuantSpec().withBits(3);
  const LayerQuantResult plain = quantizeGptq(l.w, l.h, GptqOptions().withSpec(spec));
  const int64_t k = 82;
  at::Tensor keep = at::zeros_like(l.w);
  keep.view({-1}).index_fill_(0, std::get<1>(at::topk(at::abs(l.w).flatten(), k)), 1.0);
  GptqOptions o = GptqOptions().withSpec(spec);
  o.keep = keep;
  const LayerQuantResult r = quantizeGptq(l.w, l.h, o);
  ASSERT_EQ(r.outlierValues.numel(), k);
  const at::Tensor flat = r.outlierIndices.select(1, 0) * l.w.size(1) + r.outlierIndices.select(1, 1);
  EXPECT_TRUE(at::equal(std::get<0>(at::sort(flat)), at::nonzero(keep.flatten()).flatten()));
  // Codes at the kept weights are the zero point, so the dense part is 0 there and the weight is
  // the sparse value; the grid is fitted to the other weights.
  const at::Tensor zeroPts = r.zeros.expand_as(l.w).flatten().index_select(0, flat);
  EXPECT_TRUE(at::equal(r.codes.flatten().index_select(0, flat).to(at::kFloat), zeroPts));
  EXPECT_TRUE(at::allclose(r.weight.flatten().index_select(0, flat), r.outlierValues));
  EXPECT_TRUE(at::all(r.scales <= plain.scales).item<bool>());
  EXPECT_LT(r.relError, 0.7 * plain.relError);
  EXPECT_TRUE(at::allclose(reconstructWeight(r), r.weight));
  o.keep = at::ones({3, 3});
  test::expectError([&] { quantizeGptq(l.w, l.h, o); }, "kept-weight mask");
}

TEST(QuantEase, DeadColumnsStayFinite) {
  auto l = makeLayer();
  l.x.select(1, 11).zero_();
  l.h = hessianFromInputs(l.x, jobs::Progress::none());
  const LayerQuantResult r = quantizeQuantEase(l.w, l.h, QuantEaseOptions().withBits(4).withNumIter(3).withOutlier(0.01));
  EXPECT_TRUE(at::all(at::isfinite(r.weight)).item<bool>());
  EXPECT_NEAR(r.relError, test::directRelError(l.w, r.weight, l.x), 1e-5 * r.relError);
}

TEST(QuantEase, LargestEigenvalueBoundsTheSpectrum) {
  const auto l = makeLayer(8, 64, 256);
  const double exact = at::linalg_eigvalsh(l.h, "L").max().item<double>();
  const double est = largestEigenvalue(l.h);
  EXPECT_GE(est, exact * 0.999);
  EXPECT_LE(est, exact * 1.06);
}

TEST(QuantEase, BadOptionsNameTheKey) {
  const auto l = makeLayer();
  test::expectError([&] { quantizeQuantEase(l.w, l.h, QuantEaseOptions().withNumIter(-1)); }, "num_iter:");
  test::expectError([&] { quantizeQuantEase(l.w, l.h, QuantEaseOptions().withOutlier(1.5)); }, "outlier:");
  test::expectError([&] { quantizeQuantEase(l.w, l.h, QuantEaseOptions().withOutlier(0.01).withAlpha(0)); }, "alpha:");
  test::expectError([&] { quantizeQuantEase(l.w, l.h, QuantEaseOptions().withOutlier(0, true)); },
                    "structured_outlier:");
  test::expectError([&] { quantizeQuantEase(l.w, l.h, QuantEaseOptions().withOutlier(0.01).withNumIter(0)); },
                    "num_iter:");
  test::expectError([&] { quantizeLayer(l.w, l.h, LayerQuantOptions().withMethod(Method::Gptq).withOutlier(0.01)); },
                    "outlier:");
  test::expectError([&] { parseMethod("awq"); }, "method:");
}

TEST(QuantEase, CancelThrowsCancelled) {
  const auto l = makeLayer();
  test::CancelAfter progress(2);
  EXPECT_THROW(quantizeQuantEase(l.w, l.h, QuantEaseOptions().withBlockSize(32).withNumIter(3), progress),
               qs::Cancelled);
  test::CancelAfter progress2(2);
  EXPECT_THROW(quantizeQuantEase(l.w, l.h, QuantEaseOptions().withOutlier(0.01).withNumIter(3), progress2),
               qs::Cancelled);
}

TEST(LayerQuant, FromInputsTimesHessianSeparately) {
  const auto l = makeLayer();
  for (const char* m : {"rtn", "gptq", "quantease", "gptq_quantease"}) {
    const auto opts = LayerQuantOptions().withMethod(parseMethod(m)).withBits(4).withNumIter(2);
    const LayerQuantResult r = quantizeLayerFromInputs(l.w, l.x, opts);
    EXPECT_EQ(r.method, m);
    EXPECT_GT(r.hessianSeconds, 0.0);
    EXPECT_NEAR(r.relError, test::directRelError(l.w, r.weight, l.x), 1e-5 * r.relError);
  }
}

}  // namespace
}  // namespace qs::algo
