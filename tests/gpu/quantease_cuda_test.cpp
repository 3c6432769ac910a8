// The QuantEase sweep-block kernel against its CPU twin qs::algo::sweepBlockReference: same
// float32 operations in the same order per row, so one block must agree bit for bit. A whole
// QuantEase run on the device additionally differs by the GEMMs' rounding (cuBLAS vs the CPU
// BLAS), so it is held to the objective within 1e-4 relative and at most 0.1% of codes moved.
// *_CUDA tests skip without a device.
#include "gpu/algo/quantease.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/algo/quantease.h"
#include "core/algo/quantease_sweep.h"
#include "core/algo/weight_grid.h"
#include "core/quant/quant_spec.h"
#include "tests/algo/algo_fixtures.h"
#include "tests/support/cuda_support.h"

#ifdef QS_GPU_TORCH
#include "gpu/register.h"
#endif

namespace qs::gpu {
namespace {

float* upload(const at::Tensor& t) {
  void* d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, t.numel() * sizeof(float)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(d, t.contiguous().data_ptr<float>(), t.numel() * sizeof(float), cudaMemcpyHostToDevice),
            cudaSuccess);
  return static_cast<float*>(d);
}

at::Tensor download(const float* d, at::IntArrayRef shape) {
  at::Tensor t = at::empty(shape, at::kFloat);
  EXPECT_EQ(cudaMemcpy(t.data_ptr<float>(), d, t.numel() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  return t;
}

// A block of the kernel vs the reference on CPU copies of the same state.
void checkBlock(const quant::QuantSpec& spec, int64_t b0, int64_t cnt) {
  const algo::test::Layer l = algo::test::makeLayer(70, 300, 600, 17);
  const at::Tensor h = l.h.to(at::kFloat).contiguous();
  const algo::WeightGrid g = algo::observeWeight(l.w, spec);
  const at::Tensor scale = algo::expandToColumns(g.scales, g.gIdx).contiguous();
  const at::Tensor zero = algo::expandToColumns(g.zeros, g.gIdx).contiguous();
  const at::Tensor codes = quant::quantizeCodes(l.w, scale, zero, spec).contiguous();
  const at::Tensor wq = quant::dequantizeCodes(codes, scale, zero).contiguous();
  const at::Tensor p = at::matmul(l.w - wq, h).contiguous();
  algo::SweepBlock ref{p.clone(), wq.clone(), codes.clone(), h, scale, zero, at::zeros({70, cnt}), b0, cnt,
                       quant::intGrid(spec.bits, spec.symmetric), /*quantize=*/true, /*free=*/at::Tensor()};
  algo::sweepBlockReference(ref);
  float *dp = upload(p), *dw = upload(wq), *dc = upload(codes), *dd = upload(at::zeros({70, cnt})),
        *dh = upload(h), *ds = upload(scale), *dz = upload(zero);
  const cudaError_t err = quantEaseSweepBlockF32(dp, dw, dc, dd, dh, ds, dz, 70, 300, b0, static_cast<int>(cnt),
                                                 static_cast<float>(ref.grid.qmin), static_cast<float>(ref.grid.qmax));
  ASSERT_EQ(err, cudaSuccess) << cudaGetErrorString(err);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::string what = "b0 " + std::to_string(b0) + " cnt " + std::to_string(cnt);
  EXPECT_TRUE(at::equal(download(dp, {70, 300}), ref.p)) << what << ": p";
  EXPECT_TRUE(at::equal(download(dw, {70, 300}), ref.wq)) << what << ": wq";
  EXPECT_TRUE(at::equal(download(dc, {70, 300}), ref.codes)) << what << ": codes";
  EXPECT_TRUE(at::equal(download(dd, {70, cnt}), ref.delta)) << what << ": delta";
  for (float* d : {dp, dw, dc, dd, dh, ds, dz}) cudaFree(d);
}

TEST(QuantEaseSweep_CUDA, BlockMatchesCpuTwinBitForBit) {
  QS_REQUIRE_CUDA();
  // Every register count (1, 2, 4, 8 per lane), partial warps, a block at the end of the columns.
  for (auto [b0, cnt] : {std::pair<int64_t, int64_t>{0, 1}, {0, 32}, {7, 50}, {100, 128}, {44, 256}, {200, 100}})
    checkBlock(quant::QuantSpec().withBits(3), b0, cnt);
  checkBlock(quant::QuantSpec().withBits(4).withSymmetric(true), 64, 96);
  checkBlock(quant::QuantSpec().withBits(2).withGroupSize(20), 0, 160);
}

#ifdef QS_GPU_TORCH
TEST(QuantEaseSweep_CUDA, WholeRunOnDeviceMatchesCpu) {
  QS_REQUIRE_CUDA();
  ASSERT_GE(registerKernels(), 3);
  ASSERT_NE(algo::cudaSweepBlock(), nullptr);
  const algo::test::Layer l = algo::test::makeLayer(128, 512, 2048, 19);
  const auto opts = algo::QuantEaseOptions().withBits(3).withNumIter(5);
  const algo::LayerQuantResult cpu = algo::quantizeQuantEase(l.w, l.h, opts);
  const algo::LayerQuantResult gpu = algo::quantizeQuantEase(l.w.cuda(), l.h.cuda(), opts);
  ASSERT_EQ(cpu.objectiveTrace.size(), gpu.objectiveTrace.size());
  const double a = cpu.objectiveTrace.back(), b = gpu.objectiveTrace.back();
  EXPECT_LE(std::abs(a - b), 1e-4 * std::abs(a)) << "objective cpu " << a << " gpu " << b;
  const double moved = at::ne(cpu.codes, gpu.codes.cpu()).sum().item<double>() / cpu.codes.numel();
  EXPECT_LE(moved, 1e-3);
}
#endif

TEST(QuantEaseSweepKernel, RejectsBadArgumentsWithoutLaunching) {
  float x = 0.f;
  EXPECT_EQ(quantEaseSweepBlockF32(&x, &x, &x, &x, &x, &x, &x, 1, 300, 0, 0, -4, 3), cudaErrorInvalidValue);
  EXPECT_EQ(quantEaseSweepBlockF32(&x, &x, &x, &x, &x, &x, &x, 1, 300, 0, kMaxSweepBlock + 1, -4, 3),
            cudaErrorInvalidValue);
  EXPECT_EQ(quantEaseSweepBlockF32(&x, &x, &x, &x, &x, &x, &x, 1, 300, 250, 64, -4, 3), cudaErrorInvalidValue);
  EXPECT_EQ(quantEaseSweepBlockF32(nullptr, &x, &x, &x, &x, &x, &x, 1, 300, 0, 64, -4, 3), cudaErrorInvalidValue);
  EXPECT_EQ(quantEaseSweepBlockF32(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, 300, 0, 64, -4, 3),
            cudaSuccess);  // no rows: nothing to do
}

}  // namespace
}  // namespace qs::gpu
