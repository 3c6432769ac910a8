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

struct OptLmShape {
  int64_t vocab = 256;        // tokenizer vocabulary size
  int64_t hidden = 64;        // model width
  int64_t layers = 2;         // decoder blocks
  int64_t heads = 4;          // attention heads (hidden must divide)
  int64_t ffn = 256;          // MLP width
  int64_t maxPositions = 128; // learned positions (the training sequence length)
  model::AttentionVariant attention;  // vanilla, clipped softmax and/or gated
};

class OptLm : public CausalLm {
 public:
  // Random init from `seed`: N(0, 0.02) weights, zero biases, unit LayerNorm gains, gate biases
  // at attention.gateBiasInit.
  OptLm(const OptLmShape& shape, uint64_t seed);

  const OptLmShape& shape() const { return shape_; }
  // True when AdamW's weight decay applies (matrices and embeddings; not biases, gains, gates' biases).
  bool decays(const std::string& name) const override;

  // ids [B, T] (int64) -> logits [B, T, vocab] float32, differentiable.
  at::Tensor forward(const at::Tensor& ids) const override;
  int64_t vocab() const override { return shape_.vocab; }

  // config.json text for this model (model_type "opt", tied embeddings, quantscope_attention).
  std::string configJson() const override;

 private:
  OptLmShape shape_;
};

}  // namespace qs::train
