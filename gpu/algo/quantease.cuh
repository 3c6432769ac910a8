// Device code of the QuantEase sweep-block kernel (gpu/algo/quantease.h): one warp per row.
// Lane l holds p[o, b0 + l + 32 i] in registers; for each column the owner lane broadcasts its
// p entry, every lane computes the (identical) coordinate step, lane 0 stores it, and each lane
// applies the rank-1 update to its own entries. Explicit __f*_rn intrinsics keep nvcc from fusing
// multiply-adds, which would round differently from the CPU twin.
#pragma once
#include <cstdint>

namespace qs::gpu::detail {

constexpr int kSweepWarpsPerBlock = 8;

template <int PerLane>
__global__ void quantEaseSweepBlock(float* __restrict__ p, float* __restrict__ wq, float* __restrict__ codes,
                                    float* __restrict__ delta, const float* __restrict__ h,
                                    const float* __restrict__ scale, const float* __restrict__ zero, int64_t rows,
                                    int64_t cols, int64_t b0, int cnt, float qmin, float qmax) {
  const int lane = threadIdx.x % 32;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kSweepWarpsPerBlock + threadIdx.x / 32;
  if (o >= rows) return;  // whole warps leave together: rows are per warp
  float* pRow = p + o * cols + b0;
  float pr[PerLane];
#pragma unroll
  for (int i = 0; i < PerLane; ++i) {
    const int k = lane + 32 * i;
    pr[i] = k < cnt ? pRow[k] : 0.f;
  }
  for (int j = 0; j < cnt; ++j) {
    const int64_t c = b0 + j, e = o * cols + c;
    // Read this column's state before the shuffle: the shuffle converges the warp, so lane 0's
    // store below cannot overtake another lane's read.
    const float w = wq[e], s = scale[e], z = zero[e], hcc = h[c * cols + c];
    float mine = 0.f;
#pragma unroll
    for (int i = 0; i < PerLane; ++i)
      if (i == j / 32) mine = pr[i];  // static register indexing (no local-memory spill)
    const float pj = __shfl_sync(0xffffffffu, mine, j % 32);
    const float beta = __fadd_rn(w, __fdiv_rn(pj, hcc));
    float q = __fadd_rn(rintf(__fdiv_rn(beta, s)), z);  // rintf: half to even, as std::nearbyint
    q = fminf(fmaxf(q, qmin), qmax);
    const float nw = __fmul_rn(__fsub_rn(q, z), s);
    const float d = __fsub_rn(w, nw);
    if (lane == 0) {
      wq[e] = nw;
      codes[e] = q;
      delta[o * cnt + j] = d;
    }
    if (d != 0.f) {
      const float* hRow = h + c * cols + b0;
#pragma unroll
      for (int i = 0; i < PerLane; ++i) {
        const int k = lane + 32 * i;
        if (k < cnt) pr[i] = __fadd_rn(pr[i], __fmul_rn(d, __ldg(hRow + k)));
      }
    }
  }
#pragma unroll
  for (int i = 0; i < PerLane; ++i) {
    const int k = lane + 32 * i;
    if (k < cnt) pRow[k] = pr[i];
  }
}

}  // namespace qs::gpu::detail
