// Text generation without a KV cache (each step re-runs the sequence): enough to check that a
// model loads correctly ("Once upon a time" from stories260K), to eyeball a quantized model, and
// to sample in-domain text from a model for data-free calibration (as LLM-QAT does).
//
// Decoding: temperature 0 is greedy (argmax). Temperature T > 0 samples from softmax(logits / T),
// restricted to the K most likely tokens when topK = K > 0 (ties broken by the lower id). The
// random stream is std::mt19937_64 seeded with `seed` (its output is fixed by the C++ standard)
// and the draw is computed in double precision, so a seed reproduces a sample on any platform
// whose model logits agree.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <vector>

#include "core/jobs/progress.h"

namespace qs::model {

class Model;

struct GenerateOptions {
  int maxNewTokens = 64;              // tokens to add at most
  std::optional<int32_t> eosId;       // stop after emitting this id
  std::vector<int32_t> extraStopIds;  // further ids that end a sample (e.g. BOS: a new document)
  int contextWindow = 0;              // keep at most this many tokens of context; 0 = model max
  double temperature = 0.0;           // 0 = greedy; > 0 = sample from softmax(logits / T)
  int topK = 0;                       // sample among the K most likely tokens; 0 = all
  uint64_t seed = 0;                  // seeds the sampling stream (unused when greedy)
};

// Returns only the new tokens, including the stop token that ended it (if one did). `onToken`
// (optional) sees each token as it is produced.
std::vector<int32_t> generate(Model& model, const std::vector<int32_t>& prompt, const GenerateOptions& options,
                              const std::function<void(int32_t)>& onToken = {},
                              jobs::Progress& progress = jobs::Progress::none());

// The seed of sample `index` in a set drawn with `seed` (SplitMix64 of both): each sample is
// reproducible on its own, whatever the number of samples drawn with it.
uint64_t sampleSeed(uint64_t seed, uint64_t index);

// Picks the next token from one row of logits with `options`' temperature and top-k, drawing
// from its own stream (seeded with options.seed) when sampling.
class TokenSampler {
 public:
  explicit TokenSampler(const GenerateOptions& options);
  int32_t pick(const std::vector<float>& logits);

 private:
  double temperature_;
  int topK_;
  std::mt19937_64 rng_;
};

}  // namespace qs::model
