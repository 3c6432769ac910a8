#include "core/train/llama_lm.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "core/model/attention.h"
#include "core/util/error.h"

namespace qs::train {
namespace {

constexpr double kInitStd = 0.02;
constexpr double kRmsEps = 1e-5;

std::string layerPrefix(int64_t i) { return "model.layers." + std::to_string(i) + "."; }

at::Tensor rmsNorm(const at::Tensor& x, const at::Tensor& w) {
  return x * at::rsqrt(x.pow(2).mean(-1, true) + kRmsEps) * w;
}

// x [B, T, heads, d] rotated by cos/sin [T, d] (rotate_half: dimension i pairs with i + d/2).
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t d = x.size(-1), T = x.size(1);
  at::Tensor x1 = x.narrow(-1, 0, d / 2), x2 = x.narrow(-1, d / 2, d / 2);
  at::Tensor rotated = at::cat({-x2, x1}, -1);
  return x * cos.view({1, T, 1, d}) + rotated * sin.view({1, T, 1, d});
}

}  // namespace

LlamaLm::LlamaLm(const CausalLmShape& s, uint64_t seed) : shape_(s) {
  if (shape_.kvHeads == 0) shape_.kvHeads = s.heads;
  if (s.vocab <= 0 || s.hidden <= 0 || s.layers <= 0 || s.heads <= 0 || s.ffn <= 0 || s.maxPositions <= 0 ||
      shape_.kvHeads <= 0)
    throw Error("model shape: vocab, hidden, layers, heads, kv heads, ffn and positions must be positive");
  if (s.hidden % s.heads != 0 || (s.hidden / s.heads) % 2 != 0)
    throw Error("model shape: hidden size " + std::to_string(s.hidden) + " must split into " +
                std::to_string(s.heads) + " heads of an even size (RoPE)");
  if (s.heads % shape_.kvHeads != 0)
    throw Error("model shape: " + std::to_string(s.heads) + " heads are not a multiple of " +
                std::to_string(shape_.kvHeads) + " kv heads");
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto add = [&](const std::string& name, const at::Tensor& t) { addParam(name, t); };
  auto normal = [&](std::vector<int64_t> shape) { return at::normal(0.0, kInitStd, shape, gen); };
  const int64_t D = s.hidden, d = D / s.heads, kv = shape_.kvHeads * d;
  add("model.embed_tokens.weight", normal({s.vocab, D}));
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string b = layerPrefix(i);
    add(b + "input_layernorm.weight", at::ones({D}));
    add(b + "self_attn.q_proj.weight", normal({D, D}));
    add(b + "self_attn.k_proj.weight", normal({kv, D}));
    add(b + "self_attn.v_proj.weight", normal({kv, D}));
    add(b + "self_attn.o_proj.weight", normal({D, D}));
    addGateParams(b + "self_attn.", s.attention, s.heads, D, normal);
    add(b + "post_attention_layernorm.weight", at::ones({D}));
    add(b + "mlp.gate_proj.weight", normal({s.ffn, D}));
    add(b + "mlp.up_proj.weight", normal({s.ffn, D}));
    add(b + "mlp.down_proj.weight", normal({D, s.ffn}));
  }
  add("model.norm.weight", at::ones({D}));
}

bool LlamaLm::decays(const std::string& name) const {
  return !isBiasName(name) && name.find("norm") == std::string::npos;
}

at::Tensor LlamaLm::forward(const at::Tensor& ids) const {
  const int64_t B = ids.size(0), T = ids.size(1), D = shape_.hidden, H = shape_.heads, d = D / H;
  const int64_t Hkv = shape_.kvHeads, r = H / Hkv;
  checkLength(T, shape_.maxPositions);
  const model::AttentionVariant& var = shape_.attention;
  // RoPE tables in float32: inv_freq_i = theta^(-2i/d), cos/sin = cat(freqs, freqs).
  const auto f32 = ids.options().dtype(at::kFloat);
  at::Tensor invFreq = at::pow(shape_.ropeTheta, at::arange(0, d, 2, f32) / static_cast<double>(d)).reciprocal();
  at::Tensor freqs = at::outer(at::arange(T, f32), invFreq);
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  at::Tensor cos = emb.cos(), sin = emb.sin();
  at::Tensor bias = causalBias(T, ids.device());
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  at::Tensor x = at::embedding(p("model.embed_tokens.weight"), ids);
  for (int64_t i = 0; i < shape_.layers; ++i) {
    const std::string b = layerPrefix(i), a = b + "self_attn.";
    auto lin = [&](const at::Tensor& in, const std::string& n) { return linear(in, p(n + ".weight")); };
    at::Tensor h = rmsNorm(x, p(b + "input_layernorm.weight"));
    at::Tensor q = rope(lin(h, a + "q_proj").view({B, T, H, d}), cos, sin).transpose(1, 2) * scale;
    at::Tensor k = rope(lin(h, a + "k_proj").view({B, T, Hkv, d}), cos, sin).transpose(1, 2);
    at::Tensor v = lin(h, a + "v_proj").view({B, T, Hkv, d}).transpose(1, 2);
    if (r > 1) {  // query head j uses kv head j / r
      k = k.repeat_interleave(r, 1);
      v = v.repeat_interleave(r, 1);
    }
    at::Tensor ctx = attend(q, k, v, bias, h, a, var);
    x = x + lin(ctx, a + "o_proj");
    h = rmsNorm(x, p(b + "post_attention_layernorm.weight"));
    x = x + lin(at::silu(lin(h, b + "mlp.gate_proj")) * lin(h, b + "mlp.up_proj"), b + "mlp.down_proj");
  }
  x = rmsNorm(x, p("model.norm.weight"));
  return linear(x, p("model.embed_tokens.weight"));  // tied lm_head
}

std::string LlamaLm::configJson() const {
  const CausalLmShape& s = shape_;
  nlohmann::json j = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_act", "silu"},
      {"hidden_size", s.hidden},
      {"intermediate_size", s.ffn},
      {"num_hidden_layers", s.layers},
      {"num_attention_heads", s.heads},
      {"num_key_value_heads", s.kvHeads},
      {"vocab_size", s.vocab},
      {"max_position_embeddings", s.maxPositions},
      {"rms_norm_eps", kRmsEps},
      {"rope_theta", s.ropeTheta},
      {"attention_bias", false},
      {"initializer_range", kInitStd},
      {"tie_word_embeddings", true},
      {"torch_dtype", "float32"},
  };
  if (!s.attention.vanilla()) j["quantscope_attention"] = model::attentionVariantJson(s.attention);
  return j.dump(2) + "\n";
}

}  // namespace qs::train
