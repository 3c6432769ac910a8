#include "gpu/algo/quantease.cuh"
#include "gpu/algo/quantease.h"

namespace qs::gpu {
namespace {

template <int PerLane>
cudaError_t launch(float* p, float* wq, float* codes, float* delta, const float* h, const float* scale,
                   const float* zero, int64_t rows, int64_t cols, int64_t b0, int cnt, float qmin, float qmax,
                   cudaStream_t stream) {
  const int64_t blocks = (rows + detail::kSweepWarpsPerBlock - 1) / detail::kSweepWarpsPerBlock;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  detail::quantEaseSweepBlock<PerLane><<<static_cast<unsigned>(blocks), 32 * detail::kSweepWarpsPerBlock, 0, stream>>>(
      p, wq, codes, delta, h, scale, zero, rows, cols, b0, cnt, qmin, qmax);
  return cudaGetLastError();
}

}  // namespace

cudaError_t quantEaseSweepBlockF32(float* p, float* wq, float* codes, float* delta, const float* h,
                                   const float* scale, const float* zero, int64_t rows, int64_t cols,
                                   int64_t b0, int cnt, float qmin, float qmax, cudaStream_t stream) {
  if (rows < 0 || cols < 0 || cnt < 1 || cnt > kMaxSweepBlock || b0 < 0 || b0 + cnt > cols)
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (!p || !wq || !codes || !delta || !h || !scale || !zero) return cudaErrorInvalidValue;
  // Registers per lane: the smallest of 1, 2, 4, 8 that holds the block.
  if (cnt <= 32) return launch<1>(p, wq, codes, delta, h, scale, zero, rows, cols, b0, cnt, qmin, qmax, stream);
  if (cnt <= 64) return launch<2>(p, wq, codes, delta, h, scale, zero, rows, cols, b0, cnt, qmin, qmax, stream);
  if (cnt <= 128) return launch<4>(p, wq, codes, delta, h, scale, zero, rows, cols, b0, cnt, qmin, qmax, stream);
  return launch<8>(p, wq, codes, delta, h, scale, zero, rows, cols, b0, cnt, qmin, qmax, stream);
}

}  // namespace qs::gpu
