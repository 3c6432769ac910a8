// Device code of the fake-quant kernels: one thread block per segment (row or group), a
// warp-shuffle min/max reduction, then params and quantize-dequantize with exactly the float32
// operations of the CPU twin (core/quant/fake_quant.cpp). Explicit __f*_rn intrinsics stop
// nvcc from contracting into FMAs, which would round differently from the CPU.
#pragma once
#include <cstdint>

#include "gpu/convert.cuh"

namespace qs::gpu::detail {

// Block-wide min and max (blockDim.x a multiple of 32, at most 1024); every thread gets both.
__device__ __forceinline__ void blockMinMax(float& lo, float& hi) {
  __shared__ float sLo[32], sHi[32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  lo = warpMin(lo);
  hi = warpMax(hi);
  if (lane == 0) {
    sLo[warp] = lo;
    sHi[warp] = hi;
  }
  __syncthreads();
  if (warp == 0) {
    lo = lane < warps ? sLo[lane] : INFINITY;
    hi = lane < warps ? sHi[lane] : -INFINITY;
    lo = warpMin(lo);
    hi = warpMax(hi);
    if (lane == 0) {
      sLo[0] = lo;
      sHi[0] = hi;
    }
  }
  __syncthreads();
  lo = sLo[0];
  hi = sHi[0];
}

// Integer grid and params: see the header comment of core/quant/fake_quant.h.
struct SegmentParams {
  float scale, zero, qmin, qmax;
};

__device__ __forceinline__ SegmentParams segmentParams(float lo, float hi, int bits, bool symmetric) {
  SegmentParams p;
  if (symmetric) {
    p.qmax = static_cast<float>((1 << (bits - 1)) - 1);
    p.qmin = -static_cast<float>(1 << (bits - 1));
    p.scale = __fdiv_rn(fmaxf(fabsf(lo), fabsf(hi)), p.qmax);
  } else {
    p.qmax = static_cast<float>((1 << bits) - 1);
    p.qmin = 0.f;
    lo = fminf(lo, 0.f);  // widen to include 0, so 0.0 is exact and zero lies on the grid
    hi = fmaxf(hi, 0.f);
    if (lo == 0.f && hi == 0.f) {  // all-zero segment: AutoGPTQ's range [-1, 1], as the CPU twin
      lo = -1.f;
      hi = 1.f;
    }
    p.scale = __fdiv_rn(__fsub_rn(hi, lo), p.qmax);
  }
  if (p.scale == 0.f) p.scale = 1.f;  // symmetric all-zero segment
  p.zero = symmetric ? 0.f : rintf(__fdiv_rn(-lo, p.scale));
  return p;
}

__device__ __forceinline__ float fakeQuantValue(float v, const SegmentParams& p) {
  float q = __fadd_rn(rintf(__fdiv_rn(v, p.scale)), p.zero);  // rintf: half to even
  q = fminf(fmaxf(q, p.qmin), p.qmax);
  return __fmul_rn(__fsub_rn(q, p.zero), p.scale);
}

// One block per segment of segLen consecutive elements. Reads x twice (stats, then values);
// segments are at most a row, so the second read mostly hits L2.
template <typename T>
__global__ void fakeQuantSegments(const T* x, T* y, int64_t segLen, int bits, bool symmetric) {
  const int64_t base = static_cast<int64_t>(blockIdx.x) * segLen;
  x += base;
  y += base;
  float lo = INFINITY, hi = -INFINITY;
  for (int64_t i = threadIdx.x; i < segLen; i += blockDim.x) {
    const float v = toFloat(x[i]);
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  blockMinMax(lo, hi);
  const SegmentParams p = segmentParams(lo, hi, bits, symmetric);
  for (int64_t i = threadIdx.x; i < segLen; i += blockDim.x)
    y[i] = fromFloat<T>(fakeQuantValue(toFloat(x[i]), p));
}

}  // namespace qs::gpu::detail
