#include "core/model/layerwise.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <vector>

#include "core/util/error.h"
#include "core/util/memory.h"

namespace qs::model {
namespace {

// Share of the available memory a job plans to use by default: the rest is the process's own
// code and allocator slack, the page cache and the other programs of the machine.
constexpr double kDefaultShare = 0.85;

int64_t computeElementBytes(const Model& m) {
  // A CPU has no float16 GEMM: float16 weights are kept, activations are float32 (decoder_model).
  if (m.dtype() == at::kHalf && m.device().is_cpu()) return 4;
  return static_cast<int64_t>(c10::elementSize(m.dtype()));
}

}  // namespace

const char* execModeName(ExecMode m) {
  switch (m) {
    case ExecMode::Auto: return "auto";
    case ExecMode::Whole: return "whole";
    case ExecMode::Streaming: return "stream";
  }
  return "auto";
}

ExecMode parseExecMode(const std::string& text, const std::string& key) {
  if (text == "auto") return ExecMode::Auto;
  if (text == "whole") return ExecMode::Whole;
  if (text == "stream" || text == "streaming") return ExecMode::Streaming;
  throw Error(key + ": expected auto, whole or stream, got '" + text + "'");
}

std::pair<int64_t, std::string> memoryBudget(c10::Device device, int64_t maxMemoryBytes) {
  if (maxMemoryBytes > 0) return {maxMemoryBytes, "--max-memory"};
  if (device.is_cuda()) {
    int64_t freeBytes = 0, totalBytes = 0;
    if (deviceMemory(device.index() < 0 ? 0 : device.index(), freeBytes, totalBytes))
      return {static_cast<int64_t>(kDefaultShare * static_cast<double>(freeBytes)), "85% of free CUDA memory"};
    return {0, "unknown (no CUDA memory query registered)"};
  }
  const HostMemory h = hostMemory();
  if (h.availableBytes <= 0) return {0, "unknown (no /proc/meminfo)"};
  return {static_cast<int64_t>(kDefaultShare * static_cast<double>(h.availableBytes)), "85% of " + h.source};
}

int64_t hiddenBytes(const Model& m, int64_t rows, int64_t tokens) {
  return rows * tokens * m.config().hiddenSize * computeElementBytes(m);
}

int64_t blockActivationBytes(const Model& m, int64_t rows, int64_t tokens) {
  const ModelConfig& c = m.config();
  const int64_t e = computeElementBytes(m);
  const int64_t rt = rows * tokens;
  // normed input, residual sum, attention context and output; q/k/v and their RoPE copies; the
  // MLP's two projections and their product; one query chunk of float32 scores and probabilities.
  const int64_t perToken = 4 * c.hiddenSize + 2 * (c.numHeads + 2 * c.numKvHeads) * c.headDim + 3 * c.intermediateSize;
  const int64_t scores = rows * c.numHeads * 128 * tokens * 4 * 2;
  // The additive attention bias of the batch ([B, H or 1, T, T] float32; ALiBi keeps a head axis).
  const int64_t bias = rows * (c.alibi ? c.numHeads : 1) * tokens * tokens * 4;
  return rt * perToken * e + scores + bias;
}

int64_t headActivationBytes(const Model& m, int64_t rows, int64_t tokens) {
  // float32 logits, their log-softmax in the loss, the normed hidden state.
  return rows * tokens * (m.config().vocabSize * 4 * 2 + m.config().hiddenSize * 4);
}

std::string ExecPlan::describe() const {
  const std::string budget = budgetBytes > 0 ? formatMemory(budgetBytes) + " budget (" + budgetSource + ")"
                                             : "no known budget";
  if (!streaming)
    return "whole model (est. " + formatMemory(wholeBytes) + " of " + budget + ")";
  const std::string passes = groups == 1 ? std::string()
                                         : ", " + std::to_string(groups) + " passes over the weights of " +
                                               std::to_string(batchesPerGroup) +
                                               (batchesPerGroup == 1 ? " batch" : " batches") + " each";
  return "streaming block by block (" + std::to_string(blocks) + " blocks" + passes + "; est. " +
         formatMemory(streamingBytes) + " of " + budget + "; the whole model would need " +
         formatMemory(wholeBytes) + ")";
}

ExecPlan planExecution(const Model& model, const Workload& work, const ExecOptions& options) {
  ExecPlan p;
  p.blocks = model.numBlocks();
  std::tie(p.budgetBytes, p.budgetSource) = memoryBudget(model.device(), options.maxMemoryBytes);
  const Model::Footprint f = model.footprint();
  const int64_t rows = std::max<int64_t>(1, work.rows), tokens = std::max<int64_t>(1, work.tokens);
  const int64_t batches = std::max<int64_t>(1, work.batches);
  const int64_t hidden = hiddenBytes(model, rows, tokens);
  const int64_t block = blockActivationBytes(model, rows, tokens);
  const int64_t head = work.head ? headActivationBytes(model, rows, tokens) : 0;
  p.wholeBytes = f.totalBytes() + 2 * hidden + std::max(block, head);
  // Streaming, n batches per pass: the embedding phase holds the table and n hidden states; a
  // block phase one block, n + 1 hidden states and one batch's activations; the head phase the
  // head, n hidden states and one batch's logits.
  auto streamingPeak = [&](int64_t n) {
    const int64_t embedPhase = f.embeddingBytes + (n + 1) * hidden;
    const int64_t blockPhase = f.maxBlockBytes() + (n + 1) * hidden + block;
    const int64_t headPhase = f.headBytes + n * hidden + head;
    return std::max({embedPhase, blockPhase, headPhase});
  };
  bool stream = false;
  switch (options.mode) {
    case ExecMode::Whole: stream = false; break;
    case ExecMode::Streaming: stream = true; break;
    case ExecMode::Auto: stream = p.budgetBytes > 0 && p.wholeBytes > p.budgetBytes; break;
  }
  p.streaming = stream;
  if (!stream) {
    p.fits = p.budgetBytes <= 0 || p.wholeBytes <= p.budgetBytes;
    p.batchesPerGroup = batches;
    p.streamingBytes = streamingPeak(batches);
    return p;
  }
  // As many batches per pass as the budget holds (every pass re-reads the weights).
  int64_t n = batches;
  if (p.budgetBytes > 0) {
    const int64_t fixed = streamingPeak(0);
    n = hidden > 0 ? std::max<int64_t>(1, std::min<int64_t>(batches, (p.budgetBytes - fixed) / hidden)) : batches;
    while (n > 1 && streamingPeak(n) > p.budgetBytes) --n;
  }
  p.batchesPerGroup = n;
  p.groups = (batches + n - 1) / n;
  p.streamingBytes = streamingPeak(n);
  p.fits = p.budgetBytes <= 0 || p.streamingBytes <= p.budgetBytes;
  return p;
}

void runLayerwise(Model& model, const ExecPlan& plan, int64_t batches, const LayerwiseCallbacks& cb,
                  jobs::Progress& progress, const std::string& unit) {
  if (!cb.input || !cb.output) throw std::logic_error("runLayerwise: input and output callbacks are required");
  c10::InferenceMode guard;
  const int blocks = model.numBlocks();
  auto message = [&](const std::string& where) {
    const std::string extra = cb.status ? cb.status() : std::string();
    return extra.empty() ? where : where + "  " + extra;
  };
  auto fetch = [&](int64_t i) {
    BatchInput in = cb.input(i);
    in.ids = in.ids.to(model.device(), at::kLong);
    if (in.mask.defined()) in.mask = in.mask.to(model.device());
    return in;
  };
  const std::string ofTotal = "/" + std::to_string(batches);
  if (!plan.streaming) {
    for (int64_t i = 0; i < batches; ++i) {
      progress.checkCancel();
      const BatchInput in = fetch(i);
      const BatchState s = model.prepare(in.ids, in.mask);
      at::Tensor h = model.embed(s);
      for (int b = 0; b < blocks; ++b) {
        h = model.runBlock(b, h, s);
        if (cb.blockOutput) cb.blockOutput(b, i, s, h);
      }
      cb.output(i, s, h);
      progress.update(static_cast<double>(i + 1) / static_cast<double>(batches),
                      message(unit + " " + std::to_string(i + 1) + ofTotal));
    }
    return;
  }

  // Nothing stays loaded from an earlier whole-model pass: the budget is for one block.
  model.releaseAll();
  const int64_t perGroup = std::max<int64_t>(1, plan.batchesPerGroup);
  // Steps: per batch an embedding, one per block and the head.
  const double totalSteps = static_cast<double>(batches) * (blocks + 2);
  double done = 0;
  for (int64_t g0 = 0; g0 < batches; g0 += perGroup) {
    const int64_t n = std::min(perGroup, batches - g0);
    std::vector<at::Tensor> hidden(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
      progress.checkCancel();
      const BatchInput in = fetch(g0 + k);
      hidden[static_cast<size_t>(k)] = model.embed(model.prepare(in.ids, in.mask));
      progress.update(++done / totalSteps, message("embedding, " + unit + " " + std::to_string(g0 + k + 1) + ofTotal));
    }
    model.releaseEmbedding();
    for (int b = 0; b < blocks; ++b) {
      model.materialize(b);
      for (int64_t k = 0; k < n; ++k) {
        progress.checkCancel();
        // The batch state (mask, positions, attention bias, RoPE tables) is rebuilt per block:
        // cheap next to a block, and an ALiBi bias kept per batch would cost more than the hidden state.
        const BatchInput in = fetch(g0 + k);
        const BatchState s = model.prepare(in.ids, in.mask);
        at::Tensor& h = hidden[static_cast<size_t>(k)];
        h = model.runBlock(b, h, s);
        if (cb.blockOutput) cb.blockOutput(b, g0 + k, s, h);
        progress.update(++done / totalSteps, message("block " + std::to_string(b + 1) + "/" + std::to_string(blocks) +
                                                     ", " + unit + " " + std::to_string(g0 + k + 1) + ofTotal));
      }
      model.release(b);
    }
    for (int64_t k = 0; k < n; ++k) {
      progress.checkCancel();
      const BatchInput in = fetch(g0 + k);
      const BatchState s = model.prepare(in.ids, in.mask);
      cb.output(g0 + k, s, hidden[static_cast<size_t>(k)]);
      hidden[static_cast<size_t>(k)] = at::Tensor();
      progress.update(++done / totalSteps, message("head, " + unit + " " + std::to_string(g0 + k + 1) + ofTotal));
    }
    model.releaseHead();
  }
}

Workload blocksWorkload(const at::Tensor& samples, int64_t batchSize) {
  const int64_t n = samples.size(0);
  batchSize = std::max<int64_t>(1, batchSize);
  Workload work;
  work.batches = (n + batchSize - 1) / batchSize;
  work.rows = std::min(batchSize, n);
  work.tokens = samples.size(1);
  work.head = false;
  return work;
}

void runBlocks(Model& model, const at::Tensor& samples, int64_t batchSize, jobs::Progress& progress,
               const std::string& what) {
  const int64_t n = samples.size(0);
  batchSize = std::max<int64_t>(1, batchSize);
  const Workload work = blocksWorkload(samples, batchSize);
  const ExecPlan plan = planExecution(model, work, model.execOptions());
  LayerwiseCallbacks cb;
  cb.input = [&](int64_t i) {
    return BatchInput{samples.narrow(0, i * batchSize, std::min(batchSize, n - i * batchSize)), at::Tensor()};
  };
  cb.output = [](int64_t, const BatchState&, const at::Tensor&) {};
  struct Prefixed : jobs::Progress {
    jobs::Progress& parent;
    std::string prefix;
    Prefixed(jobs::Progress& p, std::string w) : parent(p), prefix(std::move(w)) {}
    void update(double f, const std::string& m) override { parent.update(f, prefix + ": " + m); }
    bool cancelRequested() const override { return parent.cancelRequested(); }
  } prefixed(progress, what);
  runLayerwise(model, plan, work.batches, cb, prefixed, "batch");
}

}  // namespace qs::model
