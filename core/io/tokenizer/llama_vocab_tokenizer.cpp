#include "core/io/tokenizer/llama_vocab_tokenizer.h"

#include <queue>
#include <unordered_map>

#include "core/io/tokenizer/json_file.h"
#include "core/io/tokenizer/text_util.h"
#include "core/io/tokenizer/utf8.h"
#include "core/util/error.h"

namespace qs::io {

namespace {
const char* kSpace = "\xE2\x96\x81";  // "▁"

// SentencePiece's remove_extra_whitespaces: no leading/trailing spaces, runs become one.
std::string collapseSpaces(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

PieceType toPieceType(int32_t t) {
  return (t >= 1 && t <= 6) ? static_cast<PieceType>(t) : PieceType::Normal;
}

// tokens / scores / token_type arrays plus optional ids, shared by GGUF metadata and the
// JSON dump; keyPrefix is "tokenizer.ggml." for GGUF and "" for the dump.
LlamaVocab vocabFromJson(const nlohmann::json& j, const std::string& keyPrefix, const std::string& source) {
  auto key = [&](const char* k) { return keyPrefix + k; };
  auto field = [&](const char* k) -> const nlohmann::json* {
    const auto it = j.find(key(k));
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  LlamaVocab v;
  const auto* tokens = field("tokens");
  if (!tokens || !tokens->is_array() || tokens->empty())
    throw fileError(source, "missing or empty \"" + key("tokens") + "\"");
  try {
    v.tokens = tokens->get<std::vector<std::string>>();
    if (const auto* s = field("scores")) v.scores = s->get<std::vector<float>>();
    const auto* types = field("token_type");
    if (types) {
      for (const auto& t : *types) v.types.push_back(toPieceType(t.get<int32_t>()));
    }
    auto optId = [&](const char* k) -> std::optional<int32_t> {
      if (const auto* f = field(k)) return f->get<int32_t>();
      return std::nullopt;
    };
    v.bosId = optId("bos_token_id");
    v.eosId = optId("eos_token_id");
    v.unkId = optId("unknown_token_id");
    if (!v.unkId) v.unkId = optId("unk_token_id");
    if (const auto* f = field("add_bos_token")) v.addBos = f->get<bool>();
    if (const auto* f = field("add_bos")) v.addBos = f->get<bool>();
    if (const auto* f = field("add_eos_token")) v.addEos = f->get<bool>();
    if (const auto* f = field("add_space_prefix")) v.addDummyPrefix = f->get<bool>();
    if (const auto* f = field("add_dummy_prefix")) v.addDummyPrefix = f->get<bool>();
  } catch (const nlohmann::json::exception& e) {
    throw fileError(source, "malformed llama vocabulary (" + std::string(e.what()) + ")");
  }
  const size_t n = v.tokens.size();
  if (v.scores.empty()) v.scores.assign(n, 0.0f);
  if (v.types.empty()) v.types.assign(n, PieceType::Normal);
  if (v.scores.size() != n || v.types.size() != n)
    throw fileError(source, "\"" + key("tokens") + "\" (" + std::to_string(n) + "), scores (" +
                                std::to_string(v.scores.size()) + ") and token_type (" +
                                std::to_string(v.types.size()) + ") differ in length");
  for (auto* id : {&v.bosId, &v.eosId, &v.unkId})
    if (*id && (**id < 0 || static_cast<size_t>(**id) >= n))
      throw fileError(source, "special token id " + std::to_string(**id) + " is outside the vocabulary");
  return v;
}
}  // namespace

LlamaVocab llamaVocabFromGgufMetadata(const nlohmann::json& metadata, const std::string& source) {
  const std::string model = metadata.value("tokenizer.ggml.model", std::string());
  if (model != "llama")
    throw fileError(source, "tokenizer.ggml.model is \"" + model + "\"; QuantScope reads the \"llama\" "
                            "(SentencePiece) and \"gpt2\" (byte-level BPE) vocabularies of GGUF files");
  return vocabFromJson(metadata, "tokenizer.ggml.", source);
}

LlamaVocab llamaVocabFromHfBpeJson(const std::string& path) {
  const nlohmann::json j = readJsonFile(path);
  const auto model = j.find("model");
  if (model == j.end() || !model->is_object() || model->value("type", "") != "BPE" ||
      !model->value("byte_fallback", false) || !model->contains("vocab") || !model->contains("merges"))
    throw fileError(path, "not a SentencePiece-style BPE tokenizer (model type BPE with byte_fallback); "
                          "its vocabulary has no llama (SentencePiece) form");
  LlamaVocab v;
  try {
    const auto& vocab = (*model)["vocab"];
    v.tokens.assign(vocab.size(), "");
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      const auto id = it.value().get<int64_t>();
      if (id < 0 || id >= static_cast<int64_t>(vocab.size()))
        throw fileError(path, "token id " + std::to_string(id) + " is outside the vocabulary");
      v.tokens[static_cast<size_t>(id)] = it.key();
    }
    std::unordered_map<std::string, int32_t> ids;
    for (size_t i = 0; i < v.tokens.size(); ++i) ids[v.tokens[i]] = static_cast<int32_t>(i);
    // Pieces no merge makes (single characters) rank below every merge, in id order.
    const auto& merges = (*model)["merges"];
    const auto nMerges = static_cast<float>(merges.size());
    v.scores.resize(v.tokens.size());
    for (size_t i = 0; i < v.tokens.size(); ++i) v.scores[i] = -nMerges - static_cast<float>(i);
    std::vector<bool> made(v.tokens.size(), false);
    for (size_t r = 0; r < merges.size(); ++r) {
      std::string a, b;
      if (merges[r].is_array()) {
        a = merges[r][0].get<std::string>();
        b = merges[r][1].get<std::string>();
      } else {
        const std::string m = merges[r].get<std::string>();
        const size_t sp = m.find(' ');
        if (sp == std::string::npos) throw fileError(path, "merge " + std::to_string(r) + " is not \"a b\"");
        a = m.substr(0, sp);
        b = m.substr(sp + 1);
      }
      const auto it = ids.find(a + b);
      if (it != ids.end() && !made[static_cast<size_t>(it->second)]) {
        made[static_cast<size_t>(it->second)] = true;
        v.scores[static_cast<size_t>(it->second)] = -static_cast<float>(r);
      }
    }
    v.types.assign(v.tokens.size(), PieceType::Normal);
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      const std::string& t = v.tokens[i];
      if (t.size() == 6 && t.rfind("<0x", 0) == 0 && t.back() == '>') {
        v.types[i] = PieceType::Byte;
        v.scores[i] = 0.0f;
      }
    }
    const std::string unk = model->value("unk_token", "");
    for (const auto& t : j.value("added_tokens", nlohmann::json::array())) {
      const auto id = t.at("id").get<int32_t>();
      if (id < 0 || static_cast<size_t>(id) >= v.tokens.size()) continue;
      const std::string content = t.at("content").get<std::string>();
      const bool special = t.value("special", false);
      v.types[static_cast<size_t>(id)] =
          content == unk ? PieceType::Unknown : special ? PieceType::Control : PieceType::UserDefined;
      v.scores[static_cast<size_t>(id)] = 0.0f;
      if (content == unk) v.unkId = id;
      if (content == "<s>") v.bosId = id;
      if (content == "</s>") v.eosId = id;
    }
  } catch (const nlohmann::json::exception& e) {
    throw fileError(path, "malformed BPE tokenizer (" + std::string(e.what()) + ")");
  }
  return v;
}

LlamaVocab readLlamaVocabJson(const std::string& path) {
  const nlohmann::json j = readJsonFile(path);
  if (!j.is_object()) throw fileError(path, "expected an object with tokens/scores/token_type");
  return vocabFromJson(j, "", path);
}

std::unique_ptr<Tokenizer> makeLlamaVocabTokenizer(LlamaVocab vocab, const std::string& kind,
                                                   const TokenizerOptions& options) {
  return std::make_unique<LlamaVocabTokenizer>(std::move(vocab), kind, options);
}

LlamaVocabTokenizer::LlamaVocabTokenizer(LlamaVocab vocab, std::string kind, const TokenizerOptions& options)
    : vocab_(std::move(vocab)), kind_(std::move(kind)), parseSpecial_(options.parseSpecial) {
  const size_t n = vocab_.tokens.size();
  if (n == 0 || vocab_.scores.size() != n || vocab_.types.size() != n)
    throw Error(kind_ + ": llama vocabulary arrays are empty or differ in length");
  if (options.addBos) vocab_.addBos = *options.addBos;
  if (options.addEos) vocab_.addEos = *options.addEos;
  ids_.reserve(n);
  for (size_t i = 0; i < n; ++i) ids_.emplace(vocab_.tokens[i], static_cast<int32_t>(i));
  auto find = [&](const std::string& p) -> std::optional<int32_t> {
    const auto it = ids_.find(p);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  };
  if (options.bosToken)
    if (auto id = find(*options.bosToken)) vocab_.bosId = id;
  if (options.eosToken)
    if (auto id = find(*options.eosToken)) vocab_.eosId = id;
  for (int b = 0; b < 256; ++b)
    byteIds_[static_cast<size_t>(b)] = find(text::bytePiece(static_cast<unsigned char>(b))).value_or(-1);
  breaker_.fill(true);
  for (const auto& t : vocab_.tokens)
    for (char c : t)
      if (static_cast<unsigned char>(c) < 128) breaker_[static_cast<unsigned char>(c)] = false;
  for (size_t i = 0; i < n; ++i) {
    const auto t = vocab_.types[i];
    if (t == PieceType::Control || t == PieceType::UserDefined)
      special_.add({vocab_.tokens[i], static_cast<int32_t>(i), t == PieceType::Control, false, false});
  }
}

void LlamaVocabTokenizer::encodeText(const std::string& text, std::vector<int32_t>& out) const {
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 128 && breaker_[c]) {
      if (i > start) encodeChunk(text.substr(start, i - start), out);
      encodeChunk(text.substr(i, 1), out);
      start = i + 1;
    }
  }
  if (start == 0)
    encodeChunk(text, out);
  else if (start < text.size())
    encodeChunk(text.substr(start), out);
}

void LlamaVocabTokenizer::encodeChunk(const std::string& text, std::vector<int32_t>& out) const {
  // Symbols are byte ranges of `text` in a doubly linked list; merges join neighbours.
  struct Sym {
    size_t start, len;
    int prev, next;
  };
  std::vector<Sym> sym;
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = std::min(utf8::charLen(static_cast<unsigned char>(text[pos])), text.size() - pos);
    const int i = static_cast<int>(sym.size());
    sym.push_back({pos, n, i - 1, -1});
    if (i > 0) sym[static_cast<size_t>(i - 1)].next = i;
    pos += n;
  }
  struct Bigram {
    float score;
    int left, right;
    size_t len;
    // Highest score first; on ties the leftmost pair (llama.cpp's order).
    bool operator<(const Bigram& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  std::priority_queue<Bigram> queue;
  std::string buf;
  auto tryAdd = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const auto& l = sym[static_cast<size_t>(left)];
    const auto& r = sym[static_cast<size_t>(right)];
    buf.assign(text, l.start, l.len + r.len);
    const auto it = ids_.find(buf);
    if (it == ids_.end()) return;
    queue.push({vocab_.scores[static_cast<size_t>(it->second)], left, right, buf.size()});
  };
  for (size_t i = 1; i < sym.size(); ++i) tryAdd(static_cast<int>(i - 1), static_cast<int>(i));
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    auto& l = sym[static_cast<size_t>(b.left)];
    auto& r = sym[static_cast<size_t>(b.right)];
    // Stale once either side has been merged into something else.
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.len || l.next != b.right) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = b.left;
    tryAdd(l.prev, b.left);
    tryAdd(b.left, l.next);
  }
  for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
    const auto& s = sym[static_cast<size_t>(i)];
    buf.assign(text, s.start, s.len);
    const auto it = ids_.find(buf);
    if (it != ids_.end()) {
      out.push_back(it->second);
      continue;
    }
    // Only single characters can be missing (merges need the merged piece): bytes, else unk.
    for (char c : buf) {
      const int32_t id = byteIds_[static_cast<unsigned char>(c)];
      if (id >= 0)
        out.push_back(id);
      else if (vocab_.unkId)
        out.push_back(*vocab_.unkId);
    }
  }
}

std::vector<int32_t> LlamaVocabTokenizer::encode(const std::string& text, bool addSpecial) const {
  std::vector<int32_t> out;
  if (addSpecial && vocab_.addBos && vocab_.bosId) out.push_back(*vocab_.bosId);
  std::vector<TextSegment> segments;
  if (parseSpecial_)
    segments = special_.split(text);
  else if (!text.empty())
    segments.push_back({text, -1});
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& seg = segments[i];
    if (seg.id >= 0) {
      out.push_back(seg.id);
      continue;
    }
    // The dummy prefix goes only in front of the text's start, as llama.cpp does.
    std::string s(seg.text);
    if (vocab_.removeExtraWhitespaces) s = collapseSpaces(s);
    if (s.empty()) continue;
    if (vocab_.addDummyPrefix && i == 0) s.insert(0, " ");
    encodeText(text::replaceAll(s, " ", kSpace), out);
  }
  if (addSpecial && vocab_.addEos && vocab_.eosId) out.push_back(*vocab_.eosId);
  return out;
}

std::string LlamaVocabTokenizer::decode(const std::vector<int32_t>& ids, bool skipSpecial) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocabSize()) continue;
    const auto& piece = vocab_.tokens[static_cast<size_t>(id)];
    const auto type = vocab_.types[static_cast<size_t>(id)];
    if (type == PieceType::Byte) {
      if (auto b = text::parseBytePiece(piece)) {
        out += static_cast<char>(*b);
        continue;
      }
    }
    if (type == PieceType::Control || type == PieceType::Unknown || type == PieceType::Unused) {
      if (!skipSpecial) out += piece;
      continue;
    }
    out += text::replaceAll(piece, kSpace, " ");
  }
  // SentencePiece drops the dummy-prefix space it added in front.
  if (vocab_.addDummyPrefix && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return utf8::sanitize(out);
}

std::string LlamaVocabTokenizer::tokenText(int32_t id) const {
  if (id < 0 || id >= vocabSize()) return {};
  return text::replaceAll(vocab_.tokens[static_cast<size_t>(id)], kSpace, " ");
}

}  // namespace qs::io
