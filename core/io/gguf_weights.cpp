#include "core/io/gguf_weights.h"

#include <ATen/ATen.h>

#include <cstring>

#include "core/io/ggml_quants.h"
#include "core/util/error.h"

namespace qs::io {
namespace {

constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlBF16 = 30;

// One llama.cpp architecture's names: whole-model tensors and block parts (GGUF -> HF).
struct ArchNames {
  const char* arch;
  const char* prefix;  // the HF model's module prefix ("model.", "transformer."); "" for none
  const char* blocks;  // the HF block list under the prefix ("layers.", "h.")
  std::vector<std::pair<const char*, const char*>> globals;  // GGUF base -> HF base (with prefix)
  std::vector<std::pair<const char*, const char*>> parts;    // GGUF part -> HF module in a block
};

const std::vector<ArchNames>& archNames() {
  static const std::vector<ArchNames> t = {
      {"llama", "model.", "layers.",
       {{"token_embd", "model.embed_tokens"}, {"output_norm", "model.norm"}, {"output", "lm_head"}},
       {{"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
        {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
        {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"}}},
      {"gpt2", "transformer.", "h.",
       {{"token_embd", "transformer.wte"}, {"position_embd", "transformer.wpe"}, {"output_norm", "transformer.ln_f"},
        {"output", "lm_head"}},
       {{"attn_norm", "ln_1"}, {"attn_qkv", "attn.c_attn"}, {"attn_output", "attn.c_proj"}, {"ffn_norm", "ln_2"},
        {"ffn_up", "mlp.c_fc"}, {"ffn_down", "mlp.c_proj"}}},
      {"bloom", "transformer.", "h.",
       {{"token_embd", "transformer.word_embeddings"}, {"token_embd_norm", "transformer.word_embeddings_layernorm"},
        {"output_norm", "transformer.ln_f"}, {"output", "lm_head"}},
       {{"attn_norm", "input_layernorm"}, {"attn_qkv", "self_attention.query_key_value"},
        {"attn_output", "self_attention.dense"}, {"ffn_norm", "post_attention_layernorm"},
        {"ffn_up", "mlp.dense_h_to_4h"}, {"ffn_down", "mlp.dense_4h_to_h"}}},
      // Falcon-40B's layout: attn_norm is ln_mlp (it feeds the MLP), attn_norm_2 ln_attn.
      {"falcon", "transformer.", "h.",
       {{"token_embd", "transformer.word_embeddings"}, {"output_norm", "transformer.ln_f"}, {"output", "lm_head"}},
       {{"attn_norm", "input_layernorm"}, {"attn_norm", "ln_mlp"}, {"attn_norm_2", "ln_attn"},
        {"attn_qkv", "self_attention.query_key_value"}, {"attn_output", "self_attention.dense"},
        {"ffn_up", "mlp.dense_h_to_4h"}, {"ffn_down", "mlp.dense_4h_to_h"}}},
      {"gptneox", "gpt_neox.", "layers.",
       {{"token_embd", "gpt_neox.embed_in"}, {"output_norm", "gpt_neox.final_layer_norm"}, {"output", "embed_out"}},
       {{"attn_norm", "input_layernorm"}, {"attn_qkv", "attention.query_key_value"},
        {"attn_output", "attention.dense"}, {"ffn_norm", "post_attention_layernorm"},
        {"ffn_up", "mlp.dense_h_to_4h"}, {"ffn_down", "mlp.dense_4h_to_h"}}},
  };
  return t;
}

const ArchNames* findArch(const std::string& arch) {
  for (const auto& a : archNames())
    if (arch == a.arch) return &a;
  return nullptr;
}

std::string archList() {
  std::string s;
  for (const auto& a : archNames()) s += (s.empty() ? "\"" : ", \"") + std::string(a.arch) + "\"";
  return s;
}

const std::string& archOf(const GgufFile& f) {
  const auto& md = f.metadata();
  auto it = md.find("general.architecture");
  if (it == md.end() || !it->is_string())
    throw fileError(f.path(), "GGUF metadata has no general.architecture");
  const std::string& arch = it->get_ref<const std::string&>();
  if (!findArch(arch))
    throw fileError(f.path(), "unsupported GGUF architecture '" + arch + "' (QuantScope maps " + archList() +
                                  " to Hugging Face names)");
  return arch;
}

bool hasFalcon40bNorms(const GgufFile& f) {
  for (const auto& t : f.tensors())
    if (t.name.find(".attn_norm_2.") != std::string::npos) return true;
  return false;
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

int64_t optionalInt(const GgufFile& f, const std::string& k, int64_t fallback) {
  return f.metadata().contains(k) ? positiveInt(f, k) : fallback;
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

bool isPart(const std::string& ggufName, const char* part) {
  return ggufName.find(std::string(".") + part + ".") != std::string::npos;
}

// Rows of a fused q|k|v tensor in HF's order as [groups, per group, headDim, rest...]: BLOOM and
// NeoX interleave [q k v] per head (groups = heads, 3 per group), Falcon puts each group's query
// heads before its one k and one v head (groups = kv heads, heads/kv + 2 per group).
std::vector<int64_t> fusedSplit(const std::string& arch, const at::Tensor& t, int64_t heads, int64_t kvHeads) {
  const bool falcon = arch == "falcon";
  const int64_t groups = falcon ? kvHeads : heads, per = falcon ? heads / kvHeads + 2 : 3;
  std::vector<int64_t> split = {groups, per, t.size(0) / (groups * per)};
  for (int64_t d = 1; d < t.dim(); ++d) split.push_back(t.size(d));
  return split;
}

}  // namespace

bool isMappedGgufArch(const std::string& arch) { return findArch(arch) != nullptr; }

std::string ggufToHfName(const std::string& g, const std::string& arch, bool falcon40b) {
  const ArchNames* a = findArch(arch);
  if (!a) return {};
  const size_t dot = g.rfind('.');
  if (dot == std::string::npos) return {};
  const std::string base = g.substr(0, dot), suffix = g.substr(dot);
  if (suffix != ".weight" && suffix != ".bias") return {};
  for (const auto& [gg, hf] : a->globals)
    if (base == gg) return hf + suffix;
  if (base.rfind("blk.", 0) != 0) return {};
  const size_t d2 = base.find('.', 4);
  if (d2 == std::string::npos) return {};
  const std::string layer = base.substr(4, d2 - 4), part = base.substr(d2 + 1);
  if (layer.empty() || layer.find_first_not_of("0123456789") != std::string::npos) return {};
  for (const auto& [gp, hp] : a->parts) {
    if (part != gp) continue;
    if (arch == "falcon" && part == "attn_norm" && falcon40b != (std::string(hp) == "ln_mlp")) continue;
    return std::string(a->prefix) + a->blocks + layer + "." + hp + suffix;
  }
  return {};
}

std::string hfToGgufName(const std::string& hfName, const std::string& arch) {
  const ArchNames* a = findArch(arch);
  if (!a) return {};
  const size_t dot = hfName.rfind('.');
  if (dot == std::string::npos) return {};
  const std::string suffix = hfName.substr(dot);
  if (suffix != ".weight" && suffix != ".bias") return {};
  // The name as given and with the model's prefix (checkpoints that drop it).
  for (const std::string& h : {hfName.substr(0, dot), std::string(a->prefix) + hfName.substr(0, dot)}) {
    for (const auto& [gg, hf] : a->globals)
      if (h == hf) return gg + suffix;
    const std::string blocks = std::string(a->prefix) + a->blocks;
    if (h.rfind(blocks, 0) != 0) continue;
    const size_t d2 = h.find('.', blocks.size());
    if (d2 == std::string::npos) continue;
    const std::string layer = h.substr(blocks.size(), d2 - blocks.size()), module = h.substr(d2 + 1);
    if (layer.empty() || layer.find_first_not_of("0123456789") != std::string::npos) continue;
    for (const auto& [gp, hp] : a->parts)
      if (module == hp) return "blk." + layer + "." + gp + suffix;
  }
  return {};
}

bool isHfBufferTensor(const std::string& n) {
  for (const char* end : {".attn.bias", ".attn.masked_bias", ".attention.bias", ".attention.masked_bias", ".inv_freq"})
    if (n.size() >= std::strlen(end) && n.compare(n.size() - std::strlen(end), std::string::npos, end) == 0) return true;
  return false;
}

bool ggufHfTransposed(const std::string& arch, const std::string& g) {
  return arch == "gpt2" && g.rfind("blk.", 0) == 0 && g.size() > 7 && g.compare(g.size() - 7, 7, ".weight") == 0 &&
         (isPart(g, "attn_qkv") || isPart(g, "attn_output") || isPart(g, "ffn_up") || isPart(g, "ffn_down"));
}

at::Tensor toGgufRows(const std::string& arch, const std::string& g, const at::Tensor& t, int64_t heads,
                      int64_t kvHeads) {
  if (arch == "llama" && (isPart(g, "attn_q") || isPart(g, "attn_k"))) {
    // llama.cpp orders each head's rotary pairs interleaved; Hugging Face keeps the halves apart.
    const int64_t h = isPart(g, "attn_q") ? heads : kvHeads;
    std::vector<int64_t> split = {h, 2, t.size(0) / h / 2};
    for (int64_t d = 1; d < t.dim(); ++d) split.push_back(t.size(d));
    return t.reshape(split).transpose(1, 2).reshape(t.sizes()).contiguous();
  }
  if ((arch == "bloom" || arch == "gptneox" || arch == "falcon") && isPart(g, "attn_qkv")) {
    const std::vector<int64_t> split = fusedSplit(arch, t, heads, kvHeads);
    const at::Tensor x = t.reshape(split);
    const int64_t per = split[1];
    // All query heads, then the key heads, then the value heads.
    return at::cat({x.slice(1, 0, per - 2).reshape({-1}), x.select(1, per - 2).reshape({-1}),
                    x.select(1, per - 1).reshape({-1})})
        .reshape(t.sizes())
        .contiguous();
  }
  return t;
}

at::Tensor fromGgufRows(const std::string& arch, const std::string& g, const at::Tensor& t, int64_t heads,
                        int64_t kvHeads) {
  if (arch == "llama" && (isPart(g, "attn_q") || isPart(g, "attn_k"))) {
    const int64_t h = isPart(g, "attn_q") ? heads : kvHeads;
    std::vector<int64_t> split = {h, t.size(0) / h / 2, 2};
    for (int64_t d = 1; d < t.dim(); ++d) split.push_back(t.size(d));
    return t.reshape(split).transpose(1, 2).reshape(t.sizes()).contiguous();
  }
  if ((arch == "bloom" || arch == "gptneox" || arch == "falcon") && isPart(g, "attn_qkv")) {
    const std::vector<int64_t> split = fusedSplit(arch, t, heads, kvHeads);
    const int64_t groups = split[0], per = split[1];
    const int64_t row = t.numel() / t.size(0);  // elements per row
    const int64_t headElems = split[2] * row;
    const at::Tensor flat = t.reshape({-1});
    const int64_t qElems = groups * (per - 2) * headElems, kvElems = groups * headElems;
    std::vector<int64_t> qShape = {groups, per - 2, headElems}, kvShape = {groups, 1, headElems};
    const at::Tensor q = flat.slice(0, 0, qElems).reshape(qShape);
    const at::Tensor k = flat.slice(0, qElems, qElems + kvElems).reshape(kvShape);
    const at::Tensor v = flat.slice(0, qElems + kvElems, qElems + 2 * kvElems).reshape(kvShape);
    return at::cat({q, k, v}, 1).reshape(t.sizes()).contiguous();
  }
  return t;
}

GgufWeightSource::GgufWeightSource(const std::string& path) : GgufWeightSource(GgufFile::open(path)) {}

GgufWeightSource::GgufWeightSource(std::shared_ptr<GgufFile> file) : file_(std::move(file)) {
  arch_ = archOf(*file_);
  nHeads_ = positiveInt(*file_, arch_ + ".attention.head_count");
  nKvHeads_ = optionalInt(*file_, arch_ + ".attention.head_count_kv", nHeads_);
  if (nHeads_ % nKvHeads_ != 0)
    throw fileError(file_->path(), std::to_string(nHeads_) + " attention heads do not share " +
                                       std::to_string(nKvHeads_) + " kv heads evenly");
  if (nKvHeads_ != nHeads_ && arch_ != "llama" && arch_ != "falcon")
    throw fileError(file_->path(), "llama.cpp's " + arch_ + " has one kv head per attention head (" +
                                       arch_ + ".attention.head_count_kv is " + std::to_string(nKvHeads_) + ")");
  const bool falcon40b = arch_ == "falcon" && hasFalcon40bNorms(*file_);
  for (const auto& t : file_->tensors()) {
    std::string hf = ggufToHfName(t.name, arch_, falcon40b);
    if (hf.empty()) continue;  // e.g. rope_freqs: recomputed by the model, no HF tensor
    TensorMeta m;
    m.name = hf;
    m.shape = t.shape;
    if (ggufHfTransposed(arch_, t.name) && m.shape.size() == 2) std::swap(m.shape[0], m.shape[1]);
    m.dtype = t.ggmlType == kGgmlF16 ? DType::F16 : t.ggmlType == kGgmlBF16 ? DType::BF16 : DType::F32;  // blocks: F32
    const bool rope = arch_ == "llama" && (isPart(t.name, "attn_q") || isPart(t.name, "attn_k"));
    const bool fused = arch_ != "llama" && arch_ != "gpt2" && isPart(t.name, "attn_qkv");
    if (rope || fused) {
      const int64_t heads = rope && isPart(t.name, "attn_k") ? nKvHeads_ : nHeads_;
      const int64_t rowsPerUnit = rope ? 2 * heads : heads + 2 * nKvHeads_;
      if (t.shape.empty() || t.shape[0] % rowsPerUnit != 0)
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
  out = fromGgufRows(arch_, t.name, out, nHeads_, nKvHeads_);
  if (ggufHfTransposed(arch_, t.name) && out.dim() == 2) out = out.t().contiguous();
  return out;
}

nlohmann::json ggufToHfConfig(const GgufFile& f) {
  const std::string arch = archOf(f);
  auto k = [&](const char* name) { return arch + "." + name; };
  const int64_t hidden = positiveInt(f, k("embedding_length"));
  const int64_t layers = positiveInt(f, k("block_count"));
  const int64_t heads = positiveInt(f, k("attention.head_count"));
  const int64_t kvHeads = optionalInt(f, k("attention.head_count_kv"), heads);
  const int64_t ff = optionalInt(f, k("feed_forward_length"), 4 * hidden);
  const double eps = number(f, k("attention.layer_norm_epsilon"), 1e-5);
  nlohmann::json c;
  c["model_type"] = arch == "gptneox" ? "gpt_neox" : arch;
  if (arch == "llama" || arch == "falcon" || arch == "gptneox") {  // their configs name the sizes alike
    c["hidden_size"] = hidden;
    c["num_hidden_layers"] = layers;
    c["num_attention_heads"] = heads;
  }
  if (arch == "llama") {
    c["architectures"] = {"LlamaForCausalLM"};
    c["intermediate_size"] = positiveInt(f, k("feed_forward_length"));
    c["num_key_value_heads"] = kvHeads;
    c["rms_norm_eps"] = number(f, k("attention.layer_norm_rms_epsilon"), 1e-5);
    c["rope_theta"] = number(f, k("rope.freq_base"), 10000.0);
    c["max_position_embeddings"] = positiveInt(f, k("context_length"));
    c["hidden_act"] = "silu";
  } else if (arch == "gpt2") {
    c["architectures"] = {"GPT2LMHeadModel"};
    c["n_embd"] = hidden;
    c["n_layer"] = layers;
    c["n_head"] = heads;
    c["n_inner"] = ff;
    c["n_positions"] = positiveInt(f, k("context_length"));
    c["layer_norm_epsilon"] = eps;
    c["activation_function"] = "gelu_new";  // llama.cpp's GELU is the tanh form
  } else if (arch == "bloom") {
    if (ff != 4 * hidden)
      throw fileError(f.path(), "BLOOM with feed_forward_length " + std::to_string(ff) + " (Hugging Face's BLOOM "
                                "has 4 x " + std::to_string(hidden) + ")");
    c["architectures"] = {"BloomForCausalLM"};
    c["hidden_size"] = hidden;
    c["n_layer"] = layers;
    c["n_head"] = heads;
    c["layer_norm_epsilon"] = eps;
  } else if (arch == "falcon") {
    const bool v40b = hasFalcon40bNorms(f);
    if (!v40b && kvHeads != 1 && kvHeads != heads)
      throw fileError(f.path(), "Falcon with one norm per block and " + std::to_string(kvHeads) + " kv heads has no "
                                "Hugging Face layout (the 7B layout has 1 kv head or one per head)");
    c["architectures"] = {"FalconForCausalLM"};
    c["num_kv_heads"] = kvHeads;
    c["new_decoder_architecture"] = v40b;
    c["multi_query"] = kvHeads == 1;
    c["parallel_attn"] = true;
    c["bias"] = false;
    c["alibi"] = false;
    c["ffn_hidden_size"] = ff;
    c["layer_norm_epsilon"] = eps;
    c["rope_theta"] = number(f, k("rope.freq_base"), 10000.0);
    c["max_position_embeddings"] = optionalInt(f, k("context_length"), 2048);
  } else {  // gptneox
    const int64_t headDim = hidden / heads;
    c["architectures"] = {"GPTNeoXForCausalLM"};
    c["intermediate_size"] = ff;
    c["layer_norm_eps"] = eps;
    c["rotary_pct"] = static_cast<double>(optionalInt(f, k("rope.dimension_count"), headDim)) / static_cast<double>(headDim);
    c["rotary_emb_base"] = number(f, k("rope.freq_base"), 10000.0);
    c["max_position_embeddings"] = optionalInt(f, k("context_length"), 2048);
    const auto par = f.metadata().find(k("use_parallel_residual"));
    c["use_parallel_residual"] = par == f.metadata().end() || (par->is_boolean() && par->get<bool>());
    c["hidden_act"] = "gelu";
  }
  int64_t vocab = 0;
  if (f.metadata().contains(k("vocab_size"))) vocab = positiveInt(f, k("vocab_size"));
  else if (f.metadata().contains("tokenizer.ggml.tokens") && f.metadata()["tokenizer.ggml.tokens"].is_array())
    vocab = static_cast<int64_t>(f.metadata()["tokenizer.ggml.tokens"].size());
  else if (const auto* emb = f.find("token_embd.weight"); emb && !emb->shape.empty())
    vocab = emb->shape[0];
  else
    throw fileError(f.path(), "cannot tell the vocabulary size (no " + k("vocab_size") + ", tokens or token_embd)");
  c["vocab_size"] = vocab;
  for (const char* id : {"bos", "eos"}) {
    const std::string key = std::string("tokenizer.ggml.") + id + "_token_id";
    if (f.metadata().contains(key)) {
      const auto& v = f.metadata()[key];
      if (!v.is_number_integer()) throw fileError(f.path(), "GGUF metadata key '" + key + "' must be an integer");
      c[std::string(id) + "_token_id"] = v.get<int64_t>();
    }
  }
  c["tie_word_embeddings"] = outputTiedToEmbedding(f);
  return c;
}

}  // namespace qs::io
