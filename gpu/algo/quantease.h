// Raw-pointer CUDA API of the QuantEase sweep-block kernel (mirrors core/algo/quantease.h; the
// CPU twin is qs::algo::sweepBlockReference). Plain C++: no torch and no device code here.
//
// For columns c = b0 .. b0+cnt-1 in order, every row o of the row-major [rows, cols] matrices:
//   beta = wq[o,c] + p[o,c] / h[c,c];  q = clamp(rint(beta / scale[o,c]) + zero[o,c], qmin, qmax)
//   new = (q - zero) * scale;  delta[o, c-b0] = wq[o,c] - new;  wq[o,c] = new;  codes[o,c] = q
//   p[o, b0..b0+cnt) += delta * h[c, b0..b0+cnt)
// with the same correctly rounded float32 operations as the CPU twin (no FMA contraction), so a
// block agrees bit for bit. One warp per row keeps the row's slice of p in registers; the rest of
// p is the caller's GEMM. Returns cudaErrorInvalidValue for cnt outside 1..kMaxSweepBlock, a
// block outside the columns or null pointers; otherwise the launch status (asynchronous).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace qs::gpu {

constexpr int kMaxSweepBlock = 256;  // columns per block the kernel takes (8 registers per lane)

cudaError_t quantEaseSweepBlockF32(float* p, float* wq, float* codes, float* delta, const float* h,
                                   const float* scale, const float* zero, int64_t rows, int64_t cols,
                                   int64_t b0, int cnt, float qmin, float qmax, cudaStream_t stream = nullptr);

}  // namespace qs::gpu
