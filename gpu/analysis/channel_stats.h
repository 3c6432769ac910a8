// Raw-pointer CUDA API of the one-pass channel statistics kernel (mirrors
// core/analysis/channel_stats.h; the CPU twin is qs::analysis::batchMoments). Plain C++: no
// torch and no device code here, so callers compile with the host compiler.
//
// Over x, a row-major [tokens, channels] activation, one read of every element gives per channel
// the count, mean, central moment sums M2, M3, M4 (float64 Welford/Terriberry updates inside a
// chunk of rows, chunks combined with Chan/Pébay's pairwise formulas, as ChannelStats::merge
// combines batches), min and max, and per token max |x| over the channels. Rows with keep[t] == 0
// are left out of everything (their token absmax stays 0). NaN inputs are not supported.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace qs::gpu {

// Device pointers the kernel writes; all required.
struct ChannelMomentsOut {
  double* mean = nullptr;       // [channels]
  double* m2 = nullptr;         // [channels] sum of (x - mean)^2
  double* m3 = nullptr;         // [channels]
  double* m4 = nullptr;         // [channels]
  double* min = nullptr;        // [channels]
  double* max = nullptr;        // [channels]
  float* tokenAbsmax = nullptr;  // [tokens]; zeroed by the call
  int64_t* count = nullptr;     // [1] rows kept
};

// Device scratch the call needs (partial moments per chunk of rows); 0 for an empty input.
size_t channelMomentsWorkspaceBytes(int64_t tokens, int64_t channels);

// keep: nullptr (every row) or one byte per row (a bool tensor's storage). workspace: at least
// channelMomentsWorkspaceBytes(tokens, channels) bytes of device memory, 8-byte aligned.
// Returns cudaErrorInvalidValue for bad sizes or pointers (more than 2^28 rows or 2^31 channels
// included), else the launch status; the kernels run asynchronously on stream. With no rows kept
// mean..max are left untouched and count is 0.
cudaError_t channelMomentsF32(const float* x, const uint8_t* keep, int64_t tokens, int64_t channels,
                              const ChannelMomentsOut& out, void* workspace, size_t workspaceBytes,
                              cudaStream_t stream = nullptr);
// IEEE binary16 / bfloat16 values passed as their bit patterns (keeps cuda_fp16.h out of host code).
cudaError_t channelMomentsF16(const uint16_t* x, const uint8_t* keep, int64_t tokens, int64_t channels,
                              const ChannelMomentsOut& out, void* workspace, size_t workspaceBytes,
                              cudaStream_t stream = nullptr);
cudaError_t channelMomentsBF16(const uint16_t* x, const uint8_t* keep, int64_t tokens, int64_t channels,
                               const ChannelMomentsOut& out, void* workspace, size_t workspaceBytes,
                               cudaStream_t stream = nullptr);

}  // namespace qs::gpu
