// A compact, autograd-enabled OPT-style causal LM for pre-training (the engine's forward runs in
// InferenceMode and streams blocks, so it cannot train). Parameters carry their Hugging Face
// names, so saving is a plain safetensors write that openModel() loads; the attention variants
// come from core/model/attention.h, the same math the engine runs.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/model/config.h"
#include "core/train/causal_lm.h"

namespace qs::train {

class OptLm : public CausalLm {
 public:
  // Random init from `seed`: N(0, 0.02) weights, zero biases, unit LayerNorm gains, gate biases
  // at attention.gateBiasInit. kvHeads and ropeTheta are not used (makeCausalLm rejects an
  // "opt" shape whose kvHeads differs from heads).
  OptLm(const CausalLmShape& shape, uint64_t seed);

  const CausalLmShape& shape() const { return shape_; }
  // True when AdamW's weight decay applies (matrices and embeddings; not biases, gains, gates' biases).
  bool decays(const std::string& name) const override;

  // ids [B, T] (int64) -> logits [B, T, vocab] float32, differentiable.
  at::Tensor forward(const at::Tensor& ids) const override;
  int64_t vocab() const override { return shape_.vocab; }

  // config.json text for this model (model_type "opt", tied embeddings, quantscope_attention).
  std::string configJson() const override;

 private:
  CausalLmShape shape_;
};

}  // namespace qs::train
