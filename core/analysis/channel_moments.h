// One batch's per-channel moments and per-token absmax over a [tokens, channels] activation:
// the unit ChannelStats merges (Chan/Pébay, channel_stats.cpp). batchMoments() is the CPU twin
// (plain ATen ops, runs on any device); gpu/analysis/channel_stats.cu computes the same in one
// pass over the data with float64 accumulation and registers here at start-up (DESIGN.md seam 4).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace qs::analysis {

struct BatchMoments {
  int64_t count = 0;       // rows that took part (keep != 0)
  at::Tensor mean;         // float64 [C]; all six undefined when count == 0
  at::Tensor m2, m3, m4;   // float64 [C]: sums of (x - mean)^2, ^3, ^4 over the kept rows
  at::Tensor min, max;     // float64 [C] (values of x, exact)
  at::Tensor tokenAbsmax;  // [N]: max |x| over the channels of each row, 0 for rows left out;
                           // float32 (float64 for a float64 x); undefined unless asked for
};

// x: [N, C] float32/float64/float16/bfloat16 on any device (half types are widened: their 4th
// powers would overflow); keep: bool [N] or undefined (all rows). The reference computation:
// moments about the batch mean rounded to x's dtype, float32 cascade sums, float64 corrections.
BatchMoments batchMoments(const at::Tensor& x, const at::Tensor& keep, bool wantTokenAbsmax);

// A CUDA implementation of batchMoments for a CUDA x (always fills tokenAbsmax).
using BatchMomentsImpl = BatchMoments (*)(const at::Tensor& x, const at::Tensor& keep);
void registerCudaBatchMoments(BatchMomentsImpl impl);  // nullptr removes; thread-safe
BatchMomentsImpl cudaBatchMoments();

// batchMoments on the best implementation for x's device: the registered kernel for a CUDA
// tensor, else the reference ops (on a CUDA tensor with one log line, "channel_stats: ...").
BatchMoments batchMomentsDispatch(const at::Tensor& x, const at::Tensor& keep, bool wantTokenAbsmax);

}  // namespace qs::analysis
