// Attention for every family: the additive bias (causal + padding + ALiBi + sliding window) built
// once per batch, and softmax attention over [B, T, heads, headDim] views with grouped kv heads.
// LibTorch 1.13 has no fused SDPA, so this is matmul + softmax arranged to avoid copies.
// Also the Quantizable Transformers variants (clipped softmax, gated attention) as plain ATen ops
// that autograd can differentiate, so the trainer (core/train) shares the engine's math.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/model/config.h"

namespace qs::io {
class WeightSource;
}

namespace qs::model {

// Value for masked-out scores: finite (not -inf) so a fully masked padding row gives a uniform
// softmax instead of NaN. Not float's lowest either: exp() of arguments near -3.4e38 takes a slow
// path in LibTorch's vectorised softmax (8x slower); exp(-1e9) is exactly 0 all the same.
constexpr float kMaskedScore = -1e9f;
// A score at or below this is masked: kMaskedScore plus anything a real score or an ALiBi term
// can add stays far below it, and no real attention logit comes near it.
constexpr float kMaskedScoreBelow = kMaskedScore / 2;

// Read-only view of the softmax input: scores [H, C, keys] float32 (q.k^T with q pre-scaled,
// plus the additive bias) of queries [query0, query0 + C) of batch row `sample`, over keys
// [0, keys) (later keys are all causally masked and skipped). Masked entries are
// <= kMaskedScoreBelow. Called once per sample and query chunk, before the (clipped) softmax.
using ScoresHook = std::function<void(const at::Tensor& scores, int64_t sample, int64_t query0)>;

// BLOOM's ALiBi slopes [heads] (float32): geometric in 2^(-8/p), p = 2^floor(log2 heads), with
// the odd powers of 2^(-4/p) appended for the heads beyond p.
at::Tensor alibiSlopes(int64_t heads, const at::TensorOptions& options);

// Float32 additive bias [B or 1, H or 1, T, T]. Query i sees key j iff j <= i, key j is real
// (mask), and when window > 0, pos_i - pos_j < window. With slopes, adds slope_h * pos_j.
// All-ones masks without ALiBi/window give a shared [1, 1, T, T] bias.
at::Tensor attentionBias(const at::Tensor& mask, const at::Tensor& positions, int64_t window,
                         const at::Tensor& slopes);

// q [B, T, H, d], k and v [B, T, Hkv, d] (any strides; H a multiple of Hkv; query head h uses
// kv head h / (H / Hkv)); q already scaled. Softmax in float32. Returns [B, T, H * d].
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias);
// The same with the variant's softmax (clipped softmax when variant.clipped(); the gate is applied
// by the caller with gateContext, since it needs the block input). `scoresHook` (empty = none)
// sees the softmax input.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                  const AttentionVariant& variant, const ScoresHook& scoresHook = {});

// clip((zeta - gamma) * softmax(scores) + gamma, 0, 1) over the last dim. With gamma <= 0 a masked
// score (probability 0) stays exactly 0. Differentiable (not in place).
at::Tensor clippedSoftmax(const at::Tensor& scores, double gamma, double zeta);

// Gate parameters of one block. Linear: w1 [H, in], b1 [H]. Mlp: w1 [H, m, in], b1 [H, m],
// w2 [H, m], b2 [H]. `in` is the head size for GateInput::Head, the hidden size for Token.
struct GateWeights {
  at::Tensor w1, b1, w2, b2;
};

// Checkpoint tensors of a gate, relative to the attention module ("<attn>.gate.weight", ...),
// in GateWeights order (w1, b1[, w2, b2]) with their shapes.
std::vector<std::pair<std::string, std::vector<int64_t>>> gateTensorShapes(const AttentionVariant& v,
                                                                           int64_t heads, int64_t hidden);
// Reads a block's gate from `src` (prefix = the attention module, e.g.
// "model.decoder.layers.3.self_attn"); qs::Error naming the checkpoint and tensor when one is
// missing or misshapen.
GateWeights loadGateWeights(const io::WeightSource& src, const std::string& prefix, const AttentionVariant& v,
                            int64_t heads, int64_t hidden, const at::TensorOptions& options);

// sigmoid(G_h(x)) [B, T, H] for block input x [B, T, D] (D = H * headDim for GateInput::Head).
at::Tensor attentionGate(const at::Tensor& x, const GateWeights& g, const AttentionVariant& v, int64_t heads);
// ctx [B, T, H * d] scaled per head by gate [B, T, H].
at::Tensor gateContext(const at::Tensor& ctx, const at::Tensor& gate);

}  // namespace qs::model
