// What the trainer needs of a trainable causal LM (OptLm, LlamaLm): named parameters with their
// Hugging Face names, a differentiable forward and the config.json that makes the saved folder
// loadable by openModel(). makeCausalLm picks the architecture by name.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/model/config.h"

namespace qs::train {

class CausalLm {
 public:
  virtual ~CausalLm() = default;
  // (HF name, tensor) pairs in creation order; the tensors require grad.
  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }
  // True when AdamW's weight decay applies (matrices and embeddings; not biases or norm gains).
  virtual bool decays(const std::string& name) const = 0;
  // Copies values (no_grad) by name; qs::Error naming `source` and the tensor when one is missing
  // or misshapen.
  void loadValues(const std::vector<std::pair<std::string, at::Tensor>>& tensors, const std::string& source);
  // ids [B, T] (int64) -> logits [B, T, vocab] float32, differentiable.
  virtual at::Tensor forward(const at::Tensor& ids) const = 0;
  virtual int64_t vocab() const = 0;
  virtual std::string configJson() const = 0;
  // Mean next-token cross entropy of ids [B, T] over its T - 1 predictions.
  at::Tensor loss(const at::Tensor& ids) const;
  // Precision of the forward's matrix products, autocast style: at::kFloat (default), or
  // at::kBFloat16 for the linear layers, the attention matmuls and the tied lm_head (inputs and
  // weights cast per call, products returned as float32), while the parameters (master weights),
  // embeddings, norms, softmax, gates and the loss stay float32. qs::Error for another dtype.
  void setComputeDtype(at::ScalarType dtype);
  at::ScalarType computeDtype() const { return compute_; }
  // Moves the parameters (still leaves requiring grad) to `device`; forward then expects ids there.
  void toDevice(const at::Device& device);

 protected:
  // at::linear / at::matmul in the compute dtype, float32 out.
  at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = at::Tensor()) const;
  at::Tensor matmul(const at::Tensor& a, const at::Tensor& b) const;
  // Registers a parameter (made contiguous, requiring grad) under its HF name.
  void addParam(const std::string& name, const at::Tensor& t);
  // The parameter of that name (std::out_of_range for an unknown one: a programming error).
  const at::Tensor& p(const std::string& name) const { return params_[byName_.at(name)].second; }

  // Shared by the architectures.
  static bool isBiasName(const std::string& name);
  // The gate tensors of one attention block (under attnPrefix, e.g. "...layers.0.self_attn."):
  // matrices from `normal`, the last bias at gateBiasInit (the initial gate sigmoid(b)), hidden
  // biases 0. Nothing for vanilla attention.
  void addGateParams(const std::string& attnPrefix, const model::AttentionVariant& var, int64_t heads, int64_t hidden,
                     const std::function<at::Tensor(std::vector<int64_t>)>& normal);
  // qs::Error when T tokens exceed the model's positions.
  static void checkLength(int64_t T, int64_t maxPositions);
  // Causal additive bias [T, T] with the engine's finite kMaskedScore, so the softmax matches it
  // bit for bit.
  static at::Tensor causalBias(int64_t T, const at::Device& device = at::kCPU);
  // softmax(q k^T + bias) v for q, k, v [B, H, T, d] (kv heads already repeated), with the
  // variant's clipped softmax and gate (gate input h [B, T, D], gate tensors under attnPrefix):
  // the context [B, T, D] that enters the output projection.
  at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                    const at::Tensor& h, const std::string& attnPrefix, const model::AttentionVariant& var) const;

 private:
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::unordered_map<std::string, size_t> byName_;
  at::ScalarType compute_ = at::kFloat;
};

// Shape shared by the architectures (kvHeads and ropeTheta are used by "llama" only).
struct CausalLmShape {
  int64_t vocab = 256;        // tokenizer vocabulary size
  int64_t hidden = 64;        // model width
  int64_t layers = 2;         // decoder blocks
  int64_t heads = 4;          // attention heads (hidden must divide)
  int64_t kvHeads = 0;        // llama: key/value heads (0 = heads; heads must be a multiple)
  int64_t ffn = 256;          // MLP width (llama: intermediate size of the SwiGLU)
  int64_t maxPositions = 128; // positions (the training sequence length)
  double ropeTheta = 10000.0; // llama: RoPE base
  model::AttentionVariant attention;  // vanilla, clipped softmax and/or gated
};

// "opt" (learned positions, LayerNorm, ReLU MLP, biases) or "llama" (RoPE, RMSNorm, SwiGLU, no
// biases); random init from seed. qs::Error naming --arch for another name.
std::unique_ptr<CausalLm> makeCausalLm(const std::string& architecture, const CausalLmShape& shape, uint64_t seed);

}  // namespace qs::train
