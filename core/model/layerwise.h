// Block-by-block execution of many batches of sequences (DESIGN.md seam 5). A model that fits the
// memory budget runs whole: each batch goes through every block, and the blocks stay loaded. One
// that does not streams: the embeddings of a group of batches are computed, then each block is
// materialised from the mmapped checkpoint in the compute dtype, every batch of the group runs
// through it, and it is released before the next; the head runs last. Peak memory is then one
// block (or the embedding/head) plus the hidden states of the group, whatever the model's size,
// and on a CUDA device the same loop puts one block at a time on the device.
//
// Both paths run the same batches through the same blocks, so their numbers are identical; only
// the order of work differs (block-major instead of batch-major), which per-site hooks and
// observers do not see: each site still sees its batches in order.
//
// Perplexity, task log-likelihoods, outlier metrics and the calibration captures (activation
// ranges, OS+ and SmoothQuant statistics) run through runLayerwise; the quantization pipeline and
// the analysis stream blocks the same way with their own loops.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "core/jobs/progress.h"
#include "core/model/exec_options.h"
#include "core/model/model.h"

namespace qs::model {

// The shape of the work, for the estimates: `batches` forward batches of at most rows x tokens.
struct Workload {
  int64_t batches = 1;
  int64_t rows = 1;
  int64_t tokens = 1;
  bool head = true;  // the head (logits) runs on every batch
};

struct ExecPlan {
  bool streaming = false;
  int blocks = 0;
  int64_t budgetBytes = 0;        // the budget the choice was made against
  std::string budgetSource;       // "--max-memory", "85% of MemAvailable", "85% of free CUDA memory"
  int64_t wholeBytes = 0;         // estimated peak of the whole-model path
  int64_t streamingBytes = 0;     // estimated peak of the streaming path with batchesPerGroup
  int64_t batchesPerGroup = 1;    // streaming: batches whose hidden states are held at once
  int64_t groups = 1;             // streaming: passes over the weights (one per group)
  bool fits = true;               // the chosen path's estimate is within the budget
  // "whole model (est. 1.2 GiB of 17.3 GiB budget)" / "streaming block by block: 32 blocks, 1 group
  // of 4 batches (est. 2.1 GiB of 3.0 GiB budget from --max-memory)".
  std::string describe() const;
};

// (budget bytes, where it came from) for `device`; maxMemoryBytes > 0 is taken as given.
std::pair<int64_t, std::string> memoryBudget(c10::Device device, int64_t maxMemoryBytes);

// Estimates in bytes: the hidden states of rows x tokens, the transient activations inside one
// block and in the head for such a batch (the element size of the compute dtype).
int64_t hiddenBytes(const Model& m, int64_t rows, int64_t tokens);
int64_t blockActivationBytes(const Model& m, int64_t rows, int64_t tokens);
int64_t headActivationBytes(const Model& m, int64_t rows, int64_t tokens);

// Chooses the path (options.mode; Auto compares the whole-model estimate with the budget) and,
// when streaming, how many batches share one pass over the weights.
ExecPlan planExecution(const Model& model, const Workload& work, const ExecOptions& options);

struct BatchInput {
  at::Tensor ids;   // [B, T] int64
  at::Tensor mask;  // [B, T] or undefined (all real tokens)
};

struct LayerwiseCallbacks {
  std::function<BatchInput(int64_t batch)> input;  // required; may be called more than once per batch
  // Required: batch `batch`'s hidden state after the last block (call model.head(hidden) for logits).
  std::function<void(int64_t batch, const BatchState& state, const at::Tensor& hidden)> output;
  // Optional: the hidden state after block `block`.
  std::function<void(int block, int64_t batch, const BatchState& state, const at::Tensor& hidden)> blockOutput;
  // Optional: appended to progress messages ("ppl 12.31").
  std::function<std::string()> status;
};

// Runs batches [0, batches) through the model as `plan` says; progress names the block and the
// batch ("block 3/32, window 2/4" with unit "window"). Throws qs::Cancelled when cancelled. The
// whole path leaves the blocks loaded; the streaming path leaves nothing loaded.
void runLayerwise(Model& model, const ExecPlan& plan, int64_t batches, const LayerwiseCallbacks& callbacks,
                  jobs::Progress& progress = jobs::Progress::none(), const std::string& unit = "batch");

// The workload of samples [N, T] run in batches of batchSize through every block, without the head.
Workload blocksWorkload(const at::Tensor& samples, int64_t batchSize);

// Runs samples [N, T] int64 (mask undefined: all real tokens) in batches of batchSize through every
// block without the head, as the model's exec options say: for the passes whose product is what
// the model's hooks and transforms see (activation ranges, migration statistics). Progress
// messages are "<what>: block 3/32, batch 2/4" (streaming) or "<what>: batch 2/4".
void runBlocks(Model& model, const at::Tensor& samples, int64_t batchSize, jobs::Progress& progress,
               const std::string& what);

}  // namespace qs::model
