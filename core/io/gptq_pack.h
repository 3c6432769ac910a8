// The GPTQ / AutoGPTQ packed layout of a quantized Linear (AutoGPTQ's QuantLinear buffers):
//   qweight  int32 [ceil(in * bits / 32), out]   unsigned codes packed along the input dimension
//   qzeros   int32 [groups, ceil(out * bits / 32)] zero points packed along the output dimension
//   scales   [groups, out] (float16 in the standard format)
//   g_idx    int32 [in]    group of each input column (act-order permutes it)
// Packing is one little-endian bitstream per column: value i occupies bits [i*b, (i+1)*b) of
// the column's 32-bit words, low bits first. For 2/4/8 bits a word holds 32/b whole values; for
// 3 bits 32 values fill 3 words with values 10 and 21 split across word boundaries, which is
// exactly AutoGPTQ's 3-bit layout. AutoGPTQ needs in % 32 == 0 and out % 32 == 0; other
// widths pack into a zero-padded last word (QuantScope reads that back; other runtimes may not).
// Zero points: checkpoint_format "gptq" (AutoGPTQ v1) stores zero - 1 and adds 1 when loading,
// so a zero point of 0 cannot be stored; "gptq_v2" stores the zero point itself.
// Dequantization: w[o, i] = (code[i, o] - zero[g_idx[i], o]) * scale[g_idx[i], o].
#pragma once
#include <ATen/core/Tensor.h>

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

namespace qs::io {

// The 32-bit words that hold n values of `bits` bits: ceil(n * bits / 32).
int64_t packedWords(int64_t n, int bits);
// values int32 [n, cols] with 0 <= v < 2^bits, packed along dim 0 -> int32 [packedWords(n, bits), cols].
at::Tensor packBitsRows(const at::Tensor& values, int bits);
// The inverse: packed int32 [words, cols] -> int32 [n, cols].
at::Tensor unpackBitsRows(const at::Tensor& packed, int bits, int64_t n);

struct GptqLinear {
  at::Tensor qweight, qzeros, scales, gIdx;
};

// From QuantScope's grid (weight_grid / layer_result): codes int [out, in] (signed around 0 when
// symmetric), scales/zeros [out, groups], gIdx [in]. Symmetric grids become the unsigned grid
// with zero point 2^(bits-1) (the same dequantized values). v1: zero - 1 convention, a zero
// point of 0 throws qs::Error naming `site`. Bits must be 2, 3, 4 or 8.
GptqLinear packGptq(const at::Tensor& codes, const at::Tensor& scales, const at::Tensor& zeros, const at::Tensor& gIdx,
                    int bits, bool symmetric, at::ScalarType scaleDtype, bool v1, const std::string& site);

// float32 [out, in] from the packed tensors (arithmetic in float32).
at::Tensor dequantizeGptq(const GptqLinear& q, int bits, bool v1);

}  // namespace qs::io
