#include "core/io/tokenizer/bpe_trainer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include "core/io/tokenizer/byte_level.h"
#include "core/io/tokenizer/regex_splitter.h"
#include "core/io/tokenizer/utf8.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::io {
namespace {

uint64_t pairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t leftOf(uint64_t k) { return static_cast<int32_t>(k >> 32); }
int32_t rightOf(uint64_t k) { return static_cast<int32_t>(k & 0xffffffffu); }

struct HeapEntry {
  int64_t count;
  int32_t a, b;
};
// std heap is a max-heap on this "less": higher count first, then smaller left id, then smaller right id.
bool heapLess(const HeapEntry& x, const HeapEntry& y) {
  if (x.count != y.count) return x.count < y.count;
  if (x.a != y.a) return x.a > y.a;
  return x.b > y.b;
}

}  // namespace

BpeTrainer::BpeTrainer(BpeTrainOptions options) : opt_(std::move(options)) {
  std::unordered_set<std::string> seen;
  for (const auto& s : opt_.specialTokens) {
    if (s.empty()) throw Error("train-tokenizer: a special token is empty");
    if (!seen.insert(s).second) throw Error("train-tokenizer: special token '" + s + "' is given twice");
  }
  const int64_t floor = static_cast<int64_t>(opt_.specialTokens.size()) + 256;
  if (opt_.vocabSize < floor)
    throw Error("train-tokenizer: --vocab-size " + std::to_string(opt_.vocabSize) + " is below the " +
                std::to_string(floor) + " ids the special tokens and 256 byte symbols take");
  if (opt_.minFrequency < 1) throw Error("train-tokenizer: --min-frequency must be at least 1");
}

void BpeTrainer::addText(std::string_view text, const std::string& source, jobs::Progress& progress) {
  const size_t bad = utf8::firstInvalid(text);
  if (bad != std::string_view::npos)
    throw fileError(source, "not valid UTF-8 (byte offset " + std::to_string(bad) + "); convert it first");
  static const RegexSplitter splitter(RegexSplitter::gpt2Pattern(), "GPT-2 pre-tokenizer");
  const std::vector<std::string_view> parts = splitter.split(text);
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty()) continue;
    ++wordCounts_[std::string(parts[i])];
    ++words_;
    if ((i & 0xffff) == 0) {
      progress.checkCancel();
      progress.update(static_cast<double>(i) / static_cast<double>(parts.size()), "counting words");
    }
  }
}

BpeTrainResult BpeTrainer::train(jobs::Progress& progress) const {
  BpeTrainResult r;
  r.words = words_;
  r.uniqueWords = static_cast<int64_t>(wordCounts_.size());
  const int32_t S = static_cast<int32_t>(opt_.specialTokens.size());
  r.pieces = opt_.specialTokens;
  for (int b = 0; b < 256; ++b) r.pieces.push_back(byte_level::byteToChar(static_cast<unsigned char>(b)));
  std::unordered_map<std::string, int32_t> idOf;
  for (int32_t i = 0; i < static_cast<int32_t>(r.pieces.size()); ++i) idOf.emplace(r.pieces[static_cast<size_t>(i)], i);

  // Words in byte order so the word indices (and everything after) do not depend on hashing.
  std::vector<std::pair<std::string, int64_t>> sorted(wordCounts_.begin(), wordCounts_.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<int32_t>> words(sorted.size());
  std::vector<int64_t> counts(sorted.size());
  std::unordered_map<uint64_t, int64_t> pairCounts;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // pair -> words that had it (may be stale)
  for (size_t w = 0; w < sorted.size(); ++w) {
    counts[w] = sorted[w].second;
    for (unsigned char c : sorted[w].first) words[w].push_back(S + c);
    const auto& sym = words[w];
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      const uint64_t k = pairKey(sym[i], sym[i + 1]);
      pairCounts[k] += counts[w];
      auto& list = where[k];
      if (list.empty() || list.back() != static_cast<int32_t>(w)) list.push_back(static_cast<int32_t>(w));
    }
  }
  std::vector<HeapEntry> heap;
  heap.reserve(pairCounts.size());
  for (const auto& [k, n] : pairCounts) heap.push_back({n, leftOf(k), rightOf(k)});
  std::make_heap(heap.begin(), heap.end(), heapLess);

  std::unordered_set<uint64_t> done;
  std::vector<int32_t> stamp(words.size(), -1);
  std::vector<int32_t> merged;
  const size_t target = static_cast<size_t>(opt_.vocabSize);
  const size_t start = r.pieces.size();
  int32_t step = 0;
  while (r.pieces.size() < target && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), heapLess);
    const HeapEntry e = heap.back();
    heap.pop_back();
    const uint64_t k = pairKey(e.a, e.b);
    const auto it = pairCounts.find(k);
    const int64_t actual = it == pairCounts.end() ? 0 : it->second;
    if (actual != e.count) {  // stale entry: counts only fall, except for pairs pushed below
      if (actual > 0) {
        heap.push_back({actual, e.a, e.b});
        std::push_heap(heap.begin(), heap.end(), heapLess);
      }
      continue;
    }
    if (done.count(k)) continue;
    if (actual < opt_.minFrequency) {
      r.stoppedByMinFrequency = true;
      break;
    }
    done.insert(k);
    const std::string joined = r.pieces[static_cast<size_t>(e.a)] + r.pieces[static_cast<size_t>(e.b)];
    int32_t c;
    if (auto found = idOf.find(joined); found != idOf.end()) {
      c = found->second;
    } else {
      c = static_cast<int32_t>(r.pieces.size());
      r.pieces.push_back(joined);
      idOf.emplace(joined, c);
    }
    r.merges.emplace_back(r.pieces[static_cast<size_t>(e.a)], r.pieces[static_cast<size_t>(e.b)]);

    // Apply the merge in every word that had the pair; a word's pair counts change by the
    // difference between its adjacent pairs before and after, times the word's count.
    std::vector<uint64_t> grown;
    const std::vector<int32_t> list = std::move(where[k]);
    where.erase(k);
    for (int32_t w : list) {
      if (stamp[static_cast<size_t>(w)] == step) continue;
      stamp[static_cast<size_t>(w)] = step;
      std::vector<int32_t>& sym = words[static_cast<size_t>(w)];
      merged.clear();
      bool changed = false;
      for (size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && sym[i] == e.a && sym[i + 1] == e.b) {
          merged.push_back(c);
          i += 2;
          changed = true;
        } else {
          merged.push_back(sym[i++]);
        }
      }
      if (!changed) continue;
      const int64_t n = counts[static_cast<size_t>(w)];
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        auto pc = pairCounts.find(pairKey(sym[i], sym[i + 1]));
        if ((pc->second -= n) <= 0) pairCounts.erase(pc);
      }
      for (size_t i = 0; i + 1 < merged.size(); ++i) {
        const uint64_t nk = pairKey(merged[i], merged[i + 1]);
        pairCounts[nk] += n;
        if (merged[i] == c || merged[i + 1] == c) {
          auto& l = where[nk];
          if (l.empty() || l.back() != w) l.push_back(w);
          grown.push_back(nk);
        }
      }
      sym.swap(merged);
    }
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (uint64_t g : grown) {
      const auto pc = pairCounts.find(g);
      if (pc == pairCounts.end()) continue;
      heap.push_back({pc->second, leftOf(g), rightOf(g)});
      std::push_heap(heap.begin(), heap.end(), heapLess);
    }
    ++step;
    if ((step & 63) == 0) {
      progress.checkCancel();
      progress.update(static_cast<double>(r.pieces.size() - start) / static_cast<double>(target - start),
                      "merge " + std::to_string(step) + ", vocab " + std::to_string(r.pieces.size()));
    }
  }
  progress.update(1.0, "vocab " + std::to_string(r.pieces.size()));
  return r;
}

std::string bpeTokenizerJson(const BpeTrainResult& result, const BpeTrainOptions& options) {
  using ojson = nlohmann::ordered_json;
  ojson added = ojson::array();
  for (size_t i = 0; i < options.specialTokens.size(); ++i)
    added.push_back({{"id", i}, {"content", options.specialTokens[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  ojson vocab = ojson::object();
  for (size_t i = 0; i < result.pieces.size(); ++i) vocab[result.pieces[i]] = i;
  ojson merges = ojson::array();
  // "left right" strings: byte-level pieces never hold a space (it is mapped to "Ġ").
  for (const auto& [a, b] : result.merges) merges.push_back(a + " " + b);
  const ojson byteLevel = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                           {"use_regex", true}};
  ojson j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added;
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = byteLevel;
  j["post_processor"] = byteLevel;
  j["decoder"] = byteLevel;
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", merges}};
  return j.dump(1) + "\n";
}

std::string bpeTokenizerConfigJson(const BpeTrainOptions& options) {
  using ojson = nlohmann::ordered_json;
  const std::string special = options.specialTokens.empty() ? std::string() : options.specialTokens.front();
  ojson decl = ojson::object();
  for (size_t i = 0; i < options.specialTokens.size(); ++i)
    decl[std::to_string(i)] = {{"content", options.specialTokens[i]}, {"lstrip", false}, {"normalized", false},
                               {"rstrip", false}, {"single_word", false}, {"special", true}};
  ojson j;
  j["added_tokens_decoder"] = decl;
  j["add_bos_token"] = false;
  j["add_eos_token"] = false;
  if (!special.empty()) {
    j["bos_token"] = special;
    j["eos_token"] = special;
    j["unk_token"] = special;
  }
  j["clean_up_tokenization_spaces"] = false;
  j["model_max_length"] = options.modelMaxLength;
  j["tokenizer_class"] = "PreTrainedTokenizerFast";
  return j.dump(2) + "\n";
}

void writeBpeTokenizer(const std::string& dir, const BpeTrainResult& result, const BpeTrainOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw fileError(dir, "cannot create the output folder: " + ec.message());
  fs::writeAtomic(fs::join(dir, "tokenizer.json"), bpeTokenizerJson(result, options));
  fs::writeAtomic(fs::join(dir, "tokenizer_config.json"), bpeTokenizerConfigJson(options));
  nlohmann::ordered_json map = nlohmann::ordered_json::object();
  if (!options.specialTokens.empty())
    for (const char* key : {"bos_token", "eos_token", "unk_token"}) map[key] = options.specialTokens.front();
  fs::writeAtomic(fs::join(dir, "special_tokens_map.json"), map.dump(2) + "\n");
}

}  // namespace qs::io
