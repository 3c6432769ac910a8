#include "core/algo/gguf_export.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <utility>

#include "core/algo/pipeline.h"
#include "core/algo/quantize_config.h"
#include "core/algo/weight_grid.h"
#include "core/io/ggml_quants.h"
#include "core/io/gguf_weights.h"
#include "core/io/gguf_writer.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/strings.h"

namespace qs::algo {
namespace {

// A --gguf-type: llama-quantize's ftype (general.file_type) and its default matrix type.
struct BaseType {
  const char* name;
  uint32_t type;   // ggml type id of most matrices
  uint32_t ftype;  // llama_ftype
};

const std::vector<BaseType>& baseTypes() {
  static const std::vector<BaseType> t = {
      {"F32", io::ggml::F32, 0},      {"F16", io::ggml::F16, 1},      {"BF16", io::ggml::BF16, 32},
      {"Q8_0", io::ggml::Q8_0, 7},    {"Q6_K", io::ggml::Q6_K, 18},   {"Q5_K_M", io::ggml::Q5_K, 17},
      {"Q5_K_S", io::ggml::Q5_K, 16}, {"Q5_1", io::ggml::Q5_1, 9},    {"Q5_0", io::ggml::Q5_0, 8},
      {"Q4_K_M", io::ggml::Q4_K, 15}, {"Q4_K_S", io::ggml::Q4_K, 14}, {"Q4_1", io::ggml::Q4_1, 3},
      {"Q4_0", io::ggml::Q4_0, 2},    {"Q3_K_L", io::ggml::Q3_K, 13}, {"Q3_K_M", io::ggml::Q3_K, 12},
      {"Q3_K_S", io::ggml::Q3_K, 11}, {"Q2_K", io::ggml::Q2_K, 10},
      // Every matrix in one K type (llama-quantize --pure), the output layer Q6_K: the export of a run
      // on that grid (quantize --target gguf:Q4_K); file_type says the nearest mix. Q2_K's name is
      // the mix above, so its pure form is Q2_K_PURE.
      {"Q3_K", io::ggml::Q3_K, 11},   {"Q4_K", io::ggml::Q4_K, 14},   {"Q5_K", io::ggml::Q5_K, 16},
      {"Q2_K_PURE", io::ggml::Q2_K, 10}};
  // (Q6_K above is already one type throughout, as llama-quantize's Q6_K is.)
  return t;
}

std::string baseTypeList() {
  std::string s;
  for (const auto& b : baseTypes()) s += (s.empty() ? "" : ", ") + std::string(b.name);
  return s;
}

const BaseType& parseBaseType(const std::string& name) {
  for (const auto& b : baseTypes())
    if (str::toUpper(name) == b.name) return b;
  throw Error("--gguf-type: '" + name + "' is not one of " + baseTypeList() +
              " (the IQ types, which need an importance matrix, are not written yet)");
}

// llama-quantize's layers that get more bits in the _M mixes: the first and last eighth, and
// every third layer between.
bool useMoreBits(int layer, int layers) {
  return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

int blockIndex(const std::string& ggufName) {
  if (ggufName.rfind("blk.", 0) != 0) return -1;
  return std::atoi(ggufName.c_str() + 4);
}

uint64_t blockOf(uint32_t type) { return io::ggmlTypeTraits(type).blockSize; }
bool isFloatType(uint32_t t) { return t == io::ggml::F32 || t == io::ggml::F16 || t == io::ggml::BF16; }

// The vocabulary the file carries: the tokenizer QuantScope uses for the model as GGUF's "llama"
// (SentencePiece) or "gpt2" (byte-level BPE) tokenizer, else the folder's tokenizer.model.
GgufVocab ggufVocab(const std::string& modelPath, const model::ModelConfig& cfg) {
  const auto tok = io::loadTokenizer(modelPath);
  GgufVocab out;
  if (tok->llamaVocab()) {
    out.llama = *tok->llamaVocab();
    return out;
  }
  if (auto bpe = tok->byteLevelBpeVocab()) {
    if (bpe->pre.empty())
      throw fileError(modelPath, "--format gguf: the tokenizer's pre-tokenizer is none llama.cpp names (gpt-2, "
                                 "llama-bpe, bloom); llama.cpp would split the text differently");
    // Token ids the tokenizer does not name come from the model's config (as convert reads them).
    if (!bpe->bosId && cfg.bosTokenId >= 0) bpe->bosId = static_cast<int32_t>(cfg.bosTokenId);
    if (!bpe->eosId && !cfg.eosTokenIds.empty()) bpe->eosId = static_cast<int32_t>(cfg.eosTokenIds.front());
    out.bpe = std::move(*bpe);
    return out;
  }
  const std::string spm = fs::join(modelPath, "tokenizer.model");
  if (fs::isDirectory(modelPath) && fs::exists(spm)) {
    const auto sp = io::loadSentencePieceModel(spm);
    if (sp->llamaVocab()) {
      out.llama = *sp->llamaVocab();
      return out;
    }
  }
  // A SentencePiece-style BPE tokenizer.json (LLaMA-2, Mistral without tokenizer.model).
  const std::string hf = fs::join(modelPath, "tokenizer.json");
  if (fs::isDirectory(modelPath) && fs::exists(hf)) {
    try {
      io::LlamaVocab v = io::llamaVocabFromHfBpeJson(hf);
      if (const auto b = tok->bosId()) v.bosId = *b;
      if (const auto e = tok->eosId()) v.eosId = *e;
      v.addBos = !tok->encode("", true).empty();  // the tokenizer's own BOS choice (tokenizer_config.json)
      out.llama = std::move(v);
      return out;
    } catch (const Error&) {
      // not SentencePiece-style: the message below
    }
  }
  throw fileError(modelPath, "--format gguf writes SentencePiece (llama) and byte-level BPE (gpt2) vocabularies "
                             "(tokenizer.model, tokenizer.json, vocab.json + merges.txt, tok*_vocab.json or a GGUF "
                             "source); this model's tokenizer is " + tok->kind() + ", which is not written yet");
}


// Q4_0/Q5_0/Q8_0 and K blocks straight from the run's grid of `site`: the codes and scales the
// method chose (quantize --target gguf:T), rows in llama.cpp's q/k order.
void writeGridBlocks(const QuantArtifact& a, const std::string& site, uint32_t type,
                     const std::function<at::Tensor(const at::Tensor&)>& toRows, int64_t rows, int64_t cols,
                     uint8_t* dst) {
  const LayerQuantResult g = artifactGrid(a, site);
  if (g.outlierIndices.defined() && g.outlierIndices.numel() > 0)
    throw Error("--format gguf: site '" + site + "' keeps full-precision outliers, which a GGUF block cannot hold");
  const int64_t groups = g.scales.size(1);
  const bool k = type == io::ggml::Q2_K || type == io::ggml::Q3_K || type == io::ggml::Q4_K ||
                 type == io::ggml::Q5_K || type == io::ggml::Q6_K;
  const int64_t group = type == io::ggml::Q4_K || type == io::ggml::Q5_K ? 32 : k ? 16 : 32;
  const float zero = type == io::ggml::Q8_0 ? 128.f : type == io::ggml::Q5_0 ? 16.f : 8.f;
  if (naturalGroupSize(g.gIdx, groups) != group || groups * group != cols ||
      (!k && !at::equal(g.zeros, at::full_like(g.zeros, zero))))
    throw Error("--format gguf: site '" + site + "' is not on " + io::ggmlTypeTraits(type).name +
                "'s grid (blocks of " + std::to_string(group) + " in column order" +
                (k ? std::string(")") : ", zero " + std::to_string(static_cast<int>(zero)) + ")"));
  const at::Tensor codes = toRows(expandCodes(g.codes).to(at::kFloat)).contiguous();
  const at::Tensor scales = toRows(g.scales.to(at::kFloat)).contiguous();
  if (k) {  // sub-block minimums: the grid stores zero = minimum / scale
    const at::Tensor mins = toRows(at::mul(g.zeros.to(at::kFloat), g.scales.to(at::kFloat))).contiguous();
    io::ggmlEncodeKBlocks(type, codes.data_ptr<float>(), scales.data_ptr<float>(), mins.data_ptr<float>(), rows, cols,
                          dst, "site '" + site + "'");
    return;
  }
  io::ggmlEncodeBlocks(type, codes.data_ptr<float>(), scales.data_ptr<float>(), rows, cols, dst, "site '" + site + "'");
}

}  // namespace

uint32_t ggufTensorType(const std::string& ggufType, const std::string& name, const std::vector<int64_t>& shape,
                        bool tied, int layers, bool attnVMoreBits, std::string* why, int gqa, const std::string& arch) {
  if (why) why->clear();
  const BaseType& mix = parseBaseType(ggufType);
  const uint32_t base = mix.type;
  if (shape.size() < 2) return io::ggml::F32;  // norms and biases stay F32, as llama.cpp keeps them
  if (isFloatType(base)) return base;
  if (name == "position_embd.weight") {  // llama-quantize leaves positional embeddings as they are
    if (why) *why = "llama-quantize does not quantize positional embeddings";
    return io::ggml::F32;
  }
  const bool falcon = arch == "falcon";
  const auto cols = static_cast<uint64_t>(shape.back());
  const std::string m = mix.name;
  uint32_t t = base;
  if (name == "output.weight" || (tied && name == "token_embd.weight")) {
    if (falcon || cols % blockOf(base) != 0) t = io::ggml::Q8_0;
    else if (base != io::ggml::Q8_0) t = io::ggml::Q6_K;
    if (why && t != base) *why = "llama.cpp's type for the output layer";
  } else if (const int layer = blockIndex(name); layer >= 0) {
    // A fused attn_qkv gets attn_v's rules (llama-quantize counts it as attn_v).
    const bool qkv = str::endsWith(name, ".attn_qkv.weight");
    const bool attnV = qkv || str::endsWith(name, ".attn_v.weight");
    const bool ffnDown = str::endsWith(name, ".ffn_down.weight");
    const bool attnOut = str::endsWith(name, ".attn_output.weight");
    using namespace io::ggml;
    if (attnV) {
      if (m == "Q2_K") t = gqa >= 4 ? Q4_K : Q3_K;
      else if (m == "Q3_K_M") t = layer < 2 ? Q5_K : Q4_K;
      else if (m == "Q3_K_L") t = Q5_K;
      else if ((m == "Q4_K_M" || m == "Q5_K_M") && useMoreBits(layer, layers)) t = Q6_K;
      else if (m == "Q4_K_S" && layer < 4) t = Q5_K;
      if (attnVMoreBits && (t == Q3_K || t == Q4_K)) t = Q5_K;  // 70B: 8 heads share attn_v
    } else if (ffnDown) {
      if (m == "Q2_K") t = Q3_K;
      else if (m == "Q3_K_M") t = layer < layers / 16 ? Q5_K : !falcon || useMoreBits(layer, layers) ? Q4_K : Q3_K;
      else if (m == "Q3_K_L") t = falcon ? Q4_K : Q5_K;
      else if (m == "Q4_K_M" && falcon) t = layer < layers / 16 ? Q6_K : useMoreBits(layer, layers) ? Q5_K : Q4_K;
      else if ((m == "Q4_K_M" || m == "Q5_K_M") && useMoreBits(layer, layers)) t = Q6_K;
      else if (m == "Q4_K_S" && !falcon && layer < layers / 8) t = Q5_K;
    } else if (attnOut) {
      if (falcon) {
        if (m == "Q3_K_L") t = Q4_K;
      } else if (m == "Q2_K") t = Q3_K;
      else if (m == "Q3_K_M") t = Q4_K;
      else if (m == "Q3_K_L") t = Q5_K;
    }
    if (why && t != base)
      *why = "llama-quantize's " + m + " mix gives " +
             (qkv ? "attn_qkv" : attnV ? "attn_v" : ffnDown ? "ffn_down" : "attn_output") +
             " more bits here";
  }
  if (cols % blockOf(t) != 0) {
    const uint32_t wanted = t;
    if (t == io::ggml::Q6_K) t = io::ggml::Q8_0;
    else if (t == io::ggml::Q5_K) t = io::ggml::Q5_1;
    else if (t == io::ggml::Q4_K) t = io::ggml::Q5_0;
    else if (t == io::ggml::Q3_K || t == io::ggml::Q2_K) t = io::ggml::Q4_0;
    if (cols % blockOf(t) != 0) t = io::ggml::F16;
    if (why)
      *why = (why->empty() ? "" : *why + "; ") + std::to_string(cols) + " columns do not split into " +
             io::ggmlTypeTraits(wanted).name + " blocks of " + std::to_string(blockOf(wanted));
  }
  return t;
}

namespace {

// llama.cpp's LLaMA-2-70B rule (80 layers, grouped kv heads: attn_v gets a step more) and the
// heads per KV head Q2_K's attn_v rule reads.
bool attnVMoreBitsOf(const model::ModelConfig& cfg) { return cfg.numLayers == 80 && cfg.numKvHeads != cfg.numHeads; }
int gqaOf(const model::ModelConfig& cfg) {
  return static_cast<int>(cfg.numHeads / std::max<int64_t>(1, cfg.numKvHeads));
}

// The type a mix gives a quantization site's matrix (never the tied output layer).
uint32_t mixSiteType(const std::string& mix, const std::string& ggufName, const std::vector<int64_t>& shape,
                     const model::ModelConfig& cfg, const std::string& arch) {
  return ggufTensorType(mix, ggufName, shape, false, static_cast<int>(cfg.numLayers), attnVMoreBitsOf(cfg), nullptr,
                        gqaOf(cfg), arch);
}

}  // namespace

std::map<std::string, std::string> ggufMixSiteTypes(const model::Model& model, const std::string& mix) {
  const model::ModelConfig& cfg = model.config();
  std::string arch;
  try {
    arch = ggufArchitecture(cfg);
  } catch (const Error&) {
    throw Error("gguf_mix: llama.cpp has no " + std::string(model::familyName(cfg.family)) +
                " architecture, so there is no " + mix + " file of this model to target; quantize without a mix");
  }
  std::map<std::string, std::string> out;
  for (const auto& site : model.sites()) {
    const std::string g = io::hfToGgufName(site.hfWeight, arch);
    if (g.empty()) throw Error("gguf_mix: site '" + site.name + "' has no place in llama.cpp's " + arch + " layout");
    out[site.name] = io::ggmlTypeTraits(mixSiteType(mix, g, {site.outFeatures, site.inFeatures}, cfg, arch)).name;
  }
  return out;
}

std::map<std::string, quant::QuantSpec> ggufMixSiteSpecs(const model::Model& model, const std::string& mix,
                                                         const quant::QuantSpec& base) {
  std::map<std::string, quant::QuantSpec> specs;
  const std::string main = gridTargetType(base);
  for (const auto& [site, type] : ggufMixSiteTypes(model, mix)) {
    // A type no run can target (Q5_1, F16) keeps the main grid; the export re-rounds it.
    if (type == main || !isGridTargetType(type)) continue;
    quant::QuantSpec s = base;
    applyGridTarget(s, "gguf:" + type);
    specs[site] = s;
  }
  return specs;
}

std::string targetGgufType(const quant::QuantSpec& spec) {
  const std::string target = gridTargetType(spec);
  return target == "Q2_K" ? "Q2_K_PURE" : target;
}

std::string effectiveGgufType(const QuantArtifact& a, const ExportOptions& o) {
  if (!o.ggufType.empty()) return o.ggufType;
  const QuantizeConfig c = parseQuantizeConfig(a.configYaml, "run config");
  if (!c.ggufMix.empty()) return c.ggufMix;
  const std::string target = targetGgufType(c.layer.spec);
  return target.empty() ? "F16" : target;
}

std::string ggufArchitecture(const model::ModelConfig& cfg) {
  switch (cfg.family) {
    case model::Family::Llama: return "llama";
    case model::Family::Gpt2: return "gpt2";
    case model::Family::Bloom: return "bloom";
    case model::Family::Falcon: return "falcon";
    case model::Family::GptNeox: return "gptneox";
    case model::Family::Opt: break;
  }
  throw Error(std::string("--format gguf: llama.cpp has no ") + model::familyName(cfg.family) +
              " architecture, so no GGUF file of this model would load; export --format hf-fp16 or gptq for "
              "transformers/AutoGPTQ instead");
}

GgufVocab checkGgufExport(const QuantArtifact& a, const ExportOptions& o, const model::ModelConfig& cfg) {
  parseBaseType(effectiveGgufType(a, o));
  const std::string arch = ggufArchitecture(cfg);
  auto refuse = [&](const std::string& what) {
    throw Error("--format gguf: llama.cpp's " + arch + " architecture " + what);
  };
  if (!cfg.attention.vanilla()) refuse("has no clipped-softmax or gated attention (the model's quantscope_attention)");
  const bool rope = cfg.family == model::Family::Llama || cfg.family == model::Family::Falcon ||
                    cfg.family == model::Family::GptNeox;
  if (rope && cfg.ropeScaling.type != model::RopeScaling::Type::None &&
      (cfg.family != model::Family::Llama || cfg.ropeScaling.type != model::RopeScaling::Type::Linear))
    refuse("is written with linear rope scaling (LLaMA) or none; this model's rope_scaling is not written yet");
  switch (cfg.family) {
    case model::Family::Gpt2:
      if (cfg.scaleAttnByInverseLayerIdx || !cfg.scaleAttnWeights)
        refuse("scales attention by 1/sqrt(head_dim) only (this model sets scale_attn_by_inverse_layer_idx or "
               "scale_attn_weights false)");
      if (cfg.activation != model::Activation::GeluTanh && cfg.activation != model::Activation::Gelu)
        refuse("uses GELU in the MLP; this model's activation_function is another");
      break;
    case model::Family::Bloom:
      if (cfg.residualPostLayerNorm) refuse("adds the residual before the norm (apply_residual_connection_post_layernorm)");
      break;
    case model::Family::Falcon:
      if (!cfg.useParallelResidual) refuse("runs attention and MLP in parallel (this model has parallel_attn false)");
      if (cfg.attentionBias) refuse("has no projection biases (this model has bias true)");
      break;
    case model::Family::GptNeox:
      if (!cfg.attentionBias) refuse("needs attention biases (this model has attention_bias false)");
      break;
    default: break;
  }
  return ggufVocab(a.modelPath, cfg);
}

namespace {

// The "tokenizer.ggml.*" keys, padded to the model's vocab_size with unused pieces (as convert does).
void writeVocab(io::GgufWriter& w, GgufVocab& v, const QuantArtifact& a, const model::ModelConfig& cfg) {
  const size_t have = v.llama ? v.llama->tokens.size() : v.bpe->tokens.size();
  if (static_cast<int64_t>(have) > cfg.vocabSize)
    throw fileError(a.modelPath, "the tokenizer has " + std::to_string(have) + " pieces but the model's vocab_size is " +
                                     std::to_string(cfg.vocabSize));
  std::vector<std::string>& tokens = v.llama ? v.llama->tokens : v.bpe->tokens;
  std::vector<io::PieceType>& types = v.llama ? v.llama->types : v.bpe->types;
  for (auto i = static_cast<int64_t>(have); i < cfg.vocabSize; ++i) {
    tokens.push_back("[PAD" + std::to_string(i) + "]");
    types.push_back(io::PieceType::Unused);
    if (v.llama) v.llama->scores.push_back(0.0f);
  }
  std::vector<int32_t> typeIds;
  for (io::PieceType t : types) typeIds.push_back(static_cast<int32_t>(t));
  std::optional<int32_t> bos, eos, unk;
  bool addBos = false, addEos = false;
  if (v.llama) {
    w.setString("tokenizer.ggml.model", "llama");
    w.setStringArray("tokenizer.ggml.tokens", tokens);
    w.setF32Array("tokenizer.ggml.scores", v.llama->scores);
    w.setI32Array("tokenizer.ggml.token_type", typeIds);
    bos = v.llama->bosId, eos = v.llama->eosId, unk = v.llama->unkId;
    addBos = v.llama->addBos, addEos = v.llama->addEos;
  } else {
    w.setString("tokenizer.ggml.model", "gpt2");
    w.setString("tokenizer.ggml.pre", v.bpe->pre);
    w.setStringArray("tokenizer.ggml.tokens", tokens);
    w.setI32Array("tokenizer.ggml.token_type", typeIds);
    w.setStringArray("tokenizer.ggml.merges", v.bpe->merges);
    bos = v.bpe->bosId, eos = v.bpe->eosId, unk = v.bpe->unkId;
    addBos = v.bpe->addBos, addEos = v.bpe->addEos;
  }
  if (bos) w.setU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(*bos));
  if (eos) w.setU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(*eos));
  if (unk) w.setU32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(*unk));
  w.setBool("tokenizer.ggml.add_bos_token", addBos);
  w.setBool("tokenizer.ggml.add_eos_token", addEos);
}

// "<arch>.*" hyper-parameters as convert_hf_to_gguf.py writes them for each architecture.
void writeHyperParameters(io::GgufWriter& w, const std::string& arch, const model::ModelConfig& cfg) {
  auto u32 = [&](const char* k, int64_t v) { w.setU32(arch + "." + k, static_cast<uint32_t>(v)); };
  auto f32 = [&](const char* k, double v) { w.setF32(arch + "." + k, static_cast<float>(v)); };
  const int64_t headDim = cfg.headDim > 0 ? cfg.headDim : cfg.hiddenSize / cfg.numHeads;
  u32("vocab_size", cfg.vocabSize);
  u32("context_length", cfg.maxPositions > 0 ? cfg.maxPositions : 2048);  // BLOOM (ALiBi) has no limit
  u32("embedding_length", cfg.hiddenSize);
  u32("block_count", cfg.numLayers);
  u32("feed_forward_length", cfg.intermediateSize);
  u32("attention.head_count", cfg.numHeads);
  u32("attention.head_count_kv", cfg.numKvHeads);
  if (arch == "llama") {
    u32("rope.dimension_count", headDim);
    if (headDim * cfg.numHeads != cfg.hiddenSize) {
      u32("attention.key_length", headDim);
      u32("attention.value_length", headDim);
    }
    f32("attention.layer_norm_rms_epsilon", cfg.normEps);
    f32("rope.freq_base", cfg.ropeTheta);
    if (cfg.ropeScaling.type == model::RopeScaling::Type::Linear) {
      w.setString("llama.rope.scaling.type", "linear");
      f32("rope.scaling.factor", cfg.ropeScaling.factor);
    }
    return;
  }
  f32("attention.layer_norm_epsilon", cfg.normEps);
  if (arch == "falcon" || arch == "gptneox") f32("rope.freq_base", cfg.ropeTheta);
  if (arch == "gptneox") {
    u32("rope.dimension_count", cfg.rotaryDim > 0 ? cfg.rotaryDim : static_cast<int64_t>(headDim * cfg.rotaryPct));
    w.setBool("gptneox.use_parallel_residual", cfg.useParallelResidual);
  }
}

}  // namespace

void writeGgufExport(const QuantArtifact& a, const ExportOptions& o, const model::ModelConfig& cfg,
                     GgufVocab vocab, const std::vector<GgufSourceTensor>& sourceTensors, ExportReport& rep,
                     jobs::Progress& progress, bool plan) {
  const BaseType& base = parseBaseType(effectiveGgufType(a, o));
  const std::string arch = ggufArchitecture(cfg);
  // A run on a llama.cpp grid (quantize --target gguf:T) has its codes written as they are; under a
  // mix target (gguf_mix) each site is on the grid of the type the mix gives it.
  const QuantizeConfig runCfg = parseQuantizeConfig(a.configYaml, "run config");
  const std::string mix = runCfg.ggufMix;
  const std::string targetName = mix.empty() ? gridTargetType(runCfg.layer.spec) : mix;
  const uint32_t target = targetName.empty() ? 0 : parseBaseType(gridTargetType(runCfg.layer.spec)).type;
  int exactSites = 0, reroundedSites = 0;

  // The tensors under their GGUF names (buffers such as GPT-2's attention mask dropped); NeoX's
  // llama.cpp graph needs output.weight even where the embedding is tied.
  struct Named {
    std::string gguf;
    const GgufSourceTensor* src;
  };
  std::vector<Named> tensors;
  const GgufSourceTensor* embedding = nullptr;
  bool hasOutput = false;
  for (const auto& t : sourceTensors) {
    if (io::isHfBufferTensor(t.hfName)) continue;
    const std::string g = io::hfToGgufName(t.hfName, arch);
    if (g.empty())
      throw Error("--format gguf: tensor '" + t.hfName + "' has no place in llama.cpp's " + arch + " layout");
    if (arch == "falcon" && str::endsWith(g, ".bias") && g.rfind("blk.", 0) == 0 && g.find("_norm") == std::string::npos)
      throw Error("--format gguf: llama.cpp's Falcon has no projection biases, and this run has '" + t.hfName +
                  "' (OS+ shifting adds them): quantize with --no-shift, or export --format hf-fp16");
    if (g == "token_embd.weight") embedding = &t;
    hasOutput = hasOutput || g == "output.weight";
    tensors.push_back({g, &t});
  }
  GgufSourceTensor outputCopy;
  if (arch == "gptneox" && !hasOutput && embedding) {
    outputCopy = *embedding;
    outputCopy.site.clear();
    tensors.push_back({"output.weight", &outputCopy});
    hasOutput = true;
  }

  std::unique_ptr<io::GgufWriter> w = plan ? std::make_unique<io::GgufWriter>(io::GgufWriter::Plan{}, o.outDir)
                                           : std::make_unique<io::GgufWriter>(o.outDir, o.force);
  const std::string name = std::filesystem::path(a.modelPath).filename().string();
  w->setString("general.architecture", arch);
  w->setString("general.name", name);
  w->setU32("general.file_type", base.ftype);
  w->setU32("general.quantization_version", 2);
  w->setString("quantscope.export", "method " + a.method + " w" + std::to_string(a.bits) +
                                        (a.groupSize > 0 ? " g" + std::to_string(a.groupSize) : "") + ", migration " +
                                        a.migration + (o.runId > 0 ? ", run " + std::to_string(o.runId) : ""));
  writeHyperParameters(*w, arch, cfg);
  writeVocab(*w, vocab, a, cfg);

  const bool tied = !hasOutput;
  // llama.cpp's LLaMA-2-70B (80 layers, grouped kv heads): attn_v gets a step more.
  const bool attnVMoreBits = attnVMoreBitsOf(cfg);
  // What differs from the base type, grouped by reason, for the report (and the plan).
  std::map<std::string, std::vector<std::string>> changed;
  std::map<std::string, int> perType;
  int64_t tensorBytes = 0;
  double errSq = 0, weightSq = 0;  // re-rounding: sum (q - w)^2 and sum w^2 (the producers run in commit)
  size_t done = 0;
  const int64_t heads = cfg.numHeads, kvHeads = cfg.numKvHeads;
  for (const auto& [g, src] : tensors) {
    const GgufSourceTensor& t = *src;
    // GPT-2's Conv1D matrices are [in, out] in Hugging Face's files; GGUF rows are output features.
    const bool transposed = io::ggufHfTransposed(arch, g) && t.shape.size() == 2;
    const std::vector<int64_t> shape = transposed ? std::vector<int64_t>{t.shape[1], t.shape[0]} : t.shape;
    std::string why;
    uint32_t type = ggufTensorType(base.name, g, shape, tied, static_cast<int>(cfg.numLayers), attnVMoreBits, &why,
                                   gqaOf(cfg), arch);
    if (!why.empty()) why += ", as llama-quantize assigns it";
    uint32_t siteTarget = target;
    if (!mix.empty() && !t.site.empty()) {
      const uint32_t m = mixSiteType(mix, g, shape, cfg, arch);
      if (isGridTargetType(io::ggmlTypeTraits(m).name)) siteTarget = m;  // the grid ggufMixSiteSpecs gave this site
    }
    const bool exact = target != 0 && !t.site.empty() && type == siteTarget;
    if (target != 0 && t.site.empty() && shape.size() >= 2 && g != "position_embd.weight") {
      // Matrices the run did not quantize (embedding, output layer) stay as it evaluated them.
      type = t.dtype == at::kHalf ? io::ggml::F16 : t.dtype == at::kBFloat16 ? io::ggml::BF16 : io::ggml::F32;
      why = std::string("kept as the run evaluated it (QuantScope did not quantize it; llama-quantize would round "
                        "it)");
    }
    if (!t.site.empty() && target != 0) ++(exact ? exactSites : reroundedSites);
    if (!why.empty()) changed[std::string(io::ggmlTypeTraits(type).name) + ": " + why].push_back(g);
    ++perType[io::ggmlTypeTraits(type).name];
    int64_t rows = 1;
    for (size_t d = 0; d + 1 < shape.size(); ++d) rows *= shape[d];
    tensorBytes += rows * static_cast<int64_t>(io::ggmlRowBytes(type, shape.back()));
    auto toRows = [arch, g = g, heads, kvHeads](const at::Tensor& x) {
      return io::toGgufRows(arch, g, x, heads, kvHeads);
    };
    w->addTensor(g, type, shape, [&, g = g, type, rows, exact, transposed, toRows, site = t.site, make = t.make,
                                   hfShape = t.shape, shape](uint8_t* dst) {
      progress.checkCancel();
      const int64_t cols = shape.back();
      if (exact) {
        writeGridBlocks(a, site, type, toRows, rows, cols, dst);
      } else {
        at::Tensor x = make().to(at::kFloat);
        if (x.sizes().vec() != hfShape) throw Error("--format gguf: tensor '" + g + "' changed shape while exporting");
        if (transposed) x = x.t();
        x = toRows(x).contiguous();
        io::ggmlQuantizeRows(type, x.data_ptr<float>(), rows, cols, dst);
        if (!isFloatType(type)) {
          at::Tensor back = at::empty_like(x);
          io::ggmlDequantizeRows(type, dst, rows, cols, back.data_ptr<float>());
          errSq += (back - x).pow(2).sum().item<double>();
          weightSq += x.pow(2).sum().item<double>();
        }
      }
      progress.update(static_cast<double>(++done) / static_cast<double>(tensors.size() + 1), "gguf " + g);
    });
  }
  w->commit();

  rep.files = {std::filesystem::path(o.outDir).filename().string()};
  rep.fileBytes = {static_cast<int64_t>(w->fileBytes())};
  rep.totalBytes = static_cast<int64_t>(w->fileBytes());
  rep.tensorBytes = tensorBytes;
  rep.dirExists = w->pathExists();
  std::string counts;
  for (const auto& [type, n] : perType) counts += (counts.empty() ? "" : ", ") + type + " " + std::to_string(n);
  rep.notes.push_back("GGUF " + std::string(base.name) + " (llama.cpp's " + arch + " layout, " +
                      (vocab.llama ? "SentencePiece vocabulary of " + std::to_string(vocab.llama->tokens.size())
                                   : "byte-level BPE vocabulary (pre-tokenizer " + vocab.bpe->pre + ") of " +
                                         std::to_string(vocab.bpe->tokens.size())) +
                      " pieces): tensors by type: " + counts);
  if (arch != "llama" && cfg.activation == model::Activation::Gelu)
    rep.notes.push_back("llama.cpp computes the MLP's GELU with the tanh approximation (the model uses the exact "
                        "erf GELU): logits differ by about 1e-3 from QuantScope's");
  if (outputCopy.make)
    rep.notes.push_back("output.weight written as a copy of the tied embedding (llama.cpp's " + arch + " needs it)");
  for (const auto& [reason, names] : changed)
    rep.notes.push_back(reason + " (" + std::to_string(names.size()) + ": " + names.front() +
                        (names.size() > 1 ? ", ..." : "") + ")");
  if (cfg.slidingWindow > 0 && cfg.slidingWindow < cfg.maxPositions)
    rep.notes.push_back("llama.cpp's llama architecture attends without the sliding window of " +
                        std::to_string(cfg.slidingWindow) + " tokens (as convert_hf_to_gguf.py writes Mistral)");
  if (exactSites > 0)
    rep.notes.push_back(std::to_string(exactSites) + " quantized layers written from the run's own " + targetName +
                        " codes and scales (quantize --target gguf:" + targetName +
                        "): the file holds exactly the codes and scales QuantScope evaluated" +
                        (target == io::ggml::Q4_K || target == io::ggml::Q5_K
                             ? std::string(" (llama.cpp computes scale * q - minimum, QuantScope (q - minimum / "
                                           "scale) * scale: the same weights to float rounding)")
                             : std::string()));
  if (!isFloatType(base.type) && a.bits < 16 && (target == 0 || reroundedSites > 0))
    rep.notes.push_back("the run's " + std::to_string(a.bits) + "-bit weights" +
                        (target != 0 ? " of " + std::to_string(reroundedSites) + " layers" : std::string()) +
                        " are rounded again onto " + base.name + "'s grids; quantize with --target gguf:Q4_0 (Q5_0, "
                        "Q8_0, Q4_K, Q5_K) and export that type, or export F32, to keep exactly the weights "
                        "QuantScope evaluated");
  if (!plan && weightSq > 0) {
    char rel[32];
    std::snprintf(rel, sizeof rel, "%.3g", std::sqrt(errSq / weightSq));
    rep.notes.push_back(std::string("block-quantized tensors differ from the exported model's weights by ") + rel +
                        " (relative, Frobenius)");
  }
}

}  // namespace qs::algo
