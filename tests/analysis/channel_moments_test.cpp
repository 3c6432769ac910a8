// The CPU twin of the channel statistics kernel (batchMoments) against float64 moments of the
// materialised rows, and its dispatch: CPU tensors never reach a registered CUDA kernel, and the
// CUDA-tensor fallback announces itself once per operation (core/util/fallback.h).
#include "core/analysis/channel_moments.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/util/fallback.h"
#include "core/util/log.h"

namespace qs::analysis {
namespace {

// Normwise: max |a - b| <= rtol * max |b|.
void expectClose(const at::Tensor& a, const at::Tensor& b, double rtol, const std::string& what) {
  ASSERT_TRUE(a.defined()) << what;
  const double diff = (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
  const double scale = b.to(at::kDouble).abs().max().item<double>();
  EXPECT_LE(diff, rtol * scale) << what << ": max diff " << diff << " (scale " << scale << ")";
}

at::Tensor activations(int64_t n, int64_t c) {
  at::manual_seed(31);
  at::Tensor x = (at::randn({n, c}) + at::exp(0.5 * at::randn({n, c}))) * (at::rand({c}) * 3 + 0.1) +
                 at::randn({c}) * 2;
  x.select(1, 3).mul_(50);
  return x;
}

// Reference: float64 moments of the kept rows (the definitions in channel_moments.h).
void checkReference(const at::Tensor& x, const at::Tensor& keep, double rtol) {
  const BatchMoments m = batchMoments(x, keep, true);
  const at::Tensor xs = (keep.defined() ? x.index_select(0, keep.nonzero().squeeze(1)) : x).to(at::kDouble);
  ASSERT_EQ(m.count, xs.size(0));
  const at::Tensor d = xs - xs.mean(0);
  expectClose(m.mean, xs.mean(0), rtol, "mean");
  expectClose(m.m2, d.pow(2).sum(0), rtol, "m2");
  expectClose(m.m3, d.pow(3).sum(0), rtol, "m3");
  expectClose(m.m4, d.pow(4).sum(0), rtol, "m4");
  EXPECT_TRUE(at::equal(m.min, std::get<0>(xs.min(0))));
  EXPECT_TRUE(at::equal(m.max, std::get<0>(xs.max(0))));
  at::Tensor tok = std::get<0>(x.to(at::kFloat).abs().max(1));
  if (keep.defined()) tok = tok.masked_fill(keep.logical_not(), 0);
  EXPECT_TRUE(at::equal(m.tokenAbsmax, tok));
}

TEST(BatchMoments, MatchesFloat64Moments) {
  // float32 cascade sums of centred values: relative error ~1e-7 of each moment's scale.
  checkReference(activations(1500, 40), {}, 1e-5);
}

TEST(BatchMoments, KeepMaskLeavesRowsOutAndZeroesTheirAbsmax) {
  const at::Tensor x = activations(600, 24);
  at::manual_seed(32);
  checkReference(x, at::rand({600}) > 0.4, 1e-5);
  const BatchMoments none = batchMoments(x, at::zeros({600}, at::kBool), true);
  EXPECT_EQ(none.count, 0);
  EXPECT_FALSE(none.mean.defined());
  EXPECT_EQ(none.tokenAbsmax.abs().sum().item<float>(), 0.f);
}

TEST(BatchMoments, HalfInputsAreWidenedNotOverflowed) {
  // 300^4 overflows float16 (max 65504); the twin widens to float32 first.
  const at::Tensor x = (activations(256, 16) * 5).to(at::kHalf);  // |x| < 1e4: finite in float16
  ASSERT_TRUE(at::isfinite(x).all().item<bool>());
  ASSERT_GT(x.to(at::kFloat).abs().max().item<float>(), 16.f);  // 16^4 = 65536: a float16 m4 would overflow
  const BatchMoments m = batchMoments(x, {}, false);
  EXPECT_FALSE(m.tokenAbsmax.defined());
  EXPECT_TRUE(at::isfinite(m.m4).all().item<bool>());
  const at::Tensor xd = x.to(at::kDouble);
  expectClose(m.m4, (xd - xd.mean(0)).pow(4).sum(0), 1e-5, "m4 of half input");
}

BatchMoments countingImpl(const at::Tensor&, const at::Tensor&) {
  ADD_FAILURE() << "a CPU tensor reached the CUDA kernel";
  return {};
}

TEST(BatchMomentsDispatch, CpuTensorUsesReferenceEvenWithCudaKernelRegistered) {
  const BatchMomentsImpl before = cudaBatchMoments();
  registerCudaBatchMoments(&countingImpl);
  EXPECT_EQ(cudaBatchMoments(), &countingImpl);
  const at::Tensor x = activations(64, 8);
  const BatchMoments a = batchMomentsDispatch(x, {}, true), b = batchMoments(x, {}, true);
  EXPECT_TRUE(at::equal(a.m4, b.m4));
  EXPECT_TRUE(at::equal(a.tokenAbsmax, b.tokenAbsmax));
  registerCudaBatchMoments(before);
  EXPECT_EQ(cudaBatchMoments(), before);
}

// The line a CUDA tensor without a registered kernel produces (CPU-only LibTorch cannot make one):
// once per operation, naming the operation, the device and the path taken.
TEST(FallbackLog, OncePerOperation) {
  std::vector<std::string> lines;
  const log::Level level = log::level();
  log::setLevel(log::Level::Info);
  log::setSink([&](log::Level, const std::string& m) { lines.push_back(m); });
  EXPECT_TRUE(log::fallbackOnce("test_op_a", "cuda:0", "the reference ops"));
  EXPECT_FALSE(log::fallbackOnce("test_op_a", "cuda:1", "the reference ops"));
  EXPECT_TRUE(log::fallbackOnce("test_op_b", "cuda:0", "the reference ops"));
  log::setSink(nullptr);
  log::setLevel(level);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "test_op_a: no CUDA kernel registered; using the reference ops on cuda:0");
  EXPECT_NE(lines[1].find("test_op_b"), std::string::npos);
}

}  // namespace
}  // namespace qs::analysis
