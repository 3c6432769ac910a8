// Byte-level BPE training (what `qscope train-tokenizer` runs): GPT-2 pre-tokenization and byte
// -> unicode map, then greedy pair merges until the vocabulary has the requested size, written
// as a Hugging Face tokenizer.json that loadHfTokenizerJson (and HF tokenizers) read back.
//
// Merge order is deterministic: each step merges the adjacent symbol pair with the highest
// count over the corpus (words weighted by how often they occur); ties go to the pair with the
// smaller left id, then the smaller right id. Ids: special tokens first (in the given order),
// then the 256 byte symbols in byte order, then each merge's result in merge order (a merge whose
// result string already exists reuses that id, as HF's BpeTrainer does). Torch-free.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/jobs/progress.h"

namespace qs::io {

struct BpeTrainOptions {
  int32_t vocabSize = 4096;   // final vocabulary: special tokens + 256 bytes + merges
  int64_t minFrequency = 2;   // a pair seen fewer times than this is never merged
  std::vector<std::string> specialTokens{"<|endoftext|>"};  // ids 0.. in order; the first is BOS/EOS
  int64_t modelMaxLength = 2048;  // tokenizer_config.json model_max_length

  BpeTrainOptions& withVocabSize(int32_t v) { vocabSize = v; return *this; }
  BpeTrainOptions& withMinFrequency(int64_t v) { minFrequency = v; return *this; }
  BpeTrainOptions& withSpecialTokens(std::vector<std::string> v) { specialTokens = std::move(v); return *this; }
};

struct BpeTrainResult {
  std::vector<std::string> pieces;  // id -> piece (byte-level characters; special tokens verbatim)
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  int64_t words = 0;        // pre-tokenized words counted
  int64_t uniqueWords = 0;  // distinct words
  bool stoppedByMinFrequency = false;  // ran out of pairs seen minFrequency times before vocabSize
};

class BpeTrainer {
 public:
  // Throws qs::Error when the options cannot give a vocabulary (size below specials + 256, an
  // empty or duplicated special token).
  explicit BpeTrainer(BpeTrainOptions options);

  // Pre-tokenizes text with GPT-2's regex and counts its words. `source` names the text in
  // errors (text must be valid UTF-8). Checks progress for cancellation.
  void addText(std::string_view text, const std::string& source,
               jobs::Progress& progress = jobs::Progress::none());

  // Runs the merges; progress reports merges done. Throws qs::Cancelled when asked to stop.
  BpeTrainResult train(jobs::Progress& progress = jobs::Progress::none()) const;

  const BpeTrainOptions& options() const { return opt_; }

 private:
  BpeTrainOptions opt_;
  std::unordered_map<std::string, int64_t> wordCounts_;  // raw-byte words
  int64_t words_ = 0;
};

// tokenizer.json text (ByteLevel pre-tokenizer/decoder, BPE model, special tokens as added tokens).
std::string bpeTokenizerJson(const BpeTrainResult& result, const BpeTrainOptions& options);
// tokenizer_config.json text: bos/eos/unk = the first special token, no BOS/EOS added on encode.
std::string bpeTokenizerConfigJson(const BpeTrainOptions& options);
// Writes dir/tokenizer.json, dir/tokenizer_config.json and dir/special_tokens_map.json
// (each atomically; the folder is created).
void writeBpeTokenizer(const std::string& dir, const BpeTrainResult& result, const BpeTrainOptions& options);

}  // namespace qs::io
