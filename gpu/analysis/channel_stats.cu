#include "gpu/analysis/channel_stats.cuh"
#include "gpu/analysis/channel_stats.h"

namespace qs::gpu {
namespace {

// Chunking: enough blocks to fill a large GPU (~1024) while every chunk keeps >= 32 rows, so
// the per-chunk float64 partials stay small beside the input.
struct Chunking {
  int chunkRows = 0;
  int chunks = 0;
};

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

Chunking chunking(int64_t tokens, int64_t channels) {
  Chunking k;
  if (tokens <= 0 || channels <= 0) return k;
  const int64_t blocksX = ceilDiv(channels, detail::kMomentThreads);
  int64_t chunks = ceilDiv(1024, blocksX);
  chunks = chunks < ceilDiv(tokens, 32) ? chunks : ceilDiv(tokens, 32);
  int64_t rows = ceilDiv(tokens, chunks);
  if (rows > detail::kMaxChunkRows) rows = detail::kMaxChunkRows;
  chunks = ceilDiv(tokens, rows);
  if (chunks > 65535) return k;  // gridDim.y limit: more than 2^28 rows
  k.chunkRows = static_cast<int>(rows);
  k.chunks = static_cast<int>(chunks);
  return k;
}

size_t partialBytes(const Chunking& k, int64_t channels) {
  const size_t cells = static_cast<size_t>(k.chunks) * static_cast<size_t>(channels);
  return cells * (4 * sizeof(double) + 2 * sizeof(float)) + static_cast<size_t>(k.chunks) * sizeof(int);
}

template <typename T>
cudaError_t launch(const T* x, const uint8_t* keep, int64_t tokens, int64_t channels, const ChannelMomentsOut& out,
                   void* workspace, size_t workspaceBytes, cudaStream_t stream) {
  if (tokens < 0 || channels < 0 || channels > INT32_MAX) return cudaErrorInvalidValue;
  if (tokens == 0 || channels == 0) {
    if (out.count == nullptr) return cudaErrorInvalidValue;
    return cudaMemsetAsync(out.count, 0, sizeof(int64_t), stream);
  }
  if (x == nullptr || out.mean == nullptr || out.m2 == nullptr || out.m3 == nullptr || out.m4 == nullptr ||
      out.min == nullptr || out.max == nullptr || out.tokenAbsmax == nullptr || out.count == nullptr ||
      workspace == nullptr)
    return cudaErrorInvalidValue;
  const Chunking k = chunking(tokens, channels);
  if (k.chunks == 0) return cudaErrorInvalidValue;
  if (workspaceBytes < partialBytes(k, channels)) return cudaErrorInvalidValue;
  const size_t cells = static_cast<size_t>(k.chunks) * static_cast<size_t>(channels);
  double* d = static_cast<double*>(workspace);
  float* f = reinterpret_cast<float*>(d + 4 * cells);
  const detail::MomentPartials part{d, d + cells, d + 2 * cells, d + 3 * cells, f, f + cells,
                                    reinterpret_cast<int*>(f + 2 * cells)};
  cudaError_t err = cudaMemsetAsync(out.tokenAbsmax, 0, static_cast<size_t>(tokens) * sizeof(float), stream);
  if (err != cudaSuccess) return err;
  const unsigned blocksX = static_cast<unsigned>(ceilDiv(channels, detail::kMomentThreads));
  const dim3 grid(blocksX, static_cast<unsigned>(k.chunks));
  const size_t shared = static_cast<size_t>(k.chunkRows + 1) * sizeof(double);
  detail::channelMomentsChunk<T><<<grid, detail::kMomentThreads, shared, stream>>>(
      x, keep, tokens, channels, k.chunkRows, part, out.tokenAbsmax);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  detail::channelMomentsFold<<<blocksX, detail::kMomentThreads, 0, stream>>>(
      part, k.chunks, channels, out.mean, out.m2, out.m3, out.m4, out.min, out.max, out.count);
  return cudaGetLastError();
}

}  // namespace

size_t channelMomentsWorkspaceBytes(int64_t tokens, int64_t channels) {
  const Chunking k = chunking(tokens, channels);
  return k.chunks == 0 ? 0 : partialBytes(k, channels);
}

cudaError_t channelMomentsF32(const float* x, const uint8_t* keep, int64_t tokens, int64_t channels,
                              const ChannelMomentsOut& out, void* workspace, size_t workspaceBytes,
                              cudaStream_t stream) {
  return launch(x, keep, tokens, channels, out, workspace, workspaceBytes, stream);
}

cudaError_t channelMomentsF16(const uint16_t* x, const uint8_t* keep, int64_t tokens, int64_t channels,
                              const ChannelMomentsOut& out, void* workspace, size_t workspaceBytes,
                              cudaStream_t stream) {
  return launch(reinterpret_cast<const __half*>(x), keep, tokens, channels, out, workspace, workspaceBytes, stream);
}

cudaError_t channelMomentsBF16(const uint16_t* x, const uint8_t* keep, int64_t tokens, int64_t channels,
                               const ChannelMomentsOut& out, void* workspace, size_t workspaceBytes,
                               cudaStream_t stream) {
  return launch(reinterpret_cast<const __nv_bfloat16*>(x), keep, tokens, channels, out, workspace,
                workspaceBytes, stream);
}

}  // namespace qs::gpu
