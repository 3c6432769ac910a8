// Perplexity under the GPTQ protocol (DESIGN.md seam 7): the text is tokenized once, cut into
// non-overlapping windows of `seqlen` tokens (remainder dropped), each window scored on its
// own (seqlen - 1 predictions), ppl = exp(mean of the window losses). The protocol name,
// seqlen and token counts travel with every number.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/jobs/progress.h"

namespace qs::model {
class Model;
}

namespace qs::eval {

inline constexpr const char* kGptqProtocol = "gptq-nonoverlapping";

struct PerplexityOptions {
  int seqlen = 0;              // window length; 0 = min(2048, model max positions)
  int batchSize = 1;           // windows per forward pass
  int64_t limitWindows = 0;    // score only the first N windows; 0 = all

  PerplexityOptions& setSeqlen(int v) { seqlen = v; return *this; }
  PerplexityOptions& setBatchSize(int v) { batchSize = v; return *this; }
  PerplexityOptions& setLimitWindows(int64_t v) { limitWindows = v; return *this; }
};

struct PerplexityResult {
  std::string protocol = kGptqProtocol;
  double perplexity = 0;       // exp(meanLoss)
  double meanLoss = 0;         // mean over windows of the mean next-token NLL (nats)
  int seqlen = 0;
  int64_t windows = 0;         // windows scored
  int64_t totalWindows = 0;    // windows the full text gives
  int64_t datasetTokens = 0;   // tokens in the tokenized text
  int64_t tokensEvaluated = 0; // windows * seqlen (tokens pushed through the model)
  double seconds = 0;
  double tokensPerSecond = 0;  // tokensEvaluated / seconds
  bool streamed = false;       // ran block by block (model/layerwise.h), else whole
  std::string execution;       // ExecPlan::describe() of the path that ran
};

// Resolves seqlen 0 and checks it against the model (message names --seqlen).
int resolveSeqlen(const model::Model& model, int requested);

// The windows a GPTQ-protocol pass over datasetTokens scores: seqlen (resolved), datasetTokens,
// totalWindows and windows filled in; qs::Error for a bad --batch-size or a text shorter than one
// window. Shared by evaluatePerplexity and evaluateOutlierMetrics.
PerplexityResult planWindows(const model::Model& model, int64_t datasetTokens, const PerplexityOptions& options);

// Throws qs::Error for texts shorter than one window, qs::Cancelled when cancelled.
PerplexityResult evaluatePerplexity(model::Model& model, const std::vector<int32_t>& tokens,
                                    const PerplexityOptions& options,
                                    jobs::Progress& progress = jobs::Progress::none());

}  // namespace qs::eval
