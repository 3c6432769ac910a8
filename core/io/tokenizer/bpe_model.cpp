#include "core/io/tokenizer/bpe_model.h"

#include <algorithm>
#include <queue>

#include "core/util/error.h"

namespace qs::io {

BpeModel::BpeModel(std::unordered_map<std::string, int32_t> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges,
                   const std::string& source)
    : vocab_(std::move(vocab)) {
  int32_t maxId = -1;
  for (const auto& [p, id] : vocab_) {
    if (id < 0) throw fileError(source, "negative id " + std::to_string(id) + " for \"" + p + "\"");
    maxId = std::max(maxId, id);
  }
  pieces_.resize(static_cast<size_t>(maxId + 1));
  for (const auto& [p, id] : vocab_) pieces_[static_cast<size_t>(id)] = p;

  merges_.reserve(merges.size() * 2);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = idOf(a), ib = idOf(b), ir = idOf(a + b);
    if (!ia || !ib || !ir)
      throw fileError(source, "merge " + std::to_string(rank) + " (\"" + a + "\" \"" + b +
                                  "\") uses a piece that is not in the vocabulary");
    // The first occurrence wins, as in HF tokenizers (duplicates do occur in the wild).
    merges_.emplace(key(*ia, *ib), Merge{static_cast<int32_t>(rank), *ir});
    merged_.insert(*ia);
    merged_.insert(*ib);
  }
}

const std::string& BpeModel::piece(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || id >= size()) return kEmpty;
  return pieces_[static_cast<size_t>(id)];
}

std::vector<std::pair<std::string, std::string>> BpeModel::mergesByRank() const {
  std::vector<std::pair<int32_t, uint64_t>> byRank;
  byRank.reserve(merges_.size());
  for (const auto& [k, m] : merges_) byRank.emplace_back(m.rank, k);
  std::sort(byRank.begin(), byRank.end());
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(byRank.size());
  for (const auto& [rank, k] : byRank)
    out.emplace_back(piece(static_cast<int32_t>(k >> 32)), piece(static_cast<int32_t>(k & 0xffffffffu)));
  return out;
}

std::vector<int32_t> BpeModel::merge(const std::vector<int32_t>& symbols) const {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return symbols;
  struct Sym {
    int32_t id;
    int prev, next;
  };
  std::vector<Sym> sym(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) sym[static_cast<size_t>(i)] = {symbols[static_cast<size_t>(i)], i - 1, i + 1 < n ? i + 1 : -1};

  struct Cand {
    int32_t rank;
    int pos, right;
    int32_t leftId, rightId, result;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int left) {
    if (left < 0) return;
    const int right = sym[static_cast<size_t>(left)].next;
    if (right < 0) return;
    const int32_t a = sym[static_cast<size_t>(left)].id, b = sym[static_cast<size_t>(right)].id;
    const auto it = merges_.find(key(a, b));
    if (it != merges_.end()) heap.push({it->second.rank, left, right, a, b, it->second.result});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);

  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    auto& l = sym[static_cast<size_t>(c.pos)];
    // Stale candidates (either side merged since) are skipped rather than removed.
    if (l.id != c.leftId || l.next != c.right || sym[static_cast<size_t>(c.right)].id != c.rightId)
      continue;
    auto& r = sym[static_cast<size_t>(c.right)];
    l.id = c.result;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = c.pos;
    r.id = -1;
    r.next = -1;
    consider(l.prev);
    consider(c.pos);
  }
  std::vector<int32_t> out;
  for (int i = 0; i >= 0; i = sym[static_cast<size_t>(i)].next) out.push_back(sym[static_cast<size_t>(i)].id);
  return out;
}

}  // namespace qs::io
