// The names analysis rows are stored under in the run store (core/runs/run_types.h SiteStat),
// in one place so the writer (run_stats.cpp), `qscope stats` and the plots agree.
#pragma once

namespace qs::analysis::names {

// SiteStat::kind
inline constexpr const char* kInput = "input";        // the input of a Linear (a quantization site)
inline constexpr const char* kResidual = "residual";  // a block output: the residual stream
inline constexpr const char* kWeight = "weight";      // a Linear's weight [out, in]
inline constexpr const char* kMatmul = "matmul";      // an attention matmul operand (q/k/v_matmul)
// The softmax input (site "softmax_in"): attention scores after scaling and mask, per head
// (channel = head, values = unmasked query-key scores, token = query).
inline constexpr const char* kSoftmax = "softmax";
inline constexpr const char* kSoftmaxIn = "softmax_in";  // SiteStat::site of the softmax input

// SiteStat::site of a block output. A Linear's site is the last part of its model name
// ("q_proj", "fc1"), or its block-local name where two Linears of a block share that last part
// (GPT-2: "attn.c_proj", "mlp.c_proj").
inline constexpr const char* kBlockOut = "block_out";

// Per-channel arrays (activations: per channel; weights: per input column).
inline constexpr const char* kMin = "min";
inline constexpr const char* kMax = "max";
inline constexpr const char* kMean = "mean";
inline constexpr const char* kVar = "var";
inline constexpr const char* kAbsmax = "absmax";
inline constexpr const char* kKurtosis = "kurtosis";
inline constexpr const char* kCenter = "center";
inline constexpr const char* kHalfRange = "half_range";
// Activations: per position, max over samples of the token absmax (length seqlen).
inline constexpr const char* kTokenAbsmax = "token_absmax";
// Weights: per output row, prefixed ("out_min", "out_max", ..., "out_kurtosis").
inline constexpr const char* kOutPrefix = "out_";

}  // namespace qs::analysis::names
