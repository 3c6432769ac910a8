#include "core/io/gguf_weights.h"

#include <ATen/ATen.h>

#include <cstring>
#include <regex>

#include "core/io/ggml_quants.h"
#include "core/util/error.h"

namespace qs::io {
namespace {

constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlBF16 = 30;

void requireLlama(const GgufFile& f) {
  const auto& md = f.metadata();
  auto it = md.find("general.architecture");
  if (it == md.end() || !it->is_string())
    throw fileError(f.path(), "GGUF metadata has no general.architecture");
  if (it->get<std::string>() != "llama")
    throw fileError(f.path(), "unsupported GGUF architecture '" + it->get<std::string>() +
                                  "' (only \"llama\" can be mapped to Hugging Face names)");
}

const nlohmann::json& key(const GgufFile& f, const std::string& k) {
  auto it = f.metadata().find(k);
  if (it == f.metadata().end()) throw fileError(f.path(), "GGUF metadata key '" + k + "' is missing");
  return *it;
}

int64_t positiveInt(const GgufFile& f, const std::string& k) {
  const auto& v = key(f, k);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0)
    throw fileError(f.path(), "GGUF metadata key '" + k + "' must be a positive integer");
  return v.get<int64_t>();
}

double number(const GgufFile& f, const std::string& k, double fallback) {
  auto it = f.metadata().find(k);
  if (it == f.metadata().end()) return fallback;
  if (!it->is_number()) throw fileError(f.path(), "GGUF metadata key '" + k + "' must be a number");
  return it->get<double>();
}

// llama2.c-style exports write the shared embedding twice; identical bytes mean tied weights,
// which Hugging Face stores once (no lm_head.weight, tie_word_embeddings true).
bool outputTiedToEmbedding(const GgufFile& f) {
  const GgufTensorInfo* out = f.find("output.weight");
  if (!out) return true;
  const GgufTensorInfo* emb = f.find("token_embd.weight");
  return emb && emb->ggmlType == out->ggmlType && emb->shape == out->shape && emb->nbytes == out->nbytes &&
         std::memcmp(f.data(*emb), f.data(*out), out->nbytes) == 0;
}

// GGUF block tensor part <-> HF LLaMA block module.
const std::map<std::string, std::string>& ggufParts() {
  static const std::map<std::string, std::string> parts = {
      {"attn_norm", "input_layernorm"},        {"attn_q", "self_attn.q_proj"},
      {"attn_k", "self_attn.k_proj"},          {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"},     {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},           {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  return parts;
}

}  // namespace

std::string ggufToHfName(const std::string& g) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  static const std::regex blk(R"(blk\.(\d+)\.([a-z_]+)\.(weight|bias))");
  std::smatch m;
  if (!std::regex_match(g, m, blk)) return {};
  auto it = ggufParts().find(m[2].str());
  if (it == ggufParts().end()) return {};
  return "model.layers." + m[1].str() + "." + it->second + "." + m[3].str();
}

std::string hfToGgufName(const std::string& hfName) {
  const std::string h = hfName.rfind("model.", 0) == 0 ? hfName.substr(6) : hfName;
  if (h == "embed_tokens.weight") return "token_embd.weight";
  if (h == "norm.weight") return "output_norm.weight";
  if (h == "lm_head.weight") return "output.weight";
  static const std::regex blk(R"(layers\.(\d+)\.(.+)\.(weight|bias))");
  std::smatch m;
  if (!std::regex_match(h, m, blk)) return {};
  for (const auto& [gguf, hf] : ggufParts())
    if (hf == m[2].str()) return "blk." + m[1].str() + "." + gguf + "." + m[3].str();
  return {};
}

GgufWeightSource::GgufWeightSource(const std::string& path) : GgufWeightSource(GgufFile::open(path)) {}

GgufWeightSource::GgufWeightSource(std::shared_ptr<GgufFile> file) : file_(std::move(file)) {
  requireLlama(*file_);
  nHeads_ = positiveInt(*file_, "llama.attention.head_count");
  nKvHeads_ = file_->metadata().contains("llama.attention.head_count_kv")
                  ? positiveInt(*file_, "llama.attention.head_count_kv")
                  : nHeads_;
  for (const auto& t : file_->tensors()) {
    std::string hf = ggufToHfName(t.name);
    if (hf.empty()) continue;  // e.g. rope_freqs: recomputed by the model, no HF tensor
    TensorMeta m;
    m.name = hf;
    m.shape = t.shape;
    m.dtype = t.ggmlType == kGgmlF16 ? DType::F16 : t.ggmlType == kGgmlBF16 ? DType::BF16 : DType::F32;  // blocks: F32
    const bool isQ = t.name.find(".attn_q.") != std::string::npos;
    const bool isK = t.name.find(".attn_k.") != std::string::npos;
    if (isQ || isK) {
      const int64_t heads = isQ ? nHeads_ : nKvHeads_;
      if (t.shape.empty() || t.shape[0] % (2 * heads) != 0)
        throw fileError(file_->path(), "tensor '" + t.name + "' of shape " + shapeString(t.shape) +
                                           " does not split into " + std::to_string(heads) + " heads");
    }
    byHfName_[hf] = &t;
    metas_.push_back(std::move(m));
  }
}

at::Tensor GgufWeightSource::load(const std::string& name) const {
  auto it = byHfName_.find(name);
  if (it == byHfName_.end()) throw fileError(file_->path(), "no tensor named '" + name + "'");
  const GgufTensorInfo& t = *it->second;
  at::Tensor out;
  switch (t.ggmlType) {
    case kGgmlF32: out = at::empty(t.shape, at::kFloat); break;
    case kGgmlF16: out = at::empty(t.shape, at::kHalf); break;
    case kGgmlBF16: out = at::empty(t.shape, at::kBFloat16); break;
    default:
      if (!ggmlCanConvert(t.ggmlType))
        throw fileError(file_->path(), "tensor '" + t.name + "' has GGML type " + ggmlTypeName(t.ggmlType) +
                                           ", which QuantScope cannot read yet (F32, F16, BF16, Q4_0, Q4_1, "
                                           "Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K are read)");
  }
  if (out.defined()) {
    file_->copyOut(t, out.data_ptr());
  } else {
    // A block-quantized tensor, dequantized on load as llama.cpp's dequantize_row_* does.
    std::vector<uint8_t> bytes(t.nbytes);
    file_->copyOut(t, bytes.data());
    out = at::empty(t.shape, at::kFloat);
    const int64_t n = t.shape.back();
    ggmlDequantizeRows(t.ggmlType, bytes.data(), out.numel() / n, n, out.data_ptr<float>());
  }
  const bool isQ = t.name.find(".attn_q.") != std::string::npos;
  const bool isK = t.name.find(".attn_k.") != std::string::npos;
  if (isQ || isK) {
    // llama.cpp interleaves each head's rotary pairs; HF keeps the two halves apart (rotate_half).
    const int64_t heads = isQ ? nHeads_ : nKvHeads_;
    std::vector<int64_t> split = {heads, t.shape[0] / heads / 2, 2};
    split.insert(split.end(), t.shape.begin() + 1, t.shape.end());
    out = out.view(split).transpose(1, 2).reshape(t.shape).contiguous();
  }
  return out;
}

nlohmann::json ggufToHfConfig(const GgufFile& f) {
  requireLlama(f);
  nlohmann::json c;
  c["architectures"] = {"LlamaForCausalLM"};
  c["model_type"] = "llama";
  c["hidden_size"] = positiveInt(f, "llama.embedding_length");
  c["intermediate_size"] = positiveInt(f, "llama.feed_forward_length");
  c["num_hidden_layers"] = positiveInt(f, "llama.block_count");
  const int64_t heads = positiveInt(f, "llama.attention.head_count");
  c["num_attention_heads"] = heads;
  c["num_key_value_heads"] = f.metadata().contains("llama.attention.head_count_kv")
                                 ? positiveInt(f, "llama.attention.head_count_kv")
                                 : heads;
  c["rms_norm_eps"] = number(f, "llama.attention.layer_norm_rms_epsilon", 1e-5);
  c["rope_theta"] = number(f, "llama.rope.freq_base", 10000.0);
  c["max_position_embeddings"] = positiveInt(f, "llama.context_length");
  int64_t vocab = 0;
  if (f.metadata().contains("llama.vocab_size")) vocab = positiveInt(f, "llama.vocab_size");
  else if (f.metadata().contains("tokenizer.ggml.tokens") && f.metadata()["tokenizer.ggml.tokens"].is_array())
    vocab = static_cast<int64_t>(f.metadata()["tokenizer.ggml.tokens"].size());
  else if (const auto* emb = f.find("token_embd.weight"); emb && !emb->shape.empty())
    vocab = emb->shape[0];
  else
    throw fileError(f.path(), "cannot tell the vocabulary size (no llama.vocab_size, tokens or token_embd)");
  c["vocab_size"] = vocab;
  for (const char* id : {"bos", "eos"}) {
    const std::string k = std::string("tokenizer.ggml.") + id + "_token_id";
    if (f.metadata().contains(k)) {
      const auto& v = f.metadata()[k];
      if (!v.is_number_integer()) throw fileError(f.path(), "GGUF metadata key '" + k + "' must be an integer");
      c[std::string(id) + "_token_id"] = v.get<int64_t>();
    }
  }
  c["hidden_act"] = "silu";
  c["tie_word_embeddings"] = outputTiedToEmbedding(f);
  return c;
}

}  // namespace qs::io
