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
      {"Q3_K_S", io::ggml::Q3_K, 11}, {"Q2_K", io::ggml::Q2_K, 10}};
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

// The SentencePiece vocabulary GGUF's "llama" tokenizer stores: the tokenizer QuantScope uses for
// the model when it is one, else the folder's tokenizer.model.
io::LlamaVocab ggufVocab(const std::string& modelPath) {
  const auto tok = io::loadTokenizer(modelPath);
  if (tok->llamaVocab()) return *tok->llamaVocab();
  const std::string spm = fs::join(modelPath, "tokenizer.model");
  if (fs::isDirectory(modelPath) && fs::exists(spm)) {
    const auto sp = io::loadSentencePieceModel(spm);
    if (sp->llamaVocab()) return *sp->llamaVocab();
  }
  // A SentencePiece-style BPE tokenizer.json (LLaMA-2, Mistral without tokenizer.model).
  const std::string hf = fs::join(modelPath, "tokenizer.json");
  if (fs::isDirectory(modelPath) && fs::exists(hf)) {
    try {
      io::LlamaVocab v = io::llamaVocabFromHfBpeJson(hf);
      if (const auto b = tok->bosId()) v.bosId = *b;
      if (const auto e = tok->eosId()) v.eosId = *e;
      v.addBos = !tok->encode("", true).empty();  // the tokenizer's own BOS choice (tokenizer_config.json)
      return v;
    } catch (const Error&) {
      // not SentencePiece-style: the message below
    }
  }
  throw fileError(modelPath, "--format gguf writes SentencePiece (llama) vocabularies (tokenizer.model, a "
                             "SentencePiece-style tokenizer.json, tok*_vocab.json or a GGUF source); this model's "
                             "tokenizer is " + tok->kind() + ", which is not written yet");
}

// llama.cpp orders each head's rotary pairs interleaved; Hugging Face keeps the halves apart.
at::Tensor toGgufRopeOrder(const at::Tensor& t, int64_t heads) {
  std::vector<int64_t> split = {heads, 2, t.size(0) / heads / 2};
  for (int64_t d = 1; d < t.dim(); ++d) split.push_back(t.size(d));
  return t.reshape(split).transpose(1, 2).reshape(t.sizes()).contiguous();
}

// The run's quantize spec (its config as stored with the artifact).
quant::QuantSpec runSpec(const QuantArtifact& a) { return parseQuantizeConfig(a.configYaml, "run config").layer.spec; }

// Q4_0/Q5_0/Q8_0 blocks straight from the run's grid of `site`: the codes and fp16 scales the
// method chose (quantize --target gguf:T), rows in llama.cpp's q/k order.
void writeGridBlocks(const QuantArtifact& a, const std::string& site, uint32_t type, int64_t heads, int64_t rows,
                     int64_t cols, uint8_t* dst) {
  const LayerQuantResult g = artifactGrid(a, site);
  if (g.outlierIndices.defined() && g.outlierIndices.numel() > 0)
    throw Error("--format gguf: site '" + site + "' keeps full-precision outliers, which a GGUF block cannot hold");
  const int64_t groups = g.scales.size(1);
  const float zero = type == io::ggml::Q8_0 ? 128.f : type == io::ggml::Q5_0 ? 16.f : 8.f;
  if (naturalGroupSize(g.gIdx, groups) != 32 || groups * 32 != cols || !at::equal(g.zeros, at::full_like(g.zeros, zero)))
    throw Error("--format gguf: site '" + site + "' is not on " + io::ggmlTypeTraits(type).name +
                "'s grid (blocks of 32 in column order, zero " + std::to_string(static_cast<int>(zero)) + ")");
  at::Tensor codes = expandCodes(g.codes).to(at::kFloat).contiguous();
  at::Tensor scales = g.scales.to(at::kFloat).contiguous();
  if (heads > 0) {
    codes = toGgufRopeOrder(codes, heads);
    scales = toGgufRopeOrder(scales, heads);
  }
  io::ggmlEncodeBlocks(type, codes.data_ptr<float>(), scales.data_ptr<float>(), rows, cols, dst, "site '" + site + "'");
}

}  // namespace

uint32_t ggufTensorType(const std::string& ggufType, const std::string& name, const std::vector<int64_t>& shape,
                        bool tied, int layers, bool attnVMoreBits, std::string* why, int gqa) {
  if (why) why->clear();
  const BaseType& mix = parseBaseType(ggufType);
  const uint32_t base = mix.type;
  if (shape.size() < 2) return io::ggml::F32;  // norms and biases stay F32, as llama.cpp keeps them
  if (isFloatType(base)) return base;
  const auto cols = static_cast<uint64_t>(shape.back());
  const std::string m = mix.name;
  uint32_t t = base;
  if (name == "output.weight" || (tied && name == "token_embd.weight")) {
    if (cols % blockOf(base) != 0) t = io::ggml::Q8_0;
    else if (base != io::ggml::Q8_0) t = io::ggml::Q6_K;
    if (why && t != base) *why = "llama.cpp's type for the output layer";
  } else if (const int layer = blockIndex(name); layer >= 0) {
    const bool attnV = str::endsWith(name, ".attn_v.weight"), ffnDown = str::endsWith(name, ".ffn_down.weight");
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
      else if (m == "Q3_K_M") t = layer < layers / 16 ? Q5_K : Q4_K;
      else if (m == "Q3_K_L") t = Q5_K;
      else if ((m == "Q4_K_M" || m == "Q5_K_M") && useMoreBits(layer, layers)) t = Q6_K;
      else if (m == "Q4_K_S" && layer < layers / 8) t = Q5_K;
    } else if (attnOut) {
      if (m == "Q2_K") t = Q3_K;
      else if (m == "Q3_K_M") t = Q4_K;
      else if (m == "Q3_K_L") t = Q5_K;
    }
    if (why && t != base)
      *why = "llama-quantize's " + m + " mix gives " + (attnV ? "attn_v" : ffnDown ? "ffn_down" : "attn_output") +
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

std::string effectiveGgufType(const QuantArtifact& a, const ExportOptions& o) {
  if (!o.ggufType.empty()) return o.ggufType;
  const std::string target = gridTargetType(runSpec(a));
  return target.empty() ? "F16" : target;
}

io::LlamaVocab checkGgufExport(const QuantArtifact& a, const ExportOptions& o, const model::ModelConfig& cfg) {
  parseBaseType(effectiveGgufType(a, o));
  if (cfg.family != model::Family::Llama)
    throw Error(std::string("--format gguf writes LLaMA-family models (llama, mistral) so far; this model is ") +
                model::familyName(cfg.family) + " (export --format hf-fp16 and convert that folder with llama.cpp's "
                "convert_hf_to_gguf.py)");
  if (cfg.ropeScaling.type != model::RopeScaling::Type::None && cfg.ropeScaling.type != model::RopeScaling::Type::Linear)
    throw Error("--format gguf: the model's rope_scaling (dynamic or llama3) is not written yet; only linear scaling is");
  return ggufVocab(a.modelPath);
}

void writeGgufExport(const QuantArtifact& a, const ExportOptions& o, const model::ModelConfig& cfg,
                     io::LlamaVocab vocab, const std::vector<GgufSourceTensor>& tensors, ExportReport& rep,
                     jobs::Progress& progress, bool plan) {
  const BaseType& base = parseBaseType(effectiveGgufType(a, o));
  // A run on a llama.cpp grid (quantize --target gguf:T) has its codes written as they are.
  const std::string targetName = gridTargetType(runSpec(a));
  const uint32_t target = targetName.empty() ? 0 : parseBaseType(targetName).type;
  int exactSites = 0, reroundedSites = 0;
  if (static_cast<int64_t>(vocab.tokens.size()) > cfg.vocabSize)
    throw fileError(a.modelPath, "the tokenizer has " + std::to_string(vocab.tokens.size()) +
                                     " pieces but the model's vocab_size is " + std::to_string(cfg.vocabSize));
  // Embedding rows beyond the tokenizer (padded vocabularies) get unused pieces, as convert does.
  for (auto i = static_cast<int64_t>(vocab.tokens.size()); i < cfg.vocabSize; ++i) {
    vocab.tokens.push_back("[PAD" + std::to_string(i) + "]");
    vocab.scores.push_back(0.0f);
    vocab.types.push_back(io::PieceType::Unused);
  }

  std::unique_ptr<io::GgufWriter> w = plan ? std::make_unique<io::GgufWriter>(io::GgufWriter::Plan{}, o.outDir)
                                           : std::make_unique<io::GgufWriter>(o.outDir, o.force);
  const int64_t headDim = cfg.headDim > 0 ? cfg.headDim : cfg.hiddenSize / cfg.numHeads;
  const std::string name = std::filesystem::path(a.modelPath).filename().string();
  w->setString("general.architecture", "llama");
  w->setString("general.name", name);
  w->setU32("general.file_type", base.ftype);
  w->setU32("general.quantization_version", 2);
  w->setString("quantscope.export", "method " + a.method + " w" + std::to_string(a.bits) +
                                        (a.groupSize > 0 ? " g" + std::to_string(a.groupSize) : "") + ", migration " +
                                        a.migration + (o.runId > 0 ? ", run " + std::to_string(o.runId) : ""));
  w->setU32("llama.vocab_size", static_cast<uint32_t>(cfg.vocabSize));
  w->setU32("llama.context_length", static_cast<uint32_t>(cfg.maxPositions));
  w->setU32("llama.embedding_length", static_cast<uint32_t>(cfg.hiddenSize));
  w->setU32("llama.block_count", static_cast<uint32_t>(cfg.numLayers));
  w->setU32("llama.feed_forward_length", static_cast<uint32_t>(cfg.intermediateSize));
  w->setU32("llama.rope.dimension_count", static_cast<uint32_t>(headDim));
  w->setU32("llama.attention.head_count", static_cast<uint32_t>(cfg.numHeads));
  w->setU32("llama.attention.head_count_kv", static_cast<uint32_t>(cfg.numKvHeads));
  if (headDim * cfg.numHeads != cfg.hiddenSize) {
    w->setU32("llama.attention.key_length", static_cast<uint32_t>(headDim));
    w->setU32("llama.attention.value_length", static_cast<uint32_t>(headDim));
  }
  w->setF32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(cfg.normEps));
  w->setF32("llama.rope.freq_base", static_cast<float>(cfg.ropeTheta));
  if (cfg.ropeScaling.type == model::RopeScaling::Type::Linear) {
    w->setString("llama.rope.scaling.type", "linear");
    w->setF32("llama.rope.scaling.factor", static_cast<float>(cfg.ropeScaling.factor));
  }
  w->setString("tokenizer.ggml.model", "llama");
  w->setStringArray("tokenizer.ggml.tokens", vocab.tokens);
  w->setF32Array("tokenizer.ggml.scores", vocab.scores);
  std::vector<int32_t> types;
  for (io::PieceType t : vocab.types) types.push_back(static_cast<int32_t>(t));
  w->setI32Array("tokenizer.ggml.token_type", types);
  if (vocab.bosId) w->setU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(*vocab.bosId));
  if (vocab.eosId) w->setU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(*vocab.eosId));
  if (vocab.unkId) w->setU32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(*vocab.unkId));
  w->setBool("tokenizer.ggml.add_bos_token", vocab.addBos);
  w->setBool("tokenizer.ggml.add_eos_token", vocab.addEos);

  bool tied = true;
  for (const auto& t : tensors) tied = tied && t.hfName != "lm_head.weight";
  // llama.cpp's LLaMA-2-70B (80 layers, grouped kv heads): attn_v gets a step more.
  const bool attnVMoreBits = cfg.numLayers == 80 && cfg.numKvHeads != cfg.numHeads;
  // What differs from the base type, grouped by reason, for the report (and the plan).
  std::map<std::string, std::vector<std::string>> changed;
  std::map<std::string, int> perType;
  int64_t tensorBytes = 0;
  double errSq = 0, weightSq = 0;  // re-rounding: sum (q - w)^2 and sum w^2 (the producers run in commit)
  size_t done = 0;
  for (const auto& t : tensors) {
    const std::string g = io::hfToGgufName(t.hfName);
    if (g.empty())
      throw Error("--format gguf: tensor '" + t.hfName + "' has no place in llama.cpp's LLaMA layout");
    std::string why;
    uint32_t type = ggufTensorType(base.name, g, t.shape, tied, static_cast<int>(cfg.numLayers), attnVMoreBits, &why,
                                   static_cast<int>(cfg.numHeads / std::max<int64_t>(1, cfg.numKvHeads)));
    if (!why.empty()) why += ", as llama-quantize assigns it";
    const bool exact = target != 0 && !t.site.empty() && type == target;
    if (target != 0 && t.site.empty() && t.shape.size() >= 2) {
      // Matrices the run did not quantize (embedding, output layer) stay as it evaluated them.
      type = t.dtype == at::kHalf ? io::ggml::F16 : t.dtype == at::kBFloat16 ? io::ggml::BF16 : io::ggml::F32;
      why = std::string("kept as the run evaluated it (QuantScope did not quantize it; llama-quantize would round "
                        "it)");
    }
    if (!t.site.empty() && target != 0) ++(exact ? exactSites : reroundedSites);
    if (!why.empty()) changed[std::string(io::ggmlTypeTraits(type).name) + ": " + why].push_back(g);
    ++perType[io::ggmlTypeTraits(type).name];
    int64_t rows = 1;
    for (size_t d = 0; d + 1 < t.shape.size(); ++d) rows *= t.shape[d];
    tensorBytes += rows * static_cast<int64_t>(io::ggmlRowBytes(type, t.shape.back()));
    const bool q = g.find(".attn_q.") != std::string::npos, k = g.find(".attn_k.") != std::string::npos;
    const int64_t heads = q ? cfg.numHeads : k ? cfg.numKvHeads : 0;
    w->addTensor(g, type, t.shape, [&, g, type, rows, heads, exact, site = t.site, make = t.make,
                                     shape = t.shape](uint8_t* dst) {
      progress.checkCancel();
      const int64_t cols = shape.back();
      if (exact) {
        writeGridBlocks(a, site, type, heads, rows, cols, dst);
      } else {
        at::Tensor x = make().to(at::kFloat).contiguous();
        if (x.sizes().vec() != shape) throw Error("--format gguf: tensor '" + g + "' changed shape while exporting");
        if (heads > 0) x = toGgufRopeOrder(x, heads);
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
  rep.notes.push_back("GGUF " + std::string(base.name) + " (llama.cpp's LLaMA layout, SentencePiece vocabulary of " +
                      std::to_string(vocab.tokens.size()) + " pieces): tensors by type: " + counts);
  for (const auto& [reason, names] : changed)
    rep.notes.push_back(reason + " (" + std::to_string(names.size()) + ": " + names.front() +
                        (names.size() > 1 ? ", ..." : "") + ")");
  if (cfg.slidingWindow > 0 && cfg.slidingWindow < cfg.maxPositions)
    rep.notes.push_back("llama.cpp's llama architecture attends without the sliding window of " +
                        std::to_string(cfg.slidingWindow) + " tokens (as convert_hf_to_gguf.py writes Mistral)");
  if (exactSites > 0)
    rep.notes.push_back(std::to_string(exactSites) + " quantized layers written from the run's own " + targetName +
                        " codes and fp16 block scales (quantize --target gguf:" + targetName +
                        "): the file holds exactly the weights QuantScope evaluated");
  if (!isFloatType(base.type) && a.bits < 16 && (target == 0 || reroundedSites > 0))
    rep.notes.push_back("the run's " + std::to_string(a.bits) + "-bit weights" +
                        (target != 0 ? " of " + std::to_string(reroundedSites) + " layers" : std::string()) +
                        " are rounded again onto " + base.name + "'s grids; quantize with --target gguf:Q4_0 (Q5_0, "
                        "Q8_0) and export that type, or export F32, to keep exactly the weights QuantScope "
                        "evaluated");
  if (!plan && weightSq > 0) {
    char rel[32];
    std::snprintf(rel, sizeof rel, "%.3g", std::sqrt(errSq / weightSq));
    rep.notes.push_back(std::string("block-quantized tensors differ from the exported model's weights by ") + rel +
                        " (relative, Frobenius)");
  }
}

}  // namespace qs::algo
