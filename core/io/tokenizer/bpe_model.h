// The BPE merge engine shared by byte-level and SentencePiece-style tokenizer.json models:
// merges keyed by id pairs, applied lowest rank first (leftmost on ties) with a heap, so a
// long word (a whole SentencePiece line has no pre-tokenizer) costs O(n log n), not O(n^2).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace qs::io {

class BpeModel {
 public:
  BpeModel() = default;
  // Throws qs::Error naming `source` when a merge names a piece missing from the vocabulary.
  BpeModel(std::unordered_map<std::string, int32_t> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges,
           const std::string& source);

  std::optional<int32_t> idOf(const std::string& piece) const {
    const auto it = vocab_.find(piece);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  // The piece for id ("" for ids with no piece, e.g. gaps in a vocab.json).
  const std::string& piece(int32_t id) const;
  int32_t size() const { return static_cast<int32_t>(pieces_.size()); }
  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

  // The merges in rank order (duplicates dropped, as the engine applies them).
  std::vector<std::pair<std::string, std::string>> mergesByRank() const;
  // Whether any merge takes id as its left or right side.
  bool inAnyMerge(int32_t id) const { return merged_.count(id) != 0; }
  // Applies the merges to a word given as its initial symbols; returns the final ids.
  std::vector<int32_t> merge(const std::vector<int32_t>& symbols) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> pieces_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::unordered_set<int32_t> merged_;
};

}  // namespace qs::io
