// Raw-pointer CUDA API of the number-format kernels (mirrors core/quant/format_minifloat.h and
// core/quant/format_block.h, their CPU twins). Plain C++: no torch and no device code here.
//
// Both quantize-dequantize x into y (x == y allowed: in place) with the CPU twins' float32
// operations: exponents from frexp, powers of two built from bit patterns and applied as two
// normal factors, rounding half to even, saturation that keeps NaN. Returns
// cudaErrorInvalidValue for bad sizes, pointers or parameters; otherwise the launch status
// (asynchronous on stream).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace qs::gpu {

enum class ElementType { F32, F16, BF16 };  // float32, IEEE binary16, bfloat16 (bit patterns)

// An elementwise float grid: exponent clamped to [emin, emax], frac bits below the leading one,
// saturating at maxValue. parityBase: the exponent whose code is odd (ties when frac == 0).
// MinifloatOptions: {minExponent, maxExponent, mantissaWidth, maxValue, minExponent};
// DenormMinifloatOptions: {minExponent - 1, maxExponent - 1, mantissaWidth - 1, maxValue, minExponent}.
struct FloatGrid {
  int emin = 0, emax = 0, frac = 0;
  float maxValue = 0;
  int parityBase = 0;
};
cudaError_t quantizeFloatGrid(const void* x, void* y, ElementType type, int64_t n, const FloatGrid& grid,
                              cudaStream_t stream = nullptr);

// Block formats over x viewed as [rows, length] row-major: every blockSize consecutive elements
// of a row (the last block of a row may be shorter) share one exponent s = clamp(floor(log2
// max|x|), sharedMin, sharedMax), NaN ignored and inf taken as the largest float.
enum class BlockKind { Bfp, BlockMinifloat };
struct BlockGrid {
  BlockKind kind = BlockKind::Bfp;
  int mantissaWidth = 8;  // BFP: bits incl. sign (2..24); block minifloat: fraction bits (0..23)
  int exponentWidth = 0;  // block minifloat: element exponent bits (1..8); unused for BFP
  int sharedMin = -127, sharedMax = 128;
  int64_t blockSize = 16;
};
cudaError_t quantizeBlockGrid(const void* x, void* y, ElementType type, int64_t rows, int64_t length,
                              const BlockGrid& grid, cudaStream_t stream = nullptr);

}  // namespace qs::gpu
