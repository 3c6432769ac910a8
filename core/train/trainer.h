// Pre-training a small OPT-style or LLaMA-style causal LM (core/train/causal_lm.h) on a token stream (the Quantizable Transformers
// experiments and QuantScope's own demo models): AdamW, warmup + cosine decay, gradient clipping
// and accumulation, periodic validation perplexity, atomic checkpoints with bit-identical resume.
// The output folder is a Hugging Face model folder openModel() loads. Torch-free header.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/eval/outlier_metrics.h"
#include "core/jobs/progress.h"
#include "core/model/config.h"
#include "core/train/causal_lm.h"

namespace qs::train {

struct ValPoint;

struct TrainOptions {
  // model
  int64_t hidden = 128;          // width
  int64_t layers = 4;            // decoder blocks
  int64_t heads = 4;             // attention heads
  int64_t ffn = 512;             // MLP width
  std::string architecture = "opt";  // "opt" (OPT-style) or "llama" (RMSNorm, SwiGLU, RoPE)
  int64_t kvHeads = 0;           // llama: key/value heads (0 = heads)
  model::AttentionVariant attention;  // vanilla, clipped softmax and/or gated
  // data
  int64_t seqlen = 128;          // tokens per training window (also max_position_embeddings)
  int64_t batch = 8;             // windows per micro-batch
  int64_t accum = 1;             // micro-batches per optimizer step
  double valFraction = 0.05;     // tail of the token stream held out for validation
  int64_t valWindows = 64;       // at most this many seqlen windows per validation
  // optimisation
  int64_t steps = 1000;          // optimizer steps
  double lr = 1e-3;              // peak learning rate
  int64_t warmup = 100;          // linear warmup steps
  double minLrRatio = 0.1;       // cosine decays to lr * minLrRatio
  double weightDecay = 0.1;      // AdamW decoupled decay (matrices and embeddings only)
  double clip = 1.0;             // global gradient-norm clip (<= 0: off)
  uint64_t seed = 0;             // init and batch sampling; same seed, same run
  // bookkeeping
  int64_t valEvery = 100;        // validation perplexity every N steps (0: only at the end)
  int64_t checkpointEvery = 100; // checkpoint every N steps (0: only at the end)
  std::string outDir;            // Hugging Face folder written here; checkpoint in outDir/checkpoint
  bool resume = false;           // continue from outDir/checkpoint when present
  int64_t stopAfter = 0;         // > 0: stop (with a checkpoint) after this step; for staged runs
  std::string saveDtype = "float32";  // model.safetensors of outDir: float32, float16 or bfloat16
                                     // (the checkpoint stays float32 for exact resume)
  std::string dtype = "float32";      // float32, or bfloat16: the forward/backward matrix products in
                                     // bfloat16, autocast style (CausalLm::setComputeDtype); parameters,
                                     // AdamW state, norms, softmax and loss stay float32
  std::string device = "cpu";        // cpu, cuda or cuda:N (CUDA only when LibTorch was built with it)
  bool outlierMetrics = false;   // at each validation also the outlier metrics (core/eval) of the
                                 // current weights, run through the inference engine
  std::function<void(const ValPoint&)> onValidation;  // called after each validation (run store)

  TrainOptions& withShape(int64_t h, int64_t l, int64_t nh, int64_t f) { hidden = h; layers = l; heads = nh; ffn = f; return *this; }
  TrainOptions& withAttention(const model::AttentionVariant& v) { attention = v; return *this; }
  TrainOptions& withBatch(int64_t b, int64_t s, int64_t a = 1) { batch = b; seqlen = s; accum = a; return *this; }
  TrainOptions& withSteps(int64_t n, int64_t w) { steps = n; warmup = w; return *this; }
  TrainOptions& withLr(double v) { lr = v; return *this; }
  TrainOptions& withSeed(uint64_t v) { seed = v; return *this; }
  TrainOptions& withOut(const std::string& dir) { outDir = dir; return *this; }
  TrainOptions& withResume(bool v) { resume = v; return *this; }
  TrainOptions& withStopAfter(int64_t v) { stopAfter = v; return *this; }
  TrainOptions& withEvery(int64_t val, int64_t ckpt) { valEvery = val; checkpointEvery = ckpt; return *this; }
  TrainOptions& withArchitecture(std::string v) { architecture = std::move(v); return *this; }
  TrainOptions& withOutlierMetrics(bool v) { outlierMetrics = v; return *this; }
  TrainOptions& withSaveDtype(std::string v) { saveDtype = std::move(v); return *this; }
  TrainOptions& withDtype(std::string v) { dtype = std::move(v); return *this; }
  TrainOptions& withDevice(std::string v) { device = std::move(v); return *this; }
};

struct ValPoint {
  int64_t step = 0;
  double perplexity = 0;
  // With TrainOptions::outlierMetrics: the same validation windows through the inference engine
  // (its perplexity agrees with `perplexity` up to float rounding).
  bool hasOutliers = false;
  eval::OutlierMetrics outliers;
};

struct TrainResult {
  int64_t startStep = 0;          // 0, or the checkpoint's step when resumed
  int64_t steps = 0;              // last completed step
  std::vector<double> losses;     // training loss per step run in this call
  std::vector<ValPoint> validation;
  double tokensPerSecond = 0;     // training tokens (batch * accum * seqlen per step) per wall second
  std::string device;             // the device trained on ("cpu", "cuda:0")
};

// Trains on `tokens` (ids < vocab). Writes outDir/{config.json, model.safetensors} and
// outDir/checkpoint/ at every checkpoint (atomically: a cancelled run keeps the last complete one).
// Throws qs::Cancelled when progress asks to stop, qs::Error for bad options naming the option.
TrainResult train(const std::vector<int32_t>& tokens, int64_t vocab, const TrainOptions& options,
                  jobs::Progress& progress = jobs::Progress::none());

// The model shape train() builds from the options (vocab from the tokenizer; positions = seqlen),
// so a caller can rebuild the training model of a finished run (makeCausalLm + loadValues).
CausalLmShape modelShape(const TrainOptions& options, int64_t vocab);

// The checks of options.device and options.dtype that train() makes first (qs::Error naming the
// option, e.g. CUDA asked of a CPU-only LibTorch), for callers that want them before reading text.
void checkDeviceAndDtype(const TrainOptions& options);

}  // namespace qs::train
