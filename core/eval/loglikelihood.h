// The log-likelihood engine behind the zero-shot tasks: for (context, continuation) requests,
// the summed log-probability of the continuation tokens and whether greedy decoding would have
// produced them. Tokenization, truncation and scoring follow lm-evaluation-harness's HF model
// (loglikelihood requests) so the numbers can sit beside its tables; see docs/TASKS.md.
// Torch-free: the GUI and the task layer include it directly.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/jobs/progress.h"

namespace qs::io {
class Tokenizer;
}
namespace qs::model {
class Model;
}

namespace qs::eval {

struct LoglikelihoodRequest {
  std::string context;        // prompt; trailing whitespace moves to the continuation
  std::string continuation;   // scored text, usually starting with " "
};

// A request in token ids: the model sees context + continuation, the last |continuation|
// predictions are scored.
struct TokenizedRequest {
  std::vector<int32_t> context;       // never empty (an empty text context becomes [BOS or EOS])
  std::vector<int32_t> continuation;  // never empty
};

struct LoglikelihoodResult {
  double logprob = 0;         // sum over continuation tokens of log p(token | everything before)
  bool isGreedy = false;      // every continuation token is the argmax of its prediction
  int tokens = 0;             // continuation tokens scored (fewer than it has only when it is
                              // longer than maxLength: then its last maxLength tokens)
  bool truncated = false;     // the input was left-truncated to fit maxLength
};

struct LoglikelihoodOptions {
  int batchSize = 32;             // rows per forward pass
  int64_t maxBatchTokens = 16384; // cap on rows x longest row per forward (bounds the logits); 0 = none
  int maxLength = 0;              // longest model input; 0 = the model's max positions (2048 if unknown)
  bool addBos = false;            // prepend BOS to every text (the harness's HF default is off)
  bool reusePrefixes = true;      // score a request inside a longer row whose input starts with its input

  LoglikelihoodOptions& withBatchSize(int v) { batchSize = v; return *this; }
  LoglikelihoodOptions& withMaxBatchTokens(int64_t v) { maxBatchTokens = v; return *this; }
  LoglikelihoodOptions& withMaxLength(int v) { maxLength = v; return *this; }
  LoglikelihoodOptions& withAddBos(bool v) { addBos = v; return *this; }
  LoglikelihoodOptions& withReusePrefixes(bool v) { reusePrefixes = v; return *this; }
};

// What a scoring pass cost (requests per second is the number users compare).
struct LoglikelihoodStats {
  int64_t requests = 0;
  int64_t rows = 0;             // model input rows after prefix reuse
  int64_t forwards = 0;         // forward passes (batches)
  int64_t tokens = 0;           // real tokens pushed through the model
  int64_t paddedTokens = 0;     // tokens including padding
  int64_t truncated = 0;        // requests whose context was left-truncated
  double seconds = 0;
  bool streamed = false;        // ran block by block (model/layerwise.h)
  std::string execution;        // ExecPlan::describe() of the path that ran

  double requestsPerSecond() const { return seconds > 0 ? requests / seconds : 0; }
  LoglikelihoodStats& operator+=(const LoglikelihoodStats& o);
};

// The harness's pair encoding: trailing whitespace of the context joins the continuation,
// context and context+continuation are encoded separately (no special tokens unless addBos)
// and the continuation is the tail of the joint encoding beyond the context's length. An empty
// context becomes [BOS] (or [EOS] when the tokenizer has no BOS). Throws qs::Error when the
// continuation encodes to no tokens.
TokenizedRequest encodeRequest(const io::Tokenizer& tokenizer, const LoglikelihoodRequest& request,
                               bool addBos = false);

// The model input of one request, as the harness builds it: (context + continuation) keeping
// the last maxLength + 1 tokens, without its final token. Exposed for tests.
std::vector<int32_t> modelInput(const TokenizedRequest& request, int maxLength);

// Resolves maxLength 0 against the model.
int resolveMaxLength(const model::Model& model, int requested);

// Scores requests in batches sorted by length (longest first, so little padding), right-padded;
// results come back in the order given. Throws qs::Cancelled when progress asks for it.
std::vector<LoglikelihoodResult> computeLoglikelihoods(model::Model& model,
                                                       const std::vector<TokenizedRequest>& requests,
                                                       const LoglikelihoodOptions& options = {},
                                                       jobs::Progress& progress = jobs::Progress::none(),
                                                       LoglikelihoodStats* stats = nullptr);

// Text requests: encodeRequest on each, then the token form.
std::vector<LoglikelihoodResult> computeLoglikelihoods(model::Model& model, const io::Tokenizer& tokenizer,
                                                       const std::vector<LoglikelihoodRequest>& requests,
                                                       const LoglikelihoodOptions& options = {},
                                                       jobs::Progress& progress = jobs::Progress::none(),
                                                       LoglikelihoodStats* stats = nullptr);

}  // namespace qs::eval
