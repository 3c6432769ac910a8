// The decoder engine: one Model class over every supported family (OPT, BLOOM, LLaMA/Mistral,
// Falcon, GPT-2, GPT-NeoX). A family is an adapter from Hugging Face names to a common block
// structure; every Linear is a named quantization site ("layers.3.self_attn.q_proj") whose
// input can be captured and whose weight can be swapped.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/model/config.h"
#include "core/model/exec_options.h"

namespace qs::io {
class WeightSource;
}

namespace qs::model {

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;   // compute/storage dtype of weights: kFloat, kHalf, kBFloat16
  c10::Device device = c10::kCPU;      // where blocks are materialised
};

// Per-batch state shared by all blocks: attention mask, positions, RoPE/ALiBi tables.
struct BatchState {
  at::Tensor ids;        // [B, T] int64
  at::Tensor mask;       // [B, T] 1 = real token, 0 = padding (right or left padded)
  at::Tensor positions;  // [B, T] int64 position ids (cumsum(mask) - 1, clamped at 0)
  at::Tensor attnBias;   // [B or 1, H or 1, T, T] additive bias: causal + padding (+ ALiBi, window)
  at::Tensor cos, sin;   // RoPE tables [B, T, rotaryDim] (undefined for non-RoPE families)
};

// A quantization site: one Linear in [out, in] layout (GPT-2 Conv1D weights are transposed on
// load). Fused QKV projections (BLOOM, Falcon, NeoX, GPT-2 c_attn) are one site.
struct SiteInfo {
  std::string name;        // "layers.3.self_attn.q_proj"
  std::string hfWeight;    // "model.layers.3.self_attn.q_proj.weight"
  int block = -1;
  int64_t outFeatures = 0, inFeatures = 0;
  bool hasBias = false;
  // Sites of one block with equal inputGroup read the very same input tensor (q/k/v; gate/up;
  // qkv and fc1 of a parallel block fed by one norm), so one activation quantizer serves them.
  int inputGroup = -1;
};

// Where a channel-wise transform of a site input can be migrated exactly into the neighbouring
// layers (OS+ shifting/scaling, SmoothQuant). Norm: the norm's weight/bias absorb x' = (x - z) / s
// and the consumers' columns/biases the inverse. ValueOut: the value rows of `producer` (rows
// listed per consumer input channel) absorb it instead; exact because softmax rows sum to 1.
struct MigrationPair {
  enum class Kind { Norm, ValueOut };
  Kind kind = Kind::Norm;
  std::string name;                    // "layers.3.ln1", "layers.3.v_out"
  int block = -1;
  int norm = 0;                        // Norm: 1 = first norm of the block, 2 = second
  std::string producer;                // ValueOut: site whose output rows hold the values
  std::vector<int64_t> producerRows;   // ValueOut: producer row feeding each consumer input channel
  std::vector<std::string> consumers;  // sites reading the migrated channels
};

// A norm's affine parameters, float32 [hidden]; undefined = absent (identity gain / zero bias).
struct NormParams {
  at::Tensor weight, bias;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual int numBlocks() const = 0;
  virtual c10::Device device() const = 0;
  virtual at::ScalarType dtype() const = 0;

  // How evaluations and calibration passes run this model (core/model/layerwise.h): whole, or
  // block by block under a memory budget; a job sets it once from its options.
  void setExecOptions(const ExecOptions& o) { exec_ = o; }
  const ExecOptions& execOptions() const { return exec_; }

  // Whole forward. ids [B, T] int64; mask [B, T] (undefined = all ones). Logits [B, T, V] float32.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask = {});

  // Layer-wise pieces (the calibration pipeline runs these one block at a time):
  virtual BatchState prepare(const at::Tensor& ids, const at::Tensor& mask) = 0;
  virtual at::Tensor embed(const BatchState& s) = 0;                       // -> hidden [B, T, D]
  virtual at::Tensor runBlock(int i, const at::Tensor& h, const BatchState& s) = 0;
  virtual at::Tensor head(const at::Tensor& h) = 0;                        // final norm + lm_head

  // Quantization sites, in execution order.
  virtual const std::vector<SiteInfo>& sites() const = 0;
  virtual at::Tensor siteWeight(const std::string& site) = 0;               // [out, in]
  virtual void setSiteWeight(const std::string& site, const at::Tensor& w) = 0;
  // Called with every site's input ([B, T, in], compute dtype) during forward; empty = none.
  virtual void setInputHook(std::function<void(const std::string& site, const at::Tensor& x)> hook) = 0;

  // --- Extensions for activation quantization and exact migration (OS+, SmoothQuant) ---------
  // Replaces each site's input by fn(site, x) right before the Linear (after the input hook),
  // e.g. activation fake-quantization; empty = none. Sites that share an input (inputGroup) run
  // as one fused GEMM when fn returns the same tensor for all of them.
  using InputTransform = std::function<at::Tensor(const std::string& site, const at::Tensor& x)>;
  virtual void setInputTransform(InputTransform fn);
  // The site's bias [out] (a copy), undefined when it has none.
  virtual at::Tensor siteBias(const std::string& site);
  // Sets (or adds, for a Linear without one, e.g. RMSNorm families) the site's bias [out].
  // Survives release() like setSiteWeight; SiteInfo::hasBias becomes true.
  virtual void setSiteBias(const std::string& site, const at::Tensor& bias);
  // Norm `which` (1 or 2) of a block, float32 copies. Throws qs::Error when the block has no such norm.
  virtual NormParams normParams(int block, int which);
  // Replaces a norm's parameters ([hidden] each; undefined = absent). An RMSNorm accepts a bias
  // (y = w * x / rms(x) + b), which exact shifting needs where the family has none.
  virtual void setNormParams(int block, int which, const NormParams& params);
  // Every place a channel-wise transform migrates exactly, in execution order. A post-LN norm
  // also feeds the residual stream, so it is not listed (nor are GQA/MQA value projections).
  virtual std::vector<MigrationPair> migrationPairs() const;

  // --- Attention matmul operands (no weights; analysis and activation quantization) ----------
  // Per block, in execution order: "<attn>.q_matmul" (the query after RoPE and the 1/sqrt(d)
  // scale, [B, T, H*d]), "<attn>.k_matmul" (the key after RoPE, [B, T, Hkv*d]) and
  // "<attn>.v_matmul" ([B, T, Hkv*d]), where <attn> is the attention module of the block's output
  // projection ("layers.3.self_attn"). Empty for a model without them.
  virtual std::vector<std::string> matmulSites() const;
  // Like setInputHook / setInputTransform, for those operands; empty = none. A transform returns
  // a tensor of the operand's shape.
  virtual void setMatmulHook(std::function<void(const std::string& site, const at::Tensor& x)> hook);
  virtual void setMatmulTransform(InputTransform fn);

  // --- Softmax input (no weights; analysis) ---------------------------------------------------
  // Per block, "<attn>.softmax_in": the attention scores right before the softmax (clipped
  // softmax too; a gate acts after it): q.k^T with q scaled as for q_matmul, plus the additive
  // bias (causal + padding mask, ALiBi, sliding window), float32. Empty for a model without it.
  virtual std::vector<std::string> softmaxSites() const;
  // Called during forward, read-only, once per batch row and chunk of queries with scores
  // [H, C, keys] of queries [query0, query0 + C) of row `sample` over keys [0, keys) (later keys
  // are causally masked for every query of the chunk and never computed). Masked entries hold
  // about kMaskedScore (core/model/attention.h): <= kMaskedScoreBelow. Empty = none; costs
  // nothing when unset.
  using SoftmaxHook =
      std::function<void(const std::string& site, const at::Tensor& scores, int64_t sample, int64_t query0)>;
  virtual void setSoftmaxHook(SoftmaxHook hook);

  // Lazy weights: blocks are read from the (mmapped) checkpoint on first use; release() drops
  // a block's tensors so peak memory is one block when streaming (DESIGN.md seam 5).
  virtual void materialize(int block) = 0;
  virtual void release(int block) = 0;
  // The embedding (token/position tables, input projection and norm) and the head (final norm,
  // output projection, lm_head) are loaded on first use like blocks; these drop them again.
  virtual void releaseEmbedding();
  virtual void releaseHead();
  // Every materialised tensor: all blocks, the embedding and the head.
  void releaseAll();

  // --- Weights that are not the checkpoint's (quantized, migrated) -------------------------------
  // A site weight produced on demand: materialize() and siteWeight() call the loader (an [out, in]
  // tensor on the CPU, any floating dtype; converted like setSiteWeight's argument), so a
  // quantized model kept as integer grids on disk costs no memory until a block runs. Replaces
  // an earlier setSiteWeight of the site (and vice versa).
  using WeightLoader = std::function<at::Tensor()>;
  virtual void setSiteWeightLoader(const std::string& site, WeightLoader loader);
  // A function applied to every site weight as it is materialised (and to siteWeight()): number
  // format emulation without holding a copy of the model. Setting or clearing it releases the
  // loaded blocks, so the next use sees the change. The result is converted to the model's dtype.
  using WeightTransform = std::function<at::Tensor(const std::string& site, const at::Tensor& w)>;
  virtual void setWeightTransform(WeightTransform fn);
  // Writes the in-memory weight overrides of `block` (setSiteWeight) to a safetensors file in
  // `dir` and replaces them by loaders of that file; returns the bytes moved out of memory.
  virtual int64_t offloadOverrides(int block, const std::string& dir);
  // Bytes of weight overrides held in memory (loaders excluded; biases and norms, vectors, are not
  // counted).
  virtual int64_t overrideBytes() const;
  // Once the overrides held in memory exceed `bytes`, setSiteWeight offloads every block's to
  // `dir` (offloadOverrides): a migration or format emulation over a model larger than memory then
  // costs disk, not memory. 0 = no limit (the default).
  virtual void setOverrideBudget(int64_t bytes, const std::string& dir);
  // With a budget set (setOverrideBudget), writes the block's in-memory overrides to its folder
  // now: a block-major job (the streamed OS+/SmoothQuant migration) calls it when it has finished
  // a block, so it holds one block's changed weights instead of the budget's. No-op otherwise.
  virtual void spillOverrides(int block);
  // The budget jobs use when streaming: two blocks' weights, at least 512 MiB.
  int64_t defaultOverrideBudget() const;

  // Bytes of the weights in the model's dtype, as materialised (norms in float32): per block,
  // the embedding and the head. A tied lm_head is in both embeddingBytes and headBytes (each
  // phase loads it) and in sharedBytes, so totalBytes counts it once.
  struct Footprint {
    std::vector<int64_t> blockBytes;
    int64_t embeddingBytes = 0, headBytes = 0, sharedBytes = 0;
    int64_t maxBlockBytes() const;
    int64_t totalBytes() const;
  };
  virtual Footprint footprint() const;

 private:
  ExecOptions exec_;
};

// Opens a Hugging Face model folder or a .gguf file. Throws qs::Error naming the file for a
// missing config.json, unknown model_type, missing/corrupt weights.
std::unique_ptr<Model> openModel(const std::string& path, const LoadOptions& options = {});

}  // namespace qs::model
