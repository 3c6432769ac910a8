// The tokenizer.json BPE pipeline (added tokens -> normalizer -> pre-tokenizer -> BPE ->
// post-processor, and the decoder chain back), configured for byte-level BPE (GPT-2, OPT,
// BLOOM, Falcon, LLaMA-3) or SentencePiece-style BPE with byte fallback (LLaMA-2, Mistral).
// Parsing tokenizer.json / vocab.json + merges.txt into a config is hf_tokenizer_json.cpp.
#pragma once
#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/io/tokenizer/added_tokens.h"
#include "core/io/tokenizer/bpe_model.h"
#include "core/io/tokenizer/regex_splitter.h"
#include "core/io/tokenizer/tokenizer.h"

namespace qs::io {

struct NormalizerStep {
  enum class Kind { Prepend, Replace, Lowercase };
  Kind kind = Kind::Replace;
  std::string from, to;  // Prepend: to = prefix; Replace: from -> to
};

struct PreTokenizerStep {
  enum class Kind { Split, ByteLevel, Metaspace };
  Kind kind = Kind::Split;
  std::shared_ptr<RegexSplitter> regex;  // Split, ByteLevel with use_regex
  std::string pattern;                   // regex's pattern (names the pre-tokenizer in GGUF)
  bool keepGaps = true;                  // Split behavior Isolated (true) / Removed (false)
  bool addPrefixSpace = false;           // ByteLevel " " / Metaspace replacement in front
  std::string replacement = "\xE2\x96\x81";  // Metaspace "▁"
  bool splitWords = true;                // Metaspace split before each replacement char
};

struct DecoderStep {
  enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace };
  Kind kind = Kind::Fuse;
  std::string from, to;  // Replace; Strip: from = content; Metaspace: from = replacement
  int start = 0, stop = 0;
  bool addPrefixSpace = true;  // Metaspace: drop the leading space of the first token
};

struct HfBpeConfig {
  std::string source;  // file named in errors and kind()
  std::string kindLabel;
  BpeModel model;
  std::vector<AddedToken> addedTokens;
  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> preTokenizer;
  std::vector<DecoderStep> decoder;
  std::vector<int32_t> prefix, suffix;  // post-processor template around the sequence
  std::optional<int32_t> unkId;
  bool fuseUnk = false;
  bool byteFallback = false;
  bool ignoreMerges = false;  // LLaMA-3: a word that is a vocab piece is used as is
  std::optional<int32_t> bosId, eosId;
};

class HfBpeTokenizer : public Tokenizer {
 public:
  HfBpeTokenizer(HfBpeConfig config, const TokenizerOptions& options);

  std::vector<int32_t> encode(const std::string& text, bool addSpecial = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skipSpecial = true) const override;
  std::string tokenText(int32_t id) const override;
  int32_t vocabSize() const override { return vocabSize_; }
  std::optional<int32_t> bosId() const override { return cfg_.bosId; }
  std::optional<int32_t> eosId() const override { return cfg_.eosId; }
  std::string kind() const override { return cfg_.kindLabel; }
  std::optional<BpeVocab> byteLevelBpeVocab() const override;

 private:
  std::string normalize(std::string_view text) const;
  std::vector<std::string> preTokenize(std::string text) const;
  void encodeWord(const std::string& word, std::vector<int32_t>& out) const;
  void encodeChunk(const std::string& chunk, std::vector<int32_t>& out) const;
  std::vector<int32_t> initialSymbols(const std::string& word) const;
  const std::string& rawPiece(int32_t id) const;

  HfBpeConfig cfg_;
  bool parseSpecial_ = true;
  bool byteLevel_ = false;
  int32_t vocabSize_ = 0;
  AddedTokenMatcher added_;
  std::unordered_map<int32_t, const AddedToken*> addedById_;
  std::unordered_set<int32_t> specialIds_;
  std::array<int32_t, 256> byteIds_{};  // byte-level: id of each byte's char; else <0xNN>
  // SentencePiece-style: ASCII chars no merge can cross (not a piece, fallback never merged,
  // e.g. "\n"); a whole text is one word there, and cutting it at these keeps it cacheable.
  std::array<bool, 128> breaker_{};
  // Merge results per word: most words of running text repeat, so this is the main speed-up.
  mutable std::mutex cacheMutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace qs::io
