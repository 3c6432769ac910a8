#include "core/model/attention.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/io/weight_source.h"
#include "core/util/error.h"

namespace qs::model {

at::Tensor alibiSlopes(int64_t heads, const at::TensorOptions& options) {
  const int64_t p = int64_t(1) << static_cast<int>(std::floor(std::log2(static_cast<double>(heads))));
  std::vector<float> slopes;
  const double base = std::pow(2.0, -8.0 / static_cast<double>(p));
  for (int64_t i = 1; i <= p; ++i) slopes.push_back(static_cast<float>(std::pow(base, i)));
  const double extra = std::pow(2.0, -4.0 / static_cast<double>(p));
  for (int64_t i = 0; i < heads - p; ++i) slopes.push_back(static_cast<float>(std::pow(extra, 2 * i + 1)));
  return at::tensor(slopes, at::kFloat).to(options.device());
}

at::Tensor attentionBias(const at::Tensor& mask, const at::Tensor& positions, int64_t window,
                         const at::Tensor& slopes) {
  const int64_t B = mask.size(0), T = mask.size(1);
  auto dev = mask.device();
  at::Tensor idx = at::arange(T, at::TensorOptions().dtype(at::kLong).device(dev));
  at::Tensor allowed = idx.view({T, 1}) >= idx.view({1, T});  // [T, T]: causal
  const bool padded = !mask.all().item<bool>();
  if (padded || window > 0 || slopes.defined()) {
    allowed = allowed.view({1, 1, T, T}).logical_and(mask.to(at::kBool).view({B, 1, 1, T}));
    if (window > 0) {
      at::Tensor dist = positions.view({B, 1, T, 1}) - positions.view({B, 1, 1, T});
      allowed = allowed.logical_and(dist < window);
    }
  } else {
    allowed = allowed.view({1, 1, T, T});
  }
  at::Tensor bias = at::zeros(allowed.sizes(), at::TensorOptions().dtype(at::kFloat).device(dev));
  bias.masked_fill_(allowed.logical_not(), kMaskedScore);
  if (slopes.defined()) {
    // slope_h * key position; the per-query constant HF's -slope*(i-j) adds cancels in softmax.
    const int64_t H = slopes.size(0);
    at::Tensor alibi = slopes.view({1, H, 1, 1}) * positions.to(at::kFloat).view({B, 1, 1, T});
    bias = bias + alibi;  // [B, H, T, T]; masked entries stay at the finite minimum
  }
  return bias;
}

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) {
  return attend(q, k, v, bias, AttentionVariant());
}

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                  const AttentionVariant& variant, const ScoresHook& scoresHook) {
  const bool clip = variant.clipped();
  // gamma uses the full key count S, not a chunk's: the chunks are one softmax computed in parts.
  const double gamma = clip ? variant.gammaFor(k.size(1)) : 0.0, zeta = variant.zeta;
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), d = q.size(3);
  const int64_t S = k.size(1), Hkv = k.size(2), r = H / Hkv;
  // Queries in chunks: chunk [t0, t1) only needs keys [0, t1 + S - T) since every later key is
  // causally masked (its probability is exactly 0), which skips ~40% of the score/softmax work
  // at T = 512. Chunk scores also stay cache-sized.
  constexpr int64_t kChunk = 128;
  at::Tensor out = at::empty({B, T, H, d}, q.options());
  for (int64_t b = 0; b < B; ++b) {
    // [heads, T, d] views go to bmm as strided matrices, without the copies 4-D matmul makes.
    at::Tensor qb = q[b].permute({1, 0, 2});  // [H, T, d]
    at::Tensor kb = k[b].permute({1, 2, 0});  // [Hkv, d, S]
    at::Tensor vb = v[b].permute({1, 0, 2});  // [Hkv, S, d]
    at::Tensor biasB = bias[bias.size(0) == 1 ? 0 : b];  // [H or 1, T, S]
    for (int64_t t0 = 0; t0 < T; t0 += kChunk) {
      const int64_t C = std::min(kChunk, T - t0), keys = t0 + C + (S - T);
      // Grouped kv heads are not repeated: a group's r query heads are stacked along the query
      // axis, [Hkv, r*C, d] x [Hkv, d, keys].
      at::Tensor qc = qb.narrow(1, t0, C);
      if (r > 1) qc = qc.reshape({Hkv, r * C, d});
      at::Tensor scores = at::bmm(qc, kb.narrow(2, 0, keys)).view({H, C, keys});
      at::Tensor bc = biasB.narrow(1, t0, C).narrow(2, 0, keys);
      at::Tensor probs;
      if (scores.scalar_type() == at::kFloat) {
        scores.add_(bc);
        if (scoresHook) scoresHook(scores, b, t0);
        probs = at::_softmax_out(scores, scores, -1, false);  // in place: no second [H, C, keys] buffer
        if (clip) probs.mul_(zeta - gamma).add_(gamma).clamp_(0.0, 1.0);
      } else {
        at::Tensor sf = scores.to(at::kFloat).add_(bc);
        if (scoresHook) scoresHook(sf, b, t0);
        at::Tensor p = at::softmax(sf, -1);
        if (clip) p.mul_(zeta - gamma).add_(gamma).clamp_(0.0, 1.0);
        probs = p.to(q.scalar_type());
      }
      at::Tensor ctx = at::bmm(probs.view({Hkv, r * C, keys}), vb.narrow(1, 0, keys)).view({H, C, d});
      out[b].narrow(0, t0, C).copy_(ctx.permute({1, 0, 2}));
    }
  }
  return out.view({B, T, H * d});
}

at::Tensor clippedSoftmax(const at::Tensor& scores, double gamma, double zeta) {
  return at::clamp(at::softmax(scores, -1) * (zeta - gamma) + gamma, 0.0, 1.0);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> gateTensorShapes(const AttentionVariant& v,
                                                                           int64_t heads, int64_t hidden) {
  const int64_t in = v.gateInput == AttentionVariant::GateInput::Head ? hidden / heads : hidden;
  if (v.gate == AttentionVariant::Gate::Linear)
    return {{"gate.weight", {heads, in}}, {"gate.bias", {heads}}};
  if (v.gate == AttentionVariant::Gate::Mlp) {
    const int64_t m = v.gateHidden;
    return {{"gate.fc1.weight", {heads, m, in}}, {"gate.fc1.bias", {heads, m}},
            {"gate.fc2.weight", {heads, m}}, {"gate.fc2.bias", {heads}}};
  }
  return {};
}

GateWeights loadGateWeights(const io::WeightSource& src, const std::string& prefix, const AttentionVariant& v,
                            int64_t heads, int64_t hidden, const at::TensorOptions& options) {
  std::vector<at::Tensor> t;
  for (const auto& [local, shape] : gateTensorShapes(v, heads, hidden)) {
    const std::string name = prefix + "." + local;
    if (!src.has(name))
      throw fileError(src.path(), "missing tensor '" + name + "' (config.json quantscope_attention has a gate)");
    at::Tensor x = src.load(name);
    if (x.sizes() != at::IntArrayRef(shape))
      throw fileError(src.path(), "tensor '" + name + "' does not have the shape quantscope_attention implies");
    t.push_back(x.to(options));
  }
  GateWeights g;
  if (t.size() >= 2) g.w1 = t[0], g.b1 = t[1];
  if (t.size() == 4) g.w2 = t[2], g.b2 = t[3];
  return g;
}

at::Tensor attentionGate(const at::Tensor& x, const GateWeights& g, const AttentionVariant& v, int64_t heads) {
  const int64_t B = x.size(0), T = x.size(1);
  const bool perHead = v.gateInput == AttentionVariant::GateInput::Head;
  // Per head: x as [B, T, H, d], G_h sees only its slice. Per token: every G_h sees all of x.
  at::Tensor xin = perHead ? x.reshape({B, T, heads, x.size(2) / heads}) : x;
  at::Tensor logits;
  if (v.gate == AttentionVariant::Gate::Linear) {
    logits = perHead ? (xin * g.w1).sum(-1) : at::matmul(xin, g.w1.t());
    logits = logits + g.b1;
  } else {
    at::Tensor hidden = perHead ? at::einsum("bthc,hmc->bthm", {xin, g.w1}) : at::einsum("btc,hmc->bthm", {xin, g.w1});
    logits = (at::relu(hidden + g.b1) * g.w2).sum(-1) + g.b2;
  }
  return at::sigmoid(logits);  // [B, T, H]
}

at::Tensor gateContext(const at::Tensor& ctx, const at::Tensor& gate) {
  const int64_t B = ctx.size(0), T = ctx.size(1), H = gate.size(2);
  return (ctx.view({B, T, H, ctx.size(2) / H}) * gate.unsqueeze(-1).to(ctx.scalar_type())).view({B, T, ctx.size(2)});
}

}  // namespace qs::model
