// The GPTQ-protocol window pass that evaluatePerplexity and evaluateOutlierMetrics share: the
// planned windows as batches through model/layerwise (whole or streamed), each window's mean
// next-token loss summed, and the result's timing, loss and path filled in. Internal to core/eval.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/eval/perplexity.h"
#include "core/model/layerwise.h"

namespace qs::eval {

// r: planWindows' result (windows, seqlen); blockOutput: an optional per-block observer (outlier
// metrics). Fills r.meanLoss, perplexity, seconds, tokensEvaluated, tokensPerSecond, streamed and
// execution. Throws qs::Cancelled.
void runWindowPass(model::Model& model, const std::vector<int32_t>& tokens, int batchSize, PerplexityResult& r,
                   jobs::Progress& progress,
                   const std::function<void(int block, const at::Tensor& hidden)>& blockOutput = {});

}  // namespace qs::eval
