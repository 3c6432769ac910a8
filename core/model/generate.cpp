#include "core/model/generate.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "core/model/model.h"
#include "core/util/error.h"

namespace qs::model {
namespace {

void validate(const GenerateOptions& o) {
  if (o.maxNewTokens < 0) throw Error("--max-new: must not be negative");
  if (!std::isfinite(o.temperature) || o.temperature < 0)
    throw Error("--temperature: must be a finite number >= 0 (0 = greedy), got " + std::to_string(o.temperature));
  if (o.topK < 0) throw Error("--top-k: must be >= 0 (0 = no limit), got " + std::to_string(o.topK));
}

}  // namespace

uint64_t sampleSeed(uint64_t seed, uint64_t index) {
  auto mix = [](uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  return mix(mix(seed) ^ index);
}

TokenSampler::TokenSampler(const GenerateOptions& options)
    : temperature_(options.temperature), topK_(options.topK), rng_(options.seed) {
  validate(options);
}

int32_t TokenSampler::pick(const std::vector<float>& logits) {
  if (logits.empty()) throw Error("generate: the model returned no logits");
  // Candidates in order of decreasing logit, ties by lower id (the first maximum is argmax's).
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  size_t k = (topK_ > 0 && static_cast<size_t>(topK_) < order.size()) ? static_cast<size_t>(topK_) : order.size();
  if (temperature_ <= 0) k = 1;
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), better);
  if (k == 1) return order[0];
  double top = logits[order[0]];
  std::vector<double> weight(k);
  double total = 0;
  for (size_t i = 0; i < k; ++i) total += weight[i] = std::exp((static_cast<double>(logits[order[i]]) - top) / temperature_);
  // 53 random bits -> u in [0, 1); the last candidate absorbs rounding in the running sum.
  double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
  double run = 0;
  for (size_t i = 0; i + 1 < k; ++i) {
    run += weight[i];
    if (u < run) return order[i];
  }
  return order[k - 1];
}

std::vector<int32_t> generate(Model& model, const std::vector<int32_t>& prompt, const GenerateOptions& options,
                              const std::function<void(int32_t)>& onToken, jobs::Progress& progress) {
  if (prompt.empty()) throw Error("generate: the prompt encodes to no tokens; give a prompt or a BOS token");
  TokenSampler sampler(options);  // validates the options
  int window = options.contextWindow > 0 ? options.contextWindow : model.config().maxPositions;
  c10::InferenceMode guard;
  std::vector<int64_t> seq(prompt.begin(), prompt.end());
  std::vector<int32_t> out;
  for (int step = 0; step < options.maxNewTokens; ++step) {
    progress.checkCancel();
    size_t begin = (window > 0 && seq.size() > static_cast<size_t>(window)) ? seq.size() - window : 0;
    auto ids = at::tensor(std::vector<int64_t>(seq.begin() + begin, seq.end()), at::kLong)
                   .view({1, -1})
                   .to(model.device());
    auto logits = model.forward(ids);
    int32_t next;
    if (options.temperature <= 0) {
      next = static_cast<int32_t>(logits[0][-1].argmax().item<int64_t>());
    } else {
      auto row = logits[0][-1].to(at::kCPU, at::kFloat).contiguous();
      next = sampler.pick(std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel()));
    }
    out.push_back(next);
    seq.push_back(next);
    if (onToken) onToken(next);
    progress.update(static_cast<double>(step + 1) / options.maxNewTokens,
                    "token " + std::to_string(step + 1) + "/" + std::to_string(options.maxNewTokens));
    if (options.eosId && next == *options.eosId) break;
    if (std::find(options.extraStopIds.begin(), options.extraStopIds.end(), next) != options.extraStopIds.end()) break;
  }
  return out;
}

}  // namespace qs::model
