// The byte-level BPE vocabulary as GGUF's "gpt2" tokenizer model stores it: written from a
// tokenizer.json / vocab.json + merges.txt tokenizer, read back into the same BPE pipeline.
// llama.cpp names the pre-tokenizer (tokenizer.ggml.pre) instead of storing its regex; the names
// here are the ones whose regex QuantScope's tokenizers run ("gpt-2", "llama-bpe", "bloom").
#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/io/tokenizer/hf_bpe_tokenizer.h"
#include "core/io/tokenizer/regex_splitter.h"
#include "core/util/error.h"

namespace qs::io {
namespace {

// LLaMA-3's Split pattern as its tokenizer.json writes it, and BLOOM's.
const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kBloomPattern = " ?[^(\\s|[.,!?\xE2\x80\xA6\xE3\x80\x82\xEF\xBC\x8C\xE3\x80\x81\xE0\xA5\xA4\xDB\x94\xD8\x8C])]+";

bool isByteLevelWithoutRegex(const PreTokenizerStep& s) {
  return s.kind == PreTokenizerStep::Kind::ByteLevel && !s.regex && !s.addPrefixSpace;
}

// llama.cpp's name for a pre-tokenizer chain; "" when it is none QuantScope knows.
std::string preName(const std::vector<PreTokenizerStep>& steps, bool ignoreMerges) {
  if (steps.size() == 1 && steps[0].kind == PreTokenizerStep::Kind::ByteLevel && !steps[0].addPrefixSpace &&
      steps[0].pattern == RegexSplitter::gpt2Pattern())
    return "gpt-2";
  if (steps.size() == 2 && steps[0].kind == PreTokenizerStep::Kind::Split && steps[0].keepGaps &&
      isByteLevelWithoutRegex(steps[1])) {
    if (steps[0].pattern == kLlama3Pattern && ignoreMerges) return "llama-bpe";
    if (steps[0].pattern == kBloomPattern) return "bloom";
  }
  return "";
}

std::vector<PreTokenizerStep> preSteps(const std::string& pre, const std::string& source) {
  std::vector<PreTokenizerStep> steps;
  PreTokenizerStep byteLevel;
  byteLevel.kind = PreTokenizerStep::Kind::ByteLevel;
  if (pre == "gpt-2") {
    byteLevel.pattern = RegexSplitter::gpt2Pattern();
    byteLevel.regex = std::make_shared<RegexSplitter>(byteLevel.pattern, source);
  } else {
    PreTokenizerStep split;
    split.kind = PreTokenizerStep::Kind::Split;
    split.pattern = pre == "bloom" ? kBloomPattern : kLlama3Pattern;
    split.regex = std::make_shared<RegexSplitter>(split.pattern, source);
    steps.push_back(std::move(split));
  }
  steps.push_back(std::move(byteLevel));
  return steps;
}

}  // namespace

std::optional<BpeVocab> Tokenizer::byteLevelBpeVocab() const { return std::nullopt; }

std::optional<BpeVocab> HfBpeTokenizer::byteLevelBpeVocab() const {
  if (!byteLevel_) return std::nullopt;
  BpeVocab v;
  v.tokens.resize(static_cast<size_t>(vocabSize_));
  v.types.assign(static_cast<size_t>(vocabSize_), PieceType::Normal);
  for (int32_t id = 0; id < cfg_.model.size(); ++id) v.tokens[static_cast<size_t>(id)] = cfg_.model.piece(id);
  for (const auto& t : cfg_.addedTokens) {
    if (t.id < 0 || t.id >= vocabSize_) continue;
    v.tokens[static_cast<size_t>(t.id)] = t.content;
    v.types[static_cast<size_t>(t.id)] = t.special ? PieceType::Control : PieceType::UserDefined;
  }
  for (size_t i = 0; i < v.tokens.size(); ++i)  // ids the vocabulary skips
    if (v.tokens[i].empty()) {
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";
      v.types[i] = PieceType::Unused;
    }
  for (const auto& [a, b] : cfg_.model.mergesByRank()) v.merges.push_back(a + " " + b);
  v.pre = preName(cfg_.preTokenizer, cfg_.ignoreMerges);
  v.bosId = cfg_.bosId;
  v.eosId = cfg_.eosId;
  v.unkId = cfg_.unkId;
  v.addBos = cfg_.bosId && !cfg_.prefix.empty() && cfg_.prefix.front() == *cfg_.bosId;
  v.addEos = cfg_.eosId && !cfg_.suffix.empty() && cfg_.suffix.back() == *cfg_.eosId;
  return v;
}

BpeVocab bpeVocabFromGgufMetadata(const nlohmann::json& md, const std::string& source) {
  BpeVocab v;
  try {
    const auto tokens = md.find("tokenizer.ggml.tokens");
    if (tokens == md.end() || !tokens->is_array() || tokens->empty())
      throw fileError(source, "missing or empty \"tokenizer.ggml.tokens\"");
    v.tokens = tokens->get<std::vector<std::string>>();
    const auto merges = md.find("tokenizer.ggml.merges");
    if (merges == md.end() || !merges->is_array())
      throw fileError(source, "\"tokenizer.ggml.merges\" is missing (a \"gpt2\" tokenizer needs its merges)");
    v.merges = merges->get<std::vector<std::string>>();
    if (const auto t = md.find("tokenizer.ggml.token_type"); t != md.end() && t->is_array())
      for (const auto& x : *t) v.types.push_back(static_cast<PieceType>(x.get<int32_t>()));
    if (v.types.empty()) v.types.assign(v.tokens.size(), PieceType::Normal);
    if (v.types.size() != v.tokens.size())
      throw fileError(source, "\"tokenizer.ggml.token_type\" and \"tokenizer.ggml.tokens\" differ in length");
    v.pre = md.value("tokenizer.ggml.pre", std::string());
    auto optId = [&](const char* k) -> std::optional<int32_t> {
      const auto it = md.find(std::string("tokenizer.ggml.") + k);
      if (it == md.end()) return std::nullopt;
      const auto id = it->get<int64_t>();
      if (id < 0 || id >= static_cast<int64_t>(v.tokens.size()))
        throw fileError(source, std::string("tokenizer.ggml.") + k + " " + std::to_string(id) + " is outside the vocabulary");
      return static_cast<int32_t>(id);
    };
    v.bosId = optId("bos_token_id");
    v.eosId = optId("eos_token_id");
    v.unkId = optId("unknown_token_id");
    v.addBos = md.value("tokenizer.ggml.add_bos_token", false);
    v.addEos = md.value("tokenizer.ggml.add_eos_token", false);
  } catch (const nlohmann::json::exception& e) {
    throw fileError(source, std::string("malformed \"gpt2\" vocabulary (") + e.what() + ")");
  }
  if (v.pre != "gpt-2" && v.pre != "llama-bpe" && v.pre != "llama3" && v.pre != "llama-v3" && v.pre != "bloom")
    throw fileError(source, "tokenizer.ggml.pre \"" + v.pre + "\": QuantScope runs the gpt-2, llama-bpe and bloom "
                            "pre-tokenizers only; open the model's Hugging Face folder (tokenizer.json) instead");
  return v;
}

std::unique_ptr<Tokenizer> makeBpeVocabTokenizer(const BpeVocab& v, const std::string& source, const std::string& kind) {
  HfBpeConfig cfg;
  cfg.source = source;
  cfg.kindLabel = kind;
  std::unordered_map<std::string, int32_t> vocab;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const PieceType t = i < v.types.size() ? v.types[i] : PieceType::Normal;
    const auto id = static_cast<int32_t>(i);
    if (t == PieceType::Control || t == PieceType::UserDefined)
      cfg.addedTokens.push_back({v.tokens[i], id, t == PieceType::Control, false, false});
    vocab.emplace(v.tokens[i], id);
  }
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(v.merges.size());
  for (size_t r = 0; r < v.merges.size(); ++r) {
    const size_t sp = v.merges[r].find(' ', 1);
    if (sp == std::string::npos)
      throw fileError(source, "tokenizer.ggml.merges[" + std::to_string(r) + "] \"" + v.merges[r] + "\" is not \"a b\"");
    merges.emplace_back(v.merges[r].substr(0, sp), v.merges[r].substr(sp + 1));
  }
  cfg.model = BpeModel(std::move(vocab), merges, source);
  cfg.ignoreMerges = v.pre == "llama-bpe" || v.pre == "llama3" || v.pre == "llama-v3";
  cfg.preTokenizer = preSteps(v.pre == "llama3" || v.pre == "llama-v3" ? "llama-bpe" : v.pre, source);
  DecoderStep dec;
  dec.kind = DecoderStep::Kind::ByteLevel;
  cfg.decoder.push_back(dec);
  cfg.bosId = v.bosId;
  cfg.eosId = v.eosId;
  cfg.unkId = v.unkId;
  if (v.addBos && v.bosId) cfg.prefix.push_back(*v.bosId);
  if (v.addEos && v.eosId) cfg.suffix.push_back(*v.eosId);
  return std::make_unique<HfBpeTokenizer>(std::move(cfg), TokenizerOptions{});
}

}  // namespace qs::io
