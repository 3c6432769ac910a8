#include "gpu/quant/formats.cuh"
#include "gpu/quant/formats.h"

namespace qs::gpu {
namespace {

constexpr int kThreads = 256;

unsigned gridFor(int64_t work) {
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 * 8 ? blocks : 65535 * 8);  // grid-stride beyond this
}

template <typename T>
cudaError_t floatGrid(const void* x, void* y, int64_t n, const FloatGrid& g, cudaStream_t stream) {
  detail::floatGridKernel<T><<<gridFor(n), kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), n,
                                                                  g.emin, g.emax, g.frac, g.maxValue, g.parityBase);
  return cudaGetLastError();
}

template <typename T>
cudaError_t blockGrid(const void* x, void* y, int64_t rows, int64_t length, const BlockGrid& g, cudaStream_t stream) {
  const int64_t blocks = rows * ((length + g.blockSize - 1) / g.blockSize);
  detail::blockGridKernel<T><<<gridFor(blocks), kThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<T*>(y), rows, length, g.blockSize, g.kind == BlockKind::Bfp ? 0 : 1,
      g.mantissaWidth, g.exponentWidth, g.sharedMin, g.sharedMax);
  return cudaGetLastError();
}

}  // namespace

cudaError_t quantizeFloatGrid(const void* x, void* y, ElementType type, int64_t n, const FloatGrid& g,
                              cudaStream_t stream) {
  if (n < 0 || g.frac < 0 || g.frac > 23 || g.emin > g.emax) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (x == nullptr || y == nullptr) return cudaErrorInvalidValue;
  switch (type) {
    case ElementType::F32: return floatGrid<float>(x, y, n, g, stream);
    case ElementType::F16: return floatGrid<__half>(x, y, n, g, stream);
    case ElementType::BF16: return floatGrid<__nv_bfloat16>(x, y, n, g, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t quantizeBlockGrid(const void* x, void* y, ElementType type, int64_t rows, int64_t length,
                              const BlockGrid& g, cudaStream_t stream) {
  if (rows < 0 || length < 0 || g.blockSize < 1 || g.sharedMin > g.sharedMax) return cudaErrorInvalidValue;
  if (g.kind == BlockKind::Bfp && (g.mantissaWidth < 2 || g.mantissaWidth > 24)) return cudaErrorInvalidValue;
  if (g.kind == BlockKind::BlockMinifloat &&
      (g.mantissaWidth < 0 || g.mantissaWidth > 23 || g.exponentWidth < 1 || g.exponentWidth > 8))
    return cudaErrorInvalidValue;
  if (rows == 0 || length == 0) return cudaSuccess;
  if (x == nullptr || y == nullptr) return cudaErrorInvalidValue;
  switch (type) {
    case ElementType::F32: return blockGrid<float>(x, y, rows, length, g, stream);
    case ElementType::F16: return blockGrid<__half>(x, y, rows, length, g, stream);
    case ElementType::BF16: return blockGrid<__nv_bfloat16>(x, y, rows, length, g, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace qs::gpu
