#include "core/io/gptq_pack.h"

#include <ATen/ATen.h>

#include "core/util/error.h"

namespace qs::io {
namespace {

void checkBits(int bits) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw Error("bits: " + std::to_string(bits) + " is not supported by the GPTQ layout (2, 3, 4 or 8)");
}

}  // namespace

int64_t packedWords(int64_t n, int bits) { return (n * bits + 31) / 32; }

at::Tensor packBitsRows(const at::Tensor& valuesIn, int bits) {
  if (bits < 1 || bits > 32) throw Error("bits: " + std::to_string(bits) + " out of range");
  const at::Tensor v = valuesIn.to(at::kCPU, at::kInt).contiguous();
  if (v.dim() != 2) throw Error("packBitsRows: expected a 2-D tensor");
  const int64_t n = v.size(0), cols = v.size(1);
  const uint64_t mask = bits == 32 ? 0xffffffffull : ((1ull << bits) - 1);
  if (n > 0 && cols > 0 && (v.min().item<int>() < 0 || static_cast<uint64_t>(v.max().item<int>()) > mask))
    throw Error("packBitsRows: values must lie in [0, 2^" + std::to_string(bits) + ")");
  const int64_t words = packedWords(n, bits);
  at::Tensor out = at::zeros({words, cols}, at::kInt);
  const int32_t* src = v.data_ptr<int32_t>();
  auto* dst = reinterpret_cast<uint32_t*>(out.data_ptr<int32_t>());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t bit = i * bits, w = bit / 32;
    const int shift = static_cast<int>(bit % 32);
    for (int64_t c = 0; c < cols; ++c) {
      const uint64_t x = static_cast<uint64_t>(static_cast<uint32_t>(src[i * cols + c])) << shift;
      dst[w * cols + c] |= static_cast<uint32_t>(x & 0xffffffffull);
      if (shift + bits > 32) dst[(w + 1) * cols + c] |= static_cast<uint32_t>(x >> 32);
    }
  }
  return out;
}

at::Tensor unpackBitsRows(const at::Tensor& packedIn, int bits, int64_t n) {
  if (bits < 1 || bits > 32) throw Error("bits: " + std::to_string(bits) + " out of range");
  const at::Tensor p = packedIn.to(at::kCPU, at::kInt).contiguous();
  if (p.dim() != 2 || p.size(0) < (n * bits + 31) / 32)
    throw Error("unpackBitsRows: " + std::to_string(p.dim() == 2 ? p.size(0) : 0) + " packed rows cannot hold " +
                std::to_string(n) + " values of " + std::to_string(bits) + " bits");
  const int64_t cols = p.size(1);
  const uint64_t mask = bits == 32 ? 0xffffffffull : ((1ull << bits) - 1);
  at::Tensor out = at::empty({n, cols}, at::kInt);
  const auto* src = reinterpret_cast<const uint32_t*>(p.data_ptr<int32_t>());
  int32_t* dst = out.data_ptr<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t bit = i * bits, w = bit / 32;
    const int shift = static_cast<int>(bit % 32);
    for (int64_t c = 0; c < cols; ++c) {
      uint64_t x = static_cast<uint64_t>(src[w * cols + c]) >> shift;
      if (shift + bits > 32) x |= static_cast<uint64_t>(src[(w + 1) * cols + c]) << (32 - shift);
      dst[i * cols + c] = static_cast<int32_t>(x & mask);
    }
  }
  return out;
}

GptqLinear packGptq(const at::Tensor& codes, const at::Tensor& scales, const at::Tensor& zeros, const at::Tensor& gIdx,
                    int bits, bool symmetric, at::ScalarType scaleDtype, bool v1, const std::string& site) {
  checkBits(bits);
  if (codes.dim() != 2 || scales.dim() != 2 || zeros.sizes() != scales.sizes() || scales.size(0) != codes.size(0) ||
      gIdx.dim() != 1 || gIdx.size(0) != codes.size(1))
    throw Error(site + ": codes [out, in], scales/zeros [out, groups] and g_idx [in] do not fit together");
  const int64_t offset = symmetric ? (int64_t{1} << (bits - 1)) : 0;
  const at::Tensor uCodes = at::add(codes.to(at::kCPU, at::kInt), offset);
  at::Tensor uZeros = at::add(at::round(zeros.to(at::kCPU, at::kFloat)).to(at::kInt), offset);
  if (v1) {
    if (at::any(uZeros == 0).item<bool>())
      throw Error(site + ": " + std::to_string(at::sum(uZeros == 0).item<int64_t>()) +
                  " group(s) have zero point 0, which the AutoGPTQ v1 format (zero - 1 stored) cannot hold; "
                  "export with --gptq-format gptq_v2, or quantize with --sym");
    uZeros = at::sub(uZeros, 1);
  }
  GptqLinear q;
  q.qweight = packBitsRows(uCodes.t().contiguous(), bits);                  // [words(in), out]
  q.qzeros = packBitsRows(uZeros.contiguous(), bits).t().contiguous();      // zeros^T [out, groups] packed -> [groups, words(out)]
  q.scales = scales.to(at::kCPU, at::kFloat).t().contiguous().to(scaleDtype);  // [groups, out]
  q.gIdx = gIdx.to(at::kCPU, at::kInt).contiguous();
  return q;
}

at::Tensor dequantizeGptq(const GptqLinear& q, int bits, bool v1) {
  checkBits(bits);
  const int64_t in = q.gIdx.size(0), out = q.scales.size(1), groups = q.scales.size(0);
  const at::Tensor codes = unpackBitsRows(q.qweight, bits, in);                               // [in, out]
  at::Tensor zeros = unpackBitsRows(q.qzeros.t().contiguous(), bits, out).t().contiguous();  // [groups, out]
  if (zeros.size(0) != groups) throw Error("qzeros: " + std::to_string(zeros.size(0)) + " groups, scales have " +
                                           std::to_string(groups));
  if (v1) zeros = at::add(zeros, 1);
  const at::Tensor g = q.gIdx.to(at::kLong);
  if (in > 0 && (g.min().item<int64_t>() < 0 || g.max().item<int64_t>() >= groups))
    throw Error("g_idx: group index out of range [0, " + std::to_string(groups) + ")");
  const at::Tensor z = zeros.index_select(0, g).to(at::kFloat);              // [in, out]
  const at::Tensor s = q.scales.to(at::kFloat).index_select(0, g);           // [in, out]
  return at::mul(at::sub(codes.to(at::kFloat), z), s).t().contiguous();      // [out, in]
}

}  // namespace qs::io
