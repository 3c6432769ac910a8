// The one-pass channel statistics kernel against its CPU twin qs::analysis::batchMoments and a
// float64 computation on the materialised rows. Tolerances: min, max and the token absmax are
// exact (the kernel returns input values); the moments agree normwise within 1e-10 of the
// float64 reference (float64 Welford sums, chunk folds) and within 1e-5 of the sum of |terms|
// of the CPU twin, whose batch sums are float32 cascades (channel_moments.cpp). *_CUDA tests skip without a device.
#include "gpu/analysis/channel_stats.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "core/analysis/channel_moments.h"
#include "core/analysis/channel_stats.h"
#include "tests/support/cuda_support.h"

#ifdef QS_GPU_TORCH
#include "gpu/register.h"
#endif

namespace qs::gpu {
namespace {

using analysis::BatchMoments;

// Device buffer owning cudaMalloc'd memory.
struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) { EXPECT_EQ(cudaMalloc(&p, bytes ? bytes : 1), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(p); }
  template <typename T>
  T* as() const { return static_cast<T*>(p); }
};

at::Tensor download(const void* d, int64_t n, at::ScalarType dt) {
  at::Tensor t = at::empty({n}, dt);
  EXPECT_EQ(cudaMemcpy(t.data_ptr(), d, n * t.element_size(), cudaMemcpyDeviceToHost), cudaSuccess);
  return t;
}

// Runs the kernel on contiguous CPU rows [N, C] (fp32/fp16/bf16) and an optional bool keep [N].
BatchMoments runKernel(const at::Tensor& rows, const at::Tensor& keep) {
  const int64_t n = rows.size(0), c = rows.size(1);
  DeviceBuffer x(rows.numel() * rows.element_size()), k(n), mean(c * 8), m2(c * 8), m3(c * 8), m4(c * 8),
      mn(c * 8), mx(c * 8), tok(n * 4), count(8);
  const size_t wsBytes = channelMomentsWorkspaceBytes(n, c);
  DeviceBuffer ws(wsBytes);
  EXPECT_EQ(cudaMemcpy(x.p, rows.data_ptr(), rows.numel() * rows.element_size(), cudaMemcpyHostToDevice),
            cudaSuccess);
  if (keep.defined()) {
    EXPECT_EQ(cudaMemcpy(k.p, keep.to(at::kBool).contiguous().data_ptr(), n, cudaMemcpyHostToDevice), cudaSuccess);
  }
  const uint8_t* keepPtr = keep.defined() ? k.as<uint8_t>() : nullptr;
  ChannelMomentsOut out;
  out.mean = mean.as<double>();
  out.m2 = m2.as<double>();
  out.m3 = m3.as<double>();
  out.m4 = m4.as<double>();
  out.min = mn.as<double>();
  out.max = mx.as<double>();
  out.tokenAbsmax = tok.as<float>();
  out.count = count.as<int64_t>();
  cudaError_t err = cudaErrorInvalidValue;
  switch (rows.scalar_type()) {
    case at::kFloat: err = channelMomentsF32(x.as<float>(), keepPtr, n, c, out, ws.p, wsBytes); break;
    case at::kHalf: err = channelMomentsF16(x.as<uint16_t>(), keepPtr, n, c, out, ws.p, wsBytes); break;
    case at::kBFloat16: err = channelMomentsBF16(x.as<uint16_t>(), keepPtr, n, c, out, ws.p, wsBytes); break;
    default: break;
  }
  EXPECT_EQ(err, cudaSuccess) << cudaGetErrorString(err);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  BatchMoments r;
  r.count = download(count.p, 1, at::kLong).item<int64_t>();
  r.tokenAbsmax = download(tok.p, n, at::kFloat);
  if (r.count == 0) return r;
  r.mean = download(mean.p, c, at::kDouble);
  r.m2 = download(m2.p, c, at::kDouble);
  r.m3 = download(m3.p, c, at::kDouble);
  r.m4 = download(m4.p, c, at::kDouble);
  r.min = download(mn.p, c, at::kDouble);
  r.max = download(mx.p, c, at::kDouble);
  return r;
}

// Normwise: max |a - b| <= rtol * max |b| (moment sums span orders of magnitude across channels).
void expectClose(const at::Tensor& a, const at::Tensor& b, double rtol, const std::string& what) {
  ASSERT_TRUE(a.defined() && b.defined()) << what;
  const double diff = (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
  const double scale = b.to(at::kDouble).abs().max().item<double>();
  EXPECT_LE(diff, rtol * scale + 1e-300) << what << ": max diff " << diff << " (scale " << scale << ")";
}

// Kernel vs the CPU twin (same dtype) and vs float64 moments of the kept rows.
void checkAgainstCpu(const at::Tensor& rows, const at::Tensor& keep, const std::string& what) {
  const BatchMoments g = runKernel(rows, keep);
  const BatchMoments cpu = analysis::batchMoments(rows, keep, true);
  ASSERT_EQ(g.count, cpu.count) << what;
  EXPECT_TRUE(at::equal(g.tokenAbsmax, cpu.tokenAbsmax)) << what << ": token absmax";
  if (cpu.count == 0) return;
  EXPECT_TRUE(at::equal(g.min, cpu.min)) << what << ": min";
  EXPECT_TRUE(at::equal(g.max, cpu.max)) << what << ": max";
  const at::Tensor xs = (keep.defined() ? rows.index_select(0, keep.nonzero().squeeze(1)) : rows).to(at::kDouble);
  const at::Tensor d = xs - xs.mean(0);
  expectClose(g.mean, xs.mean(0), 1e-12, what + " mean vs float64");
  expectClose(g.m2, d.pow(2).sum(0), 1e-10, what + " m2 vs float64");
  expectClose(g.m3, d.pow(3).sum(0), 1e-10, what + " m3 vs float64");
  expectClose(g.m4, d.pow(4).sum(0), 1e-10, what + " m4 vs float64");
  // The twin's float32 cascade sums err by ~log2(n) eps of the sum of |terms|; for M3 (terms of
  // both signs) that sum, not |M3|, is the scale.
  const auto twin = [&](const at::Tensor& a, const at::Tensor& b, const at::Tensor& absTerms, const char* name) {
    const double diff = (a - b).abs().max().item<double>(), scale = absTerms.max().item<double>();
    EXPECT_LE(diff, 1e-5 * scale) << what << " " << name << " vs CPU twin: max diff " << diff;
  };
  twin(g.m2, cpu.m2, d.pow(2).sum(0), "m2");
  twin(g.m3, cpu.m3, d.abs().pow(3).sum(0), "m3");
  twin(g.m4, cpu.m4, d.pow(4).sum(0), "m4");
}

// Heavy-tailed activations with per-channel offsets and an outlier channel.
at::Tensor activations(int64_t n, int64_t c, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor x = (at::randn({n, c}) + at::exp(0.5 * at::randn({n, c}))) * (at::rand({c}) * 3 + 0.1) +
                 at::randn({c}) * 2;
  x.select(1, c / 3).mul_(40);
  return x;
}

TEST(ChannelStats_CUDA, MatchesCpuTwinFloat32) {
  QS_REQUIRE_CUDA();
  // Channel counts around the 256-thread block and a partial warp; row counts around the chunking.
  for (auto [n, c] : {std::pair<int64_t, int64_t>{1, 7}, {33, 300}, {2048, 768}, {5000, 1000}, {70000, 64}})
    checkAgainstCpu(activations(n, c, 21), {}, std::to_string(n) + "x" + std::to_string(c));
}

TEST(ChannelStats_CUDA, MatchesCpuTwinHalfAndBFloat16) {
  QS_REQUIRE_CUDA();
  for (auto dt : {at::kHalf, at::kBFloat16})
    checkAgainstCpu(activations(1024, 520, 22).to(dt), {}, c10::toString(dt));
}

TEST(ChannelStats_CUDA, KeepMaskLeavesRowsOut) {
  QS_REQUIRE_CUDA();
  const at::Tensor x = activations(777, 129, 23);
  at::manual_seed(24);
  checkAgainstCpu(x, at::rand({777}) > 0.3, "keep 70%");
  checkAgainstCpu(x, at::zeros({777}, at::kBool), "keep none");
}

TEST(ChannelStats_CUDA, LargeOffsetKeepsItsNoise) {
  QS_REQUIRE_CUDA();
  at::manual_seed(25);
  const at::Tensor x = at::randn({4096, 64}) * 1e-2 + 1e4;  // float32: 1e4 keeps ~1e-3 resolution
  checkAgainstCpu(x, {}, "offset 1e4");
}

TEST(ChannelStats_CUDA, BatchesMergeIntoTheOnePassResult) {
  QS_REQUIRE_CUDA();
  const at::Tensor x = activations(3000, 200, 26);
  const BatchMoments whole = runKernel(x, {});
  const BatchMoments a = runKernel(x.narrow(0, 0, 1234).contiguous(), {});
  const BatchMoments b = runKernel(x.narrow(0, 1234, 3000 - 1234).contiguous(), {});
  // Fold the two batches with ChannelStats' merge, as the analysis does across batches.
  const double na = a.count, nb = b.count, n = na + nb;
  const at::Tensor delta = b.mean - a.mean;
  const at::Tensor m2 = a.m2 + b.m2 + delta * delta * (na * nb / n);
  expectClose(a.mean + delta * (nb / n), whole.mean, 1e-12, "merged mean");
  expectClose(m2, whole.m2, 1e-10, "merged m2");
}

#ifdef QS_GPU_TORCH
TEST(ChannelStats_CUDA, AnalysisDispatchesToKernel) {
  QS_REQUIRE_CUDA();
  ASSERT_GE(registerKernels(), 2);
  ASSERT_NE(analysis::cudaBatchMoments(), nullptr);
  at::manual_seed(27);
  const at::Tensor x = at::randn({3, 64, 96}).mul_(at::rand({96}) * 5);
  const at::Tensor keep = at::rand({3, 64}) > 0.1;
  analysis::ChannelStats cpu, gpu;
  cpu.update(x, {}, keep);
  gpu.update(x.cuda(), {}, keep.cuda());
  expectClose(gpu.mean().cpu(), cpu.mean(), 1e-5, "mean");
  expectClose(gpu.var().cpu(), cpu.var(), 1e-5, "var");
  expectClose(gpu.kurtosis().cpu(), cpu.kurtosis(), 1e-5, "kurtosis");
  EXPECT_TRUE(at::equal(gpu.absmax().cpu(), cpu.absmax()));
  ASSERT_EQ(gpu.topTokens().size(), cpu.topTokens().size());
  for (size_t i = 0; i < cpu.topTokens().size(); ++i)
    EXPECT_EQ(gpu.topTokens()[i].value, cpu.topTokens()[i].value) << i;
  EXPECT_EQ(gpu.positionAbsmax(), cpu.positionAbsmax());
}
#endif

// Argument checks happen before any CUDA call, so these run without a device.
TEST(ChannelStatsKernel, RejectsBadArgumentsWithoutLaunching) {
  ChannelMomentsOut none;
  EXPECT_EQ(channelMomentsF32(nullptr, nullptr, -1, 4, none, nullptr, 0), cudaErrorInvalidValue);
  EXPECT_EQ(channelMomentsF32(nullptr, nullptr, 4, 4, none, nullptr, 0), cudaErrorInvalidValue);
  EXPECT_EQ(channelMomentsWorkspaceBytes(0, 10), 0u);
  EXPECT_GT(channelMomentsWorkspaceBytes(10, 10), 0u);
  // Too many rows for the chunk grid (2^28 rows of 4096-row chunks fill gridDim.y).
  EXPECT_EQ(channelMomentsWorkspaceBytes(int64_t{1} << 29, 8), 0u);
}

}  // namespace
}  // namespace qs::gpu
