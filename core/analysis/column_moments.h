// Per-column and per-row statistics of a whole matrix held in memory (a Linear weight), in two
// streaming read passes without temporaries: pass 1 sums, min and max; pass 2 the central sums
// (2nd and 4th; the stored arrays need no 3rd) about the means, both accumulated in float64 (a
// classic two-pass, as exact as float64 allows). ChannelStats, built for streamed activation
// batches, reduces a batch with about a dozen full passes of ATen ops over float32 temporaries;
// weight statistics want both directions of every matrix once per run, where these loops cost
// less (docs/BENCHMARKS.md "Analysis overhead").
#pragma once
#include <ATen/core/Tensor.h>

#include "core/analysis/analysis_types.h"

namespace qs::analysis {

// x: [rows, cols] on the CPU, any floating dtype (copied to contiguous float32 if needed).
// Per column, over the rows: min, max, mean, population variance, absmax, Pearson kurtosis
// (NaN for a constant column), center and half-range, as ChannelArrays defines them.
// Parallel over column ranges (LibTorch's intra-op threads). qs::Error for a non-matrix or a
// device tensor.
ChannelArrays columnArrays(const at::Tensor& x);
// The same per row, over the columns (a Linear weight's per-output-channel statistics).
ChannelArrays rowArrays(const at::Tensor& x);

}  // namespace qs::analysis
