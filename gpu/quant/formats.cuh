// Device code of the number-format kernels (gpu/quant/formats.h): float32 helpers that repeat
// core/quant/format_detail.cpp operation for operation (pow2 as two normal factors built from
// bit patterns, floor(log2) from frexp), so results match the CPU twins bit for bit. __f*_rn
// intrinsics keep nvcc from fusing multiplies into FMAs.
#pragma once
#include <cstdint>

#include "gpu/convert.cuh"

namespace qs::gpu::detail {

// 2^e for integer e in [-126, 127] from the bit pattern.
__device__ __forceinline__ float pow2Normal(float e) { return __int_as_float((static_cast<int>(e) + 127) << 23); }

__device__ __forceinline__ float clampExp(float e) { return fminf(fmaxf(e, -252.f), 254.f); }

// x * 2^e as two normal factors (format_detail.cpp scalePow2).
__device__ __forceinline__ float scalePow2(float x, float e) {
  const float c = clampExp(e), half = floorf(__fmul_rn(c, 0.5f));
  return __fmul_rn(__fmul_rn(x, pow2Normal(half)), pow2Normal(__fsub_rn(c, half)));
}

__device__ __forceinline__ float pow2(float e) {
  const float c = clampExp(e), half = floorf(__fmul_rn(c, 0.5f));
  return __fmul_rn(pow2Normal(half), pow2Normal(__fsub_rn(c, half)));
}

// floor(log2 a) for a >= 0; 0 and NaN -> -1000, inf -> +1000 (format_detail.cpp floorLog2).
__device__ __forceinline__ float floorLog2(float a) {
  if (isinf(a)) return 1000.f;
  if (!(a > 0.f)) return -1000.f;  // 0, and NaN (where(a > 0, ...) in the twin)
  int k = 0;
  frexpf(a, &k);
  return static_cast<float>(k - 1);
}

__device__ __forceinline__ float roundAtExponent(float a, float e, int frac) {
  const float k = rintf(scalePow2(a, __fsub_rn(static_cast<float>(frac), e)));
  return scalePow2(k, __fsub_rn(e, static_cast<float>(frac)));
}

__device__ __forceinline__ float roundFloatGrid(float a, float e, int frac, float emin) {
  const float q = roundAtExponent(a, e, frac);
  if (frac != 0) return q;
  const bool tie = scalePow2(a, -e) == 1.5f;
  // at::remainder(e - emin, 2) == 1: e - emin is an odd integer (of either sign).
  const bool evenBelow = fabsf(fmodf(__fsub_rn(e, emin), 2.f)) == 1.f;
  return tie && evenBelow ? pow2(e) : q;
}

// at::minimum: NaN wins.
__device__ __forceinline__ float minKeepNan(float q, float m) { return isnan(q) ? q : fminf(q, m); }

template <typename T>
__global__ void floatGridKernel(const T* x, T* y, int64_t n, int emin, int emax, int frac, float maxValue,
                                int parityBase) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float f = toFloat(x[i]);
    const float a = fabsf(f);
    const float e = fminf(fmaxf(floorLog2(a), static_cast<float>(emin)), static_cast<float>(emax));
    float q = roundFloatGrid(a, e, frac, static_cast<float>(parityBase));
    q = minKeepNan(q, maxValue);
    y[i] = fromFloat<T>(copysignf(q, f));
  }
}

// One thread per block of elements: max, shared exponent, then every element. Block formats use
// small blocks (16..64), so a thread's loop is short.
template <typename T>
__global__ void blockGridKernel(const T* x, T* y, int64_t rows, int64_t length, int64_t blockSize, int kind,
                                int mantissaWidth, int exponentWidth, int sharedMin, int sharedMax) {
  const int64_t perRow = (length + blockSize - 1) / blockSize, total = rows * perRow;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < total;
       b += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = b / perRow, first = row * length + (b % perRow) * blockSize;
    const int64_t rowEnd = (row + 1) * length, last = first + blockSize < rowEnd ? first + blockSize : rowEnd;
    float mx = 0.f;  // zero padding of the CPU twin never raises the max
    for (int64_t i = first; i < last; ++i) {
      float a = fabsf(toFloat(x[i]));
      if (isnan(a)) a = 0.f;                 // nan_to_num: NaN -> 0
      if (isinf(a)) a = 3.402823466e38f;     // +inf -> largest float
      mx = fmaxf(mx, a);
    }
    const float s = fminf(fmaxf(floorLog2(mx), static_cast<float>(sharedMin)), static_cast<float>(sharedMax));
    for (int64_t i = first; i < last; ++i) {
      const float f = toFloat(x[i]);
      const float a = fabsf(f);
      float q;
      if (kind == 0) {  // BFP
        const int frac = mantissaWidth - 2;
        q = roundAtExponent(a, s, frac);
        const float kMax = static_cast<float>((int64_t{1} << (mantissaWidth - 1)) - 1);
        q = minKeepNan(q, __fmul_rn(pow2(__fsub_rn(s, static_cast<float>(frac))), kMax));
      } else {  // block minifloat
        const float emin = __fsub_rn(s, static_cast<float>((1 << exponentWidth) - 2));
        const float e = fminf(fmaxf(floorLog2(a), emin), s);
        q = roundFloatGrid(a, e, mantissaWidth, emin);
        const float maxValue = __fmul_rn(pow2(s), static_cast<float>(2.0 - ldexp(1.0, -mantissaWidth)));
        q = minKeepNan(q, maxValue);
      }
      y[i] = fromFloat<T>(copysignf(q, f));
    }
  }
}

}  // namespace qs::gpu::detail
