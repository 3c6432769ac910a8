// A compact, autograd-enabled LLaMA-style causal LM for pre-training: RMSNorm, rotary positions
// in Hugging Face's rotate_half layout (the engine's core/model/rope.h), SwiGLU MLP, no biases,
// grouped kv heads, tied embeddings. Parameters carry LlamaForCausalLM's names, so the saved
// folder is one openModel() (and transformers) loads. Attention variants as in OptLm.
#pragma once

#include "core/train/causal_lm.h"

namespace qs::train {

class LlamaLm : public CausalLm {
 public:
  // Random init from `seed`: N(0, 0.02) matrices, unit RMSNorm gains, gate biases at
  // attention.gateBiasInit.
  LlamaLm(const CausalLmShape& shape, uint64_t seed);

  const CausalLmShape& shape() const { return shape_; }
  bool decays(const std::string& name) const override;
  at::Tensor forward(const at::Tensor& ids) const override;
  int64_t vocab() const override { return shape_.vocab; }
  // model_type "llama", tie_word_embeddings, quantscope_attention for the variants.
  std::string configJson() const override;

 private:
  CausalLmShape shape_;
};

}  // namespace qs::train
