// The llama vocabulary (pieces + scores + types, from GGUF or a tok*_vocab.json dump) as a
// tokenizer: SentencePiece BPE whose merges are implied by the scores, encoded the way
// llama.cpp and llama2.c do (highest-scoring adjacent pair first, bytes as <0xNN>).
#pragma once
#include <array>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/io/tokenizer/added_tokens.h"
#include "core/io/tokenizer/tokenizer.h"

namespace qs::io {

class LlamaVocabTokenizer : public Tokenizer {
 public:
  // Throws qs::Error when the vocab arrays disagree in length or are empty.
  LlamaVocabTokenizer(LlamaVocab vocab, std::string kind, const TokenizerOptions& options);

  std::vector<int32_t> encode(const std::string& text, bool addSpecial = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skipSpecial = true) const override;
  std::string tokenText(int32_t id) const override;
  int32_t vocabSize() const override { return static_cast<int32_t>(vocab_.tokens.size()); }
  std::optional<int32_t> bosId() const override { return vocab_.bosId; }
  std::optional<int32_t> eosId() const override { return vocab_.eosId; }
  std::string kind() const override { return kind_; }
  const LlamaVocab* llamaVocab() const override { return &vocab_; }

 private:
  void encodeText(const std::string& text, std::vector<int32_t>& out) const;
  void encodeChunk(const std::string& text, std::vector<int32_t>& out) const;

  LlamaVocab vocab_;
  std::string kind_;
  bool parseSpecial_ = true;
  std::unordered_map<std::string, int32_t> ids_;
  std::array<int32_t, 256> byteIds_{};
  // ASCII chars that occur in no piece (e.g. "\n"): no merge crosses them, so long texts are
  // cut there and each merge heap stays small.
  std::array<bool, 128> breaker_{};
  AddedTokenMatcher special_;  // control and user-defined pieces
};

}  // namespace qs::io
