#include "core/eval/perplexity.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/eval/window_pass.h"
#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/oom_guard.h"

namespace qs::eval {

int resolveSeqlen(const model::Model& model, int requested) {
  int maxPos = model.config().maxPositions;
  if (requested < 0) throw Error("--seqlen: must be positive, got " + std::to_string(requested));
  if (requested == 0) return maxPos > 0 ? std::min(2048, maxPos) : 2048;
  if (requested < 2) throw Error("--seqlen: must be at least 2, got " + std::to_string(requested));
  if (maxPos > 0 && requested > maxPos)
    throw Error("--seqlen " + std::to_string(requested) + " exceeds the model's maximum of " +
                std::to_string(maxPos) + " positions");
  return requested;
}

PerplexityResult planWindows(const model::Model& model, int64_t datasetTokens, const PerplexityOptions& options) {
  PerplexityResult r;
  r.seqlen = resolveSeqlen(model, options.seqlen);
  if (options.batchSize < 1)
    throw Error("--batch-size: must be at least 1, got " + std::to_string(options.batchSize));
  r.datasetTokens = datasetTokens;
  r.totalWindows = r.datasetTokens / r.seqlen;
  if (r.totalWindows == 0)
    throw Error("the text has " + std::to_string(r.datasetTokens) + " tokens, fewer than one window of " +
                std::to_string(r.seqlen) + "; use a longer text or a smaller --seqlen");
  r.windows = options.limitWindows > 0 ? std::min(options.limitWindows, r.totalWindows) : r.totalWindows;
  return r;
}

namespace {

PerplexityResult evaluatePerplexityImpl(model::Model& model, const std::vector<int32_t>& tokens,
                                        const PerplexityOptions& options, jobs::Progress& progress) {
  PerplexityResult r = planWindows(model, static_cast<int64_t>(tokens.size()), options);

  runWindowPass(model, tokens, options.batchSize, r, progress);
  return r;
}

}  // namespace

void runWindowPass(model::Model& model, const std::vector<int32_t>& tokens, int batchSize, PerplexityResult& r,
                   jobs::Progress& progress, const std::function<void(int, const at::Tensor&)>& blockOutput) {
  c10::InferenceMode guard;
  auto all = at::from_blob(const_cast<int32_t*>(tokens.data()), {r.windows * r.seqlen}, at::kInt)
                 .to(at::kLong)
                 .view({r.windows, r.seqlen});
  const int64_t batch = batchSize;
  const int64_t batches = (r.windows + batch - 1) / batch;
  model::Workload work;
  work.batches = batches;
  work.rows = std::min<int64_t>(batch, r.windows);
  work.tokens = r.seqlen;
  const model::ExecPlan plan = model::planExecution(model, work, model.execOptions());
  r.streamed = plan.streaming;
  r.execution = plan.describe();

  double lossSum = 0;
  int64_t scored = 0;
  auto start = std::chrono::steady_clock::now();
  model::LayerwiseCallbacks cb;
  cb.input = [&](int64_t i) {
    const int64_t w = i * batch;
    return model::BatchInput{all.narrow(0, w, std::min<int64_t>(batch, r.windows - w)), at::Tensor()};
  };
  if (blockOutput)
    cb.blockOutput = [&](int block, int64_t, const model::BatchState&, const at::Tensor& h) { blockOutput(block, h); };
  cb.output = [&](int64_t, const model::BatchState& s, const at::Tensor& hidden) {
    const at::Tensor logits = model.head(hidden);  // [n, T, V] float32
    const int64_t n = logits.size(0);
    auto pred = logits.narrow(1, 0, r.seqlen - 1).reshape({-1, logits.size(2)});
    auto target = s.ids.narrow(1, 1, r.seqlen - 1).reshape({-1});
    // Per-window mean NLL, as the GPTQ loop computes loss one window at a time.
    auto nll = at::cross_entropy_loss(pred, target, {}, at::Reduction::None).view({n, r.seqlen - 1});
    lossSum += nll.mean(1).sum().item<double>();
    scored += n;
  };
  cb.status = [&] {
    if (scored == 0) return std::string();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char msg[96];
    std::snprintf(msg, sizeof msg, "ppl %.3f  %.0f tok/s", std::exp(lossSum / static_cast<double>(scored)),
                  secs > 0 ? static_cast<double>(scored * r.seqlen) / secs : 0.0);
    return std::string(msg);
  };
  progress.update(0, std::string(plan.streaming ? "streaming" : "whole model") + ", window 0/" +
                         std::to_string(r.windows));
  model::runLayerwise(model, plan, batches, cb, progress, batch == 1 ? "window" : "batch");
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.meanLoss = lossSum / static_cast<double>(r.windows);
  r.perplexity = std::exp(r.meanLoss);
  r.tokensEvaluated = r.windows * r.seqlen;
  r.tokensPerSecond = r.seconds > 0 ? static_cast<double>(r.tokensEvaluated) / r.seconds : 0;
}

PerplexityResult evaluatePerplexity(model::Model& model, const std::vector<int32_t>& tokens,
                                    const PerplexityOptions& options, jobs::Progress& progress) {
  OomContext oom{"perplexity evaluation", model.device().str(), {}, ""};
  int seqlen = options.seqlen;
  try {
    seqlen = resolveSeqlen(model, options.seqlen);
  } catch (const Error&) {
    // reported by the evaluation itself, with its own message
  }
  oom.add("batch size", "--batch-size", options.batchSize).add("window length", "--seqlen", seqlen);
  oom.hint = "or stream the model block by block (--exec stream, or a lower --max-memory)";
  return withOomMessage(oom, [&] { return evaluatePerplexityImpl(model, tokens, options, progress); });
}

}  // namespace qs::eval
