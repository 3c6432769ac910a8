// GGML tensor types (llama.cpp's storage formats): the type table, and rows converted to and
// from F16, BF16 and the block types QuantScope writes and reads (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K). Quantization follows ggml's reference rounding without an importance matrix, which is
// what `llama-quantize` applies then: the bytes equal ggml_quantize_chunk's (checked against
// the shipped libggml in tests/io/ggml_quants_test.cpp). Torch-free.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace qs::io {

// GGML type ids as stored in GGUF tensor infos.
namespace ggml {
constexpr uint32_t F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q2_K = 10, Q3_K = 11,
                   Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30;
}

struct GgmlTypeTraits {
  const char* name;
  uint64_t blockSize;  // elements per block (0 = unknown type)
  uint64_t typeSize;   // bytes per block
};

// Sizes of every type id up to BF16 (ggml's type_traits), also of types QuantScope cannot
// convert, so a reader can bound their tensors.
GgmlTypeTraits ggmlTypeTraits(uint32_t type);
// "Q4_K" -> its id (case-insensitive); nullopt for names not in the table.
std::optional<uint32_t> ggmlTypeByName(const std::string& name);
// ggmlQuantizeRows / ggmlDequantizeRows handle the type.
bool ggmlCanConvert(uint32_t type);
// Bytes of one row of n elements; n must be a multiple of the block size.
uint64_t ggmlRowBytes(uint32_t type, int64_t n);

// rows x n floats -> rows of `type` (n a multiple of the block size; qs::Error otherwise or for
// a type QuantScope cannot write).
void ggmlQuantizeRows(uint32_t type, const float* src, int64_t rows, int64_t n, uint8_t* dst);
// The inverse: rows of `type` -> floats, as ggml's dequantize_row_* computes them.
void ggmlDequantizeRows(uint32_t type, const uint8_t* src, int64_t rows, int64_t n, float* dst);

// Blocks of Q4_0, Q5_0 or Q8_0 from codes chosen elsewhere (a quantizer on that type's grid):
// codes [rows, n] are the unsigned codes with the type's zero 2^(bits-1) (0..15, 0..31, 0..255),
// scales [rows, n / 32] the block scales, which must be fp16 values. Dequantizing the result
// gives exactly (code - zero) * scale. qs::Error naming `what` for codes or scales off the grid.
void ggmlEncodeBlocks(uint32_t type, const float* codes, const float* scales, int64_t rows, int64_t n, uint8_t* dst,
                      const std::string& what);

// The Q4_K / Q5_K / Q6_K grid of 256 values as ggml's reference quantizer chooses it (Q4_K/Q5_K:
// make_qkx2_quants per sub-block of 32, 6-bit scales and minimums under fp16 factors; Q6_K:
// make_qx_quants per sub-block of 16, signed 8-bit scales under an fp16 d, minimum 32 scales), for
// methods that choose their own codes on it: sub-block j's values are scales[j] * q - mins[j], q in
// 0..15 (Q4_K), 0..31 (Q5_K), 0..63 (Q6_K). Unlike ggml, a sub-block scale that would round to 0
// is one step (every sub-block has a nonzero scale).
void ggmlKGrid(uint32_t type, const float* x, float* scales, float* mins);
// Q4_K / Q5_K / Q6_K blocks from codes [rows, n] and per-sub-block scales and minimums [rows, n / 32
// (Q6_K: n / 16)] on
// ggmlKGrid's grid (recovers the fp16 factors and 6-bit steps; qs::Error naming `what` for values
// off the grid). Dequantizing gives scales[j] * q - mins[j] as ggml computes it.
void ggmlEncodeKBlocks(uint32_t type, const float* codes, const float* scales, const float* mins, int64_t rows,
                       int64_t n, uint8_t* dst, const std::string& what);

// IEEE half and bfloat16 with round-to-nearest-even (ggml's conversions).
uint16_t fp32ToFp16(float f);
float fp16ToFp32(uint16_t h);
uint16_t fp32ToBf16(float f);
float bf16ToFp32(uint16_t h);

}  // namespace qs::io
