#include "core/train/opt_lm.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "core/model/attention.h"
#include "core/util/error.h"

namespace qs::train {
namespace {

const char* kPrefix = "model.decoder.";
// OPT's learned positions start at row 2 (a fairseq legacy Hugging Face keeps).
constexpr int64_t kPositionOffset = 2;
constexpr double kInitStd = 0.02;  // OPT's init_std
constexpr double kNormEps = 1e-5;

std::string layerPrefix(int64_t i) { return std::string(kPrefix) + "layers." + std::to_string(i) + "."; }

}  // namespace

OptLm::OptLm(const CausalLmShape& s, uint64_t seed) : shape_(s) {
  if (s.vocab <= 0 || s.hidden <= 0 || s.layers <= 0 || s.heads <= 0 || s.ffn <= 0 || s.maxPositions <= 0)
    throw Error("model shape: vocab, hidden, layers, heads, ffn and positions must be positive");
  if (s.hidden % s.heads != 0)
    throw Error("model shape: hidden size " + std::to_string(s.hidden) + " is not divisible by " +
                std::to_string(s.heads) + " heads");
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto add = [&](const std::string& name, const at::Tensor& t) { addParam(name, t); };
  auto normal = [&](std::vector<int64_t> shape) { return at::normal(0.0, kInitStd, shape, gen); };
  const int64_t D = s.hidden;
  add(std::string(kPrefix) + "embed_tokens.weight", normal({s.vocab, D}));
  add(std::string(kPrefix) + "embed_positions.weight", normal({s.maxPositions + kPositionOffset, D}));
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string b = layerPrefix(i);
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      add(b + "self_attn." + proj + ".weight", normal({D, D}));
      add(b + "self_attn." + proj + ".bias", at::zeros({D}));
    }
    addGateParams(b + "self_attn.", s.attention, s.heads, D, normal);
    add(b + "self_attn_layer_norm.weight", at::ones({D}));
    add(b + "self_attn_layer_norm.bias", at::zeros({D}));
    add(b + "fc1.weight", normal({s.ffn, D}));
    add(b + "fc1.bias", at::zeros({s.ffn}));
    add(b + "fc2.weight", normal({D, s.ffn}));
    add(b + "fc2.bias", at::zeros({D}));
    add(b + "final_layer_norm.weight", at::ones({D}));
    add(b + "final_layer_norm.bias", at::zeros({D}));
  }
  add(std::string(kPrefix) + "final_layer_norm.weight", at::ones({D}));
  add(std::string(kPrefix) + "final_layer_norm.bias", at::zeros({D}));
}

bool OptLm::decays(const std::string& name) const {
  return !isBiasName(name) && name.find("layer_norm") == std::string::npos;
}

at::Tensor OptLm::forward(const at::Tensor& ids) const {
  const int64_t B = ids.size(0), T = ids.size(1), D = shape_.hidden, H = shape_.heads, d = D / H;
  checkLength(T, shape_.maxPositions);
  const model::AttentionVariant& var = shape_.attention;
  at::Tensor pos = at::arange(kPositionOffset, T + kPositionOffset, ids.options().dtype(at::kLong));
  at::Tensor x = at::embedding(p(std::string(kPrefix) + "embed_tokens.weight"), ids) +
                 at::embedding(p(std::string(kPrefix) + "embed_positions.weight"), pos);
  at::Tensor bias = causalBias(T, ids.device());
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (int64_t i = 0; i < shape_.layers; ++i) {
    const std::string b = layerPrefix(i), a = b + "self_attn.";
    auto lin = [&](const at::Tensor& in, const std::string& n) { return linear(in, p(n + ".weight"), p(n + ".bias")); };
    at::Tensor h = at::layer_norm(x, {D}, p(b + "self_attn_layer_norm.weight"), p(b + "self_attn_layer_norm.bias"), kNormEps);
    at::Tensor q = (lin(h, a + "q_proj") * scale).view({B, T, H, d}).transpose(1, 2);
    at::Tensor k = lin(h, a + "k_proj").view({B, T, H, d}).transpose(1, 2);
    at::Tensor v = lin(h, a + "v_proj").view({B, T, H, d}).transpose(1, 2);
    at::Tensor ctx = attend(q, k, v, bias, h, a, var);
    x = x + lin(ctx, a + "out_proj");
    h = at::layer_norm(x, {D}, p(b + "final_layer_norm.weight"), p(b + "final_layer_norm.bias"), kNormEps);
    x = x + lin(at::relu(lin(h, b + "fc1")), b + "fc2");
  }
  x = at::layer_norm(x, {D}, p(std::string(kPrefix) + "final_layer_norm.weight"),
                     p(std::string(kPrefix) + "final_layer_norm.bias"), kNormEps);
  return linear(x, p(std::string(kPrefix) + "embed_tokens.weight"));  // tied lm_head
}

std::string OptLm::configJson() const {
  const CausalLmShape& s = shape_;
  nlohmann::json j = {
      {"architectures", {"OPTForCausalLM"}},
      {"model_type", "opt"},
      {"activation_function", "relu"},
      {"do_layer_norm_before", true},
      {"enable_bias", true},
      {"layer_norm_elementwise_affine", true},
      {"hidden_size", s.hidden},
      {"word_embed_proj_dim", s.hidden},
      {"ffn_dim", s.ffn},
      {"num_hidden_layers", s.layers},
      {"num_attention_heads", s.heads},
      {"vocab_size", s.vocab},
      {"max_position_embeddings", s.maxPositions},
      {"init_std", kInitStd},
      {"dropout", 0.0},
      {"attention_dropout", 0.0},
      {"tie_word_embeddings", true},
      {"torch_dtype", "float32"},
  };
  if (!s.attention.vanilla()) j["quantscope_attention"] = model::attentionVariantJson(s.attention);
  return j.dump(2) + "\n";
}

}  // namespace qs::train
