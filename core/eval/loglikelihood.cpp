#include "core/eval/loglikelihood.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>

#include "core/io/tokenizer/tokenizer.h"
#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/oom_guard.h"

namespace qs::eval {
namespace {

bool isPySpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// One forward-pass row: the longest input of a group of requests that share its prefix.
struct Row {
  std::vector<int32_t> input;
  std::vector<size_t> members;  // request indices scored from this row
};

bool startsWith(const std::vector<int32_t>& s, const std::vector<int32_t>& prefix) {
  return prefix.size() <= s.size() && std::equal(prefix.begin(), prefix.end(), s.begin());
}

}  // namespace

LoglikelihoodStats& LoglikelihoodStats::operator+=(const LoglikelihoodStats& o) {
  requests += o.requests;
  rows += o.rows;
  forwards += o.forwards;
  tokens += o.tokens;
  paddedTokens += o.paddedTokens;
  truncated += o.truncated;
  seconds += o.seconds;
  streamed = streamed || o.streamed;
  if (execution.empty()) execution = o.execution;
  return *this;
}

TokenizedRequest encodeRequest(const io::Tokenizer& tokenizer, const LoglikelihoodRequest& request,
                               bool addBos) {
  auto encode = [&](const std::string& s) {
    auto ids = tokenizer.encode(s, false);
    if (addBos && tokenizer.bosId()) ids.insert(ids.begin(), *tokenizer.bosId());
    return ids;
  };
  TokenizedRequest t;
  if (request.context.empty()) {
    // The harness scores a context-free continuation after its prefix token.
    auto prefix = tokenizer.bosId() ? tokenizer.bosId() : tokenizer.eosId();
    if (!prefix) throw Error("an empty context needs a BOS or EOS token, and the tokenizer has neither");
    t.context = {*prefix};
    t.continuation = tokenizer.encode(request.continuation, false);
  } else {
    // Whitespace at the end of the context belongs to the continuation: most tokenizers glue a
    // space to the following word, so " Paris" is one token while "capital is " + "Paris" is not.
    std::string context = request.context, continuation = request.continuation;
    size_t end = context.size();
    while (end > 0 && isPySpace(context[end - 1])) --end;
    continuation = context.substr(end) + continuation;
    context.resize(end);
    auto whole = encode(context + continuation);
    t.context = encode(context);
    if (t.context.size() < whole.size())
      t.continuation.assign(whole.begin() + static_cast<std::ptrdiff_t>(t.context.size()), whole.end());
    if (t.context.empty()) {  // the context was only whitespace: same as an empty one
      return encodeRequest(tokenizer, {"", continuation}, addBos);
    }
  }
  if (t.continuation.empty())
    throw Error("continuation \"" + request.continuation.substr(0, 60) + "\" encodes to no tokens after context \"" +
                request.context.substr(request.context.size() > 60 ? request.context.size() - 60 : 0) + "\"");
  return t;
}

std::vector<int32_t> modelInput(const TokenizedRequest& request, int maxLength) {
  std::vector<int32_t> all = request.context;
  all.insert(all.end(), request.continuation.begin(), request.continuation.end());
  size_t keep = std::min(all.size(), static_cast<size_t>(maxLength) + 1);
  return std::vector<int32_t>(all.end() - static_cast<std::ptrdiff_t>(keep), all.end() - 1);
}

int resolveMaxLength(const model::Model& model, int requested) {
  int maxPos = model.config().maxPositions;
  if (requested < 0) throw Error("--max-length: must be positive, got " + std::to_string(requested));
  if (requested == 0) return maxPos > 0 ? maxPos : 2048;
  if (requested < 2) throw Error("--max-length: must be at least 2, got " + std::to_string(requested));
  if (maxPos > 0 && requested > maxPos)
    throw Error("--max-length " + std::to_string(requested) + " exceeds the model's maximum of " +
                std::to_string(maxPos) + " positions");
  return requested;
}

namespace {

std::vector<LoglikelihoodResult> computeLoglikelihoodsImpl(model::Model& model,
                                                           const std::vector<TokenizedRequest>& requests,
                                                           const LoglikelihoodOptions& options,
                                                           jobs::Progress& progress, LoglikelihoodStats* statsOut) {
  const int maxLength = resolveMaxLength(model, options.maxLength);
  if (options.batchSize < 1)
    throw Error("--batch-size: must be at least 1, got " + std::to_string(options.batchSize));
  const size_t n = requests.size();
  std::vector<LoglikelihoodResult> results(n);
  LoglikelihoodStats stats;
  stats.requests = static_cast<int64_t>(n);
  if (n == 0) {
    if (statsOut) *statsOut = stats;
    return results;
  }
  auto start = std::chrono::steady_clock::now();

  std::vector<std::vector<int32_t>> inputs(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& r = requests[i];
    if (r.context.empty() || r.continuation.empty())
      throw Error("log-likelihood request " + std::to_string(i) + " has an empty context or continuation");
    inputs[i] = modelInput(r, maxLength);
    // A continuation longer than the window keeps its last maxLength tokens (the harness cannot
    // score such a request at all); `truncated` and `tokens` say so.
    results[i].tokens = static_cast<int>(std::min(r.continuation.size(), inputs[i].size()));
    results[i].truncated = r.context.size() + r.continuation.size() > static_cast<size_t>(maxLength) + 1;
    stats.truncated += results[i].truncated;
  }

  // Group requests into rows. In lexicographic order, an input that is a prefix of others comes
  // right before them, so walking backwards each input either extends into the next one's row
  // or starts a row. A causal model's logits at a position do not depend on later tokens, so a
  // request scored inside a longer row gets the numbers a row of its own would.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return inputs[a] != inputs[b] ? inputs[a] < inputs[b] : a < b;
  });
  std::vector<Row> rows;
  std::vector<size_t> rowOf(n);
  for (size_t k = n; k-- > 0;) {
    size_t i = order[k];
    if (k + 1 < n) {
      size_t next = order[k + 1];
      bool share = options.reusePrefixes ? startsWith(inputs[next], inputs[i]) : inputs[next] == inputs[i];
      if (share) {
        rowOf[i] = rowOf[next];
        rows[rowOf[i]].members.push_back(i);
        continue;
      }
    }
    rowOf[i] = rows.size();
    rows.push_back({inputs[i], {i}});
  }
  // Longest rows first: batches hold rows of similar length and the first batch shows the peak
  // memory at once rather than at the end.
  std::vector<size_t> rowOrder(rows.size());
  std::iota(rowOrder.begin(), rowOrder.end(), size_t{0});
  std::stable_sort(rowOrder.begin(), rowOrder.end(),
                   [&](size_t a, size_t b) { return rows[a].input.size() > rows[b].input.size(); });
  stats.rows = static_cast<int64_t>(rows.size());

  c10::InferenceMode guard;
  // Batches of rows of similar length, fixed before any forward pass so the streaming path
  // (model/layerwise.h) runs exactly the batches the whole-model path runs.
  struct Batch {
    size_t first = 0;  // into rowOrder
    int64_t rows = 0, tokens = 0;
  };
  std::vector<Batch> batches;
  for (size_t done = 0; done < rowOrder.size();) {
    const int64_t T = static_cast<int64_t>(rows[rowOrder[done]].input.size());
    int64_t B = std::min<int64_t>(options.batchSize, static_cast<int64_t>(rowOrder.size() - done));
    if (options.maxBatchTokens > 0) B = std::max<int64_t>(1, std::min<int64_t>(B, options.maxBatchTokens / T));
    batches.push_back({done, B, T});
    done += static_cast<size_t>(B);
  }
  const auto makeIds = [&](const Batch& bt) {
    model::BatchInput in{at::zeros({bt.rows, bt.tokens}, at::kLong), at::zeros({bt.rows, bt.tokens}, at::kLong)};
    auto idsA = in.ids.accessor<int64_t, 2>();
    auto maskA = in.mask.accessor<int64_t, 2>();
    for (int64_t b = 0; b < bt.rows; ++b) {
      const Row& row = rows[rowOrder[bt.first + static_cast<size_t>(b)]];
      for (size_t t = 0; t < row.input.size(); ++t) {
        idsA[b][static_cast<int64_t>(t)] = row.input[t];
        maskA[b][static_cast<int64_t>(t)] = 1;
      }
    }
    return in;
  };
  model::Workload work;
  work.batches = static_cast<int64_t>(batches.size());
  for (const auto& bt : batches) {
    work.rows = std::max(work.rows, bt.rows);
    work.tokens = std::max(work.tokens, bt.tokens);
  }
  const model::ExecPlan plan = model::planExecution(model, work, model.execOptions());
  stats.streamed = plan.streaming;
  stats.execution = plan.describe();

  size_t scored = 0;
  model::LayerwiseCallbacks cb;
  cb.input = [&](int64_t k) { return makeIds(batches[static_cast<size_t>(k)]); };
  cb.output = [&](int64_t k, const model::BatchState&, const at::Tensor& hidden) {
    const Batch& bt = batches[static_cast<size_t>(k)];
    // Scored positions of every member request, flattened for one gather.
    std::vector<int64_t> rowIdx, posIdx, target;
    std::vector<std::pair<size_t, size_t>> spans;  // request -> [begin, end) in the flat arrays
    for (int64_t b = 0; b < bt.rows; ++b) {
      const Row& row = rows[rowOrder[bt.first + static_cast<size_t>(b)]];
      stats.tokens += static_cast<int64_t>(row.input.size());
      for (size_t i : row.members) {
        const auto& cont = requests[i].continuation;
        // The last `scored` positions of this request's own input predict the continuation's
        // last `scored` tokens.
        const size_t nScored = static_cast<size_t>(results[i].tokens);
        int64_t first = static_cast<int64_t>(inputs[i].size() - nScored);
        size_t begin = target.size();
        for (size_t j = 0; j < nScored; ++j) {
          rowIdx.push_back(b);
          posIdx.push_back(first + static_cast<int64_t>(j));
          target.push_back(cont[cont.size() - nScored + j]);
        }
        spans.emplace_back(i, begin);
      }
    }
    stats.paddedTokens += bt.rows * bt.tokens;
    ++stats.forwards;

    auto logits = model.head(hidden);  // [B, T, V] float32
    auto dev = logits.device();
    auto r = at::tensor(rowIdx, at::kLong).to(dev), p = at::tensor(posIdx, at::kLong).to(dev);
    auto y = at::tensor(target, at::kLong).to(dev);
    auto picked = logits.index({r, p});  // [N, V]: only the scored positions
    auto logp = (picked.gather(1, y.unsqueeze(1)).squeeze(1) - picked.logsumexp(1)).to(at::kCPU).contiguous();
    auto greedy = (picked.argmax(1) == y).to(at::kCPU).contiguous();
    const float* lp = logp.data_ptr<float>();
    const bool* gr = greedy.data_ptr<bool>();
    for (auto& [i, begin] : spans) {
      double sum = 0;
      bool all = true;
      for (size_t j = 0; j < static_cast<size_t>(results[i].tokens); ++j) {
        sum += lp[begin + j];
        all = all && gr[begin + j];
      }
      results[i].logprob = sum;
      results[i].isGreedy = all;
    }
    scored += spans.size();
  };
  cb.status = [&] {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char msg[128];
    std::snprintf(msg, sizeof msg, "request %zu/%zu  %.0f req/s", scored, n, secs > 0 ? scored / secs : 0.0);
    return std::string(msg);
  };
  progress.update(0, "request 0/" + std::to_string(n));
  model::runLayerwise(model, plan, static_cast<int64_t>(batches.size()), cb, progress, "batch");
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (statsOut) *statsOut = stats;
  return results;
}
}  // namespace

std::vector<LoglikelihoodResult> computeLoglikelihoods(model::Model& model,
                                                       const std::vector<TokenizedRequest>& requests,
                                                       const LoglikelihoodOptions& options,
                                                       jobs::Progress& progress, LoglikelihoodStats* statsOut) {
  OomContext oom{"task evaluation", model.device().str(), {}, ""};
  int maxLength = options.maxLength;
  try {
    maxLength = resolveMaxLength(model, options.maxLength);
  } catch (const Error&) {
    // reported by the evaluation itself, with its own message
  }
  oom.add("task batch size", "--task-batch-size", options.batchSize).add("maximum length", "", maxLength);
  oom.hint = "or stream the model block by block (--exec stream, or a lower --max-memory)";
  return withOomMessage(oom, [&] { return computeLoglikelihoodsImpl(model, requests, options, progress, statsOut); });
}

std::vector<LoglikelihoodResult> computeLoglikelihoods(model::Model& model, const io::Tokenizer& tokenizer,
                                                       const std::vector<LoglikelihoodRequest>& requests,
                                                       const LoglikelihoodOptions& options,
                                                       jobs::Progress& progress, LoglikelihoodStats* stats) {
  std::vector<TokenizedRequest> tokenized;
  tokenized.reserve(requests.size());
  for (const auto& r : requests) tokenized.push_back(encodeRequest(tokenizer, r, options.addBos));
  return computeLoglikelihoods(model, tokenized, options, progress, stats);
}

}  // namespace qs::eval
