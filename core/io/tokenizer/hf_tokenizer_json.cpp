// tokenizer.json and vocab.json + merges.txt -> HfBpeConfig. Only the pieces the BPE models
// QuantScope targets use are understood; anything else is a qs::Error naming the file and
// the key, so a model with an unsupported tokenizer fails loudly instead of tokenizing wrong.
#include <sstream>

#include "core/io/tokenizer/hf_bpe_tokenizer.h"
#include "core/io/tokenizer/json_file.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"

namespace qs::io {

namespace {

using nlohmann::json;

const char* kMetaspace = "\xE2\x96\x81";

std::string typeOf(const json& j) { return j.is_object() ? j.value("type", std::string()) : std::string(); }

std::string regexEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

// {"String": "x"} or {"Regex": "..."} -> a PCRE2 pattern.
std::string patternOf(const json& p, const std::string& path, const std::string& where) {
  if (p.is_object() && p.contains("Regex")) return p["Regex"].get<std::string>();
  if (p.is_object() && p.contains("String")) return regexEscape(p["String"].get<std::string>());
  throw fileError(path, where + ".pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

std::string stringPattern(const json& p, const std::string& path, const std::string& where) {
  if (p.is_object() && p.contains("String")) return p["String"].get<std::string>();
  throw fileError(path, where + ".pattern: only {\"String\": ...} is supported here");
}

void parseNormalizer(const json& n, HfBpeConfig& cfg, const std::string& path) {
  if (n.is_null()) return;
  const std::string t = typeOf(n);
  if (t == "Sequence") {
    for (const auto& s : n.at("normalizers")) parseNormalizer(s, cfg, path);
  } else if (t == "Prepend") {
    cfg.normalizer.push_back({NormalizerStep::Kind::Prepend, {}, n.at("prepend").get<std::string>()});
  } else if (t == "Replace") {
    cfg.normalizer.push_back({NormalizerStep::Kind::Replace,
                              stringPattern(n.at("pattern"), path, "normalizer"),
                              n.at("content").get<std::string>()});
  } else if (t == "Lowercase") {
    cfg.normalizer.push_back({NormalizerStep::Kind::Lowercase, {}, {}});
  } else if (t == "NFC" || t == "NFKC" || t == "NFD" || t == "NFKD") {
    // No Unicode normalisation tables in this library; text that is already NFC (nearly
    // all of it) tokenizes the same.
    qs::log::warn(path + ": normalizer " + t + " is not applied (text is used as given)");
  } else {
    throw fileError(path, "normalizer type \"" + t + "\" is not supported");
  }
}

void parsePreTokenizer(const json& p, HfBpeConfig& cfg, const std::string& path) {
  if (p.is_null()) return;
  const std::string t = typeOf(p);
  PreTokenizerStep step;
  if (t == "Sequence") {
    for (const auto& s : p.at("pretokenizers")) parsePreTokenizer(s, cfg, path);
    return;
  } else if (t == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::ByteLevel;
    step.addPrefixSpace = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) {
      step.pattern = RegexSplitter::gpt2Pattern();
      step.regex = std::make_shared<RegexSplitter>(step.pattern, path);
    }
  } else if (t == "Split") {
    if (p.value("invert", false)) throw fileError(path, "pre_tokenizer Split with invert is not supported");
    const std::string behavior = p.value("behavior", std::string("Isolated"));
    if (behavior != "Isolated" && behavior != "Removed")
      throw fileError(path, "pre_tokenizer Split behavior \"" + behavior + "\" is not supported");
    step.pattern = patternOf(p.at("pattern"), path, "pre_tokenizer");
    step.regex = std::make_shared<RegexSplitter>(step.pattern, path);
    step.keepGaps = behavior == "Isolated";
  } else if (t == "Digits") {
    step.pattern = p.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+";
    step.regex = std::make_shared<RegexSplitter>(step.pattern, path);
  } else if (t == "WhitespaceSplit") {
    step.pattern = "\\S+";
    step.regex = std::make_shared<RegexSplitter>(step.pattern, path);
    step.keepGaps = false;
  } else if (t == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::Metaspace;
    step.replacement = p.value("replacement", std::string(kMetaspace));
    const std::string scheme = p.value("prepend_scheme", std::string());
    step.addPrefixSpace = scheme.empty() ? p.value("add_prefix_space", true) : scheme != "never";
    step.splitWords = p.value("split", true);
  } else {
    throw fileError(path, "pre_tokenizer type \"" + t + "\" is not supported");
  }
  cfg.preTokenizer.push_back(std::move(step));
}

void parseDecoder(const json& d, HfBpeConfig& cfg, const std::string& path) {
  if (d.is_null()) return;
  const std::string t = typeOf(d);
  DecoderStep step;
  if (t == "Sequence") {
    for (const auto& s : d.at("decoders")) parseDecoder(s, cfg, path);
    return;
  } else if (t == "ByteLevel") {
    step.kind = DecoderStep::Kind::ByteLevel;
  } else if (t == "Replace") {
    step.kind = DecoderStep::Kind::Replace;
    step.from = stringPattern(d.at("pattern"), path, "decoder");
    step.to = d.at("content").get<std::string>();
  } else if (t == "ByteFallback") {
    step.kind = DecoderStep::Kind::ByteFallback;
  } else if (t == "Fuse") {
    step.kind = DecoderStep::Kind::Fuse;
  } else if (t == "Strip") {
    step.kind = DecoderStep::Kind::Strip;
    step.from = d.at("content").get<std::string>();
    step.start = d.value("start", 0);
    step.stop = d.value("stop", 0);
  } else if (t == "Metaspace") {
    step.kind = DecoderStep::Kind::Metaspace;
    step.from = d.value("replacement", std::string(kMetaspace));
    const std::string scheme = d.value("prepend_scheme", std::string());
    step.addPrefixSpace = scheme.empty() ? d.value("add_prefix_space", true) : scheme != "never";
  } else {
    throw fileError(path, "decoder type \"" + t + "\" is not supported");
  }
  cfg.decoder.push_back(std::move(step));
}

// Looks a token up among the added tokens, then the vocabulary.
std::optional<int32_t> findToken(const HfBpeConfig& cfg, const std::string& piece) {
  for (const auto& t : cfg.addedTokens)
    if (t.content == piece) return t.id;
  return cfg.model.idOf(piece);
}

int32_t specialId(const HfBpeConfig& cfg, const json& proc, const std::string& name,
                  const std::string& path) {
  // TemplateProcessing lists the ids of each special token; fall back to the vocabulary.
  if (proc.contains("special_tokens") && proc["special_tokens"].contains(name)) {
    const auto& ids = proc["special_tokens"][name].at("ids");
    if (!ids.empty()) return ids[0].get<int32_t>();
  }
  if (auto id = findToken(cfg, name)) return *id;
  throw fileError(path, "post_processor names special token \"" + name + "\" that is not in the vocabulary");
}

void parsePostProcessor(const json& p, HfBpeConfig& cfg, const std::string& path) {
  if (p.is_null()) return;
  const std::string t = typeOf(p);
  if (t == "Sequence") {
    for (const auto& s : p.at("processors")) parsePostProcessor(s, cfg, path);
  } else if (t == "ByteLevel") {
    // Only adjusts offsets; ids are unchanged.
  } else if (t == "TemplateProcessing") {
    bool afterSequence = false;
    for (const auto& item : p.at("single")) {
      if (item.contains("Sequence")) {
        afterSequence = true;
      } else if (item.contains("SpecialToken")) {
        const int32_t id = specialId(cfg, p, item["SpecialToken"].at("id").get<std::string>(), path);
        (afterSequence ? cfg.suffix : cfg.prefix).push_back(id);
      }
    }
  } else if (t == "RobertaProcessing" || t == "BertProcessing") {
    cfg.prefix.push_back(p.at("cls").at(1).get<int32_t>());
    cfg.suffix.push_back(p.at("sep").at(1).get<int32_t>());
  } else {
    throw fileError(path, "post_processor type \"" + t + "\" is not supported");
  }
}

void pickBosEos(HfBpeConfig& cfg) {
  if (!cfg.prefix.empty()) cfg.bosId = cfg.prefix.front();
  if (!cfg.suffix.empty()) cfg.eosId = cfg.suffix.back();
  for (const char* name : {"<s>", "<|begin_of_text|>", "<|endoftext|>"})
    if (!cfg.bosId) cfg.bosId = findToken(cfg, name);
  for (const char* name : {"</s>", "<|end_of_text|>", "<|endoftext|>"})
    if (!cfg.eosId) cfg.eosId = findToken(cfg, name);
}

std::unordered_map<std::string, int32_t> parseVocab(const json& v, const std::string& path) {
  if (!v.is_object()) throw fileError(path, "vocab must be an object of piece -> id");
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(v.size());
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_number_integer()) throw fileError(path, "vocab entry \"" + it.key() + "\" is not an integer id");
    vocab.emplace(it.key(), it.value().get<int32_t>());
  }
  return vocab;
}

std::pair<std::string, std::string> splitMerge(const std::string& line, const std::string& path, size_t index) {
  const size_t sp = line.find(' ');
  if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
    throw fileError(path, "merge " + std::to_string(index) + " \"" + line + "\" is not two pieces separated by a space");
  return {line.substr(0, sp), line.substr(sp + 1)};
}

}  // namespace

std::unique_ptr<Tokenizer> loadHfTokenizerJson(const std::string& path, const TokenizerOptions& options) {
  const json j = readJsonFile(path);
  HfBpeConfig cfg;
  cfg.source = path;
  try {
    const json& m = j.at("model");
    const std::string type = m.value("type", std::string(m.contains("merges") ? "BPE" : ""));
    if (type != "BPE")
      throw fileError(path, "model.type \"" + type + "\" is not supported (BPE only; Unigram/WordPiece "
                            "models need tokenizer.model)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (m.contains(key) && m[key].is_string() && !m[key].get<std::string>().empty())
        throw fileError(path, std::string("model.") + key + " is not supported");
    std::vector<std::pair<std::string, std::string>> merges;
    const json& jm = m.at("merges");
    merges.reserve(jm.size());
    for (size_t i = 0; i < jm.size(); ++i) {
      if (jm[i].is_array() && jm[i].size() == 2)
        merges.emplace_back(jm[i][0].get<std::string>(), jm[i][1].get<std::string>());
      else
        merges.push_back(splitMerge(jm[i].get<std::string>(), path, i));
    }
    cfg.model = BpeModel(parseVocab(m.at("vocab"), path), merges, path);
    if (m.contains("unk_token") && m["unk_token"].is_string()) {
      cfg.unkId = cfg.model.idOf(m["unk_token"].get<std::string>());
      if (!cfg.unkId) throw fileError(path, "model.unk_token is not in the vocabulary");
    }
    cfg.fuseUnk = m.value("fuse_unk", false);
    cfg.byteFallback = m.value("byte_fallback", false);
    cfg.ignoreMerges = m.value("ignore_merges", false);

    if (j.contains("added_tokens"))
      for (const auto& a : j["added_tokens"]) {
        AddedToken t;
        t.id = a.at("id").get<int32_t>();
        t.content = a.at("content").get<std::string>();
        t.special = a.value("special", false);
        t.lstrip = a.value("lstrip", false);
        t.rstrip = a.value("rstrip", false);
        cfg.addedTokens.push_back(std::move(t));
      }
    parseNormalizer(j.value("normalizer", json()), cfg, path);
    parsePreTokenizer(j.value("pre_tokenizer", json()), cfg, path);
    parsePostProcessor(j.value("post_processor", json()), cfg, path);
    parseDecoder(j.value("decoder", json()), cfg, path);
  } catch (const json::exception& e) {
    throw fileError(path, std::string("unexpected tokenizer.json layout (") + e.what() + ")");
  }
  pickBosEos(cfg);
  bool byteLevel = false;
  for (const auto& s : cfg.preTokenizer) byteLevel |= s.kind == PreTokenizerStep::Kind::ByteLevel;
  cfg.kindLabel = byteLevel ? "byte-level BPE (tokenizer.json)" : "SentencePiece-style BPE (tokenizer.json)";
  return std::make_unique<HfBpeTokenizer>(std::move(cfg), options);
}

std::unique_ptr<Tokenizer> loadBpeVocabMerges(const std::string& vocabPath, const std::string& mergesPath,
                                              const TokenizerOptions& options) {
  const json v = readJsonFile(vocabPath);
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream in(qs::fs::readText(mergesPath));
  std::string line;
  for (size_t lineNo = 1; std::getline(in, line); ++lineNo) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (lineNo == 1 && line.rfind("#version", 0) == 0)) continue;
    merges.push_back(splitMerge(line, mergesPath + " line " + std::to_string(lineNo), merges.size()));
  }
  HfBpeConfig cfg;
  cfg.source = vocabPath;
  cfg.kindLabel = "byte-level BPE (vocab.json + merges.txt)";
  cfg.model = BpeModel(parseVocab(v, vocabPath), merges, mergesPath);
  PreTokenizerStep pre;
  pre.kind = PreTokenizerStep::Kind::ByteLevel;
  pre.pattern = RegexSplitter::gpt2Pattern();
  pre.regex = std::make_shared<RegexSplitter>(pre.pattern, vocabPath);
  cfg.preTokenizer.push_back(std::move(pre));
  DecoderStep dec;
  dec.kind = DecoderStep::Kind::ByteLevel;
  cfg.decoder.push_back(dec);
  // GPT2Tokenizer treats its bos/eos/unk token as special; without tokenizer.json that is
  // the one convention such a folder carries.
  if (auto id = cfg.model.idOf("<|endoftext|>")) cfg.addedTokens.push_back({"<|endoftext|>", *id, true, false, false});
  pickBosEos(cfg);
  return std::make_unique<HfBpeTokenizer>(std::move(cfg), options);
}

}  // namespace qs::io
