#include "core/train/causal_lm.h"

#include <ATen/ATen.h>

#include "core/model/attention.h"
#include "core/train/llama_lm.h"
#include "core/train/opt_lm.h"
#include "core/util/error.h"

namespace qs::train {

at::Tensor CausalLm::loss(const at::Tensor& ids) const {
  at::Tensor logits = forward(ids.narrow(1, 0, ids.size(1) - 1));
  at::Tensor target = ids.narrow(1, 1, ids.size(1) - 1);
  return at::cross_entropy_loss(logits.reshape({-1, vocab()}), target.reshape({-1}));
}

void CausalLm::setComputeDtype(at::ScalarType dtype) {
  if (dtype != at::kFloat && dtype != at::kBFloat16)
    throw Error(std::string("training dtype: expected float32 or bfloat16, got ") + c10::toString(dtype));
  compute_ = dtype;
}

void CausalLm::toDevice(const at::Device& device) {
  at::NoGradGuard noGrad;
  for (auto& [name, t] : params_)
    if (t.device() != device) t = t.detach().to(device).contiguous().requires_grad_(true);
}

at::Tensor CausalLm::linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const {
  if (compute_ == at::kFloat) return at::linear(x, w, b);
  return at::linear(x.to(compute_), w.to(compute_), b.defined() ? b.to(compute_) : b).to(at::kFloat);
}

at::Tensor CausalLm::matmul(const at::Tensor& a, const at::Tensor& b) const {
  if (compute_ == at::kFloat) return at::matmul(a, b);
  return at::matmul(a.to(compute_), b.to(compute_)).to(at::kFloat);
}

bool CausalLm::isBiasName(const std::string& name) {
  return name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
}

void CausalLm::addGateParams(const std::string& attnPrefix, const model::AttentionVariant& var, int64_t heads,
                             int64_t hidden, const std::function<at::Tensor(std::vector<int64_t>)>& normal) {
  for (const auto& [local, shape] : model::gateTensorShapes(var, heads, hidden)) {
    const bool bias = isBiasName(local);
    const bool outBias = bias && (local == "gate.bias" || local == "gate.fc2.bias");
    addParam(attnPrefix + local, bias ? at::full(shape, outBias ? var.gateBiasInit : 0.0) : normal(shape));
  }
}

void CausalLm::checkLength(int64_t T, int64_t maxPositions) {
  if (T > maxPositions)
    throw Error("sequence of " + std::to_string(T) + " tokens exceeds the model's " + std::to_string(maxPositions) +
                " positions");
}

at::Tensor CausalLm::causalBias(int64_t T, const at::Device& device) {
  const auto f = at::TensorOptions().device(device);
  return at::zeros({T, T}, f).masked_fill_(at::ones({T, T}, f.dtype(at::kBool)).triu(1), model::kMaskedScore);
}

at::Tensor CausalLm::attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                            const at::Tensor& h, const std::string& attnPrefix,
                            const model::AttentionVariant& var) const {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = H * q.size(3);
  at::Tensor scores = matmul(q, k.transpose(-2, -1)) + bias;
  at::Tensor probs = var.clipped() ? model::clippedSoftmax(scores, var.gammaFor(T), var.zeta) : at::softmax(scores, -1);
  at::Tensor ctx = matmul(probs, v).transpose(1, 2).reshape({B, T, D});
  if (!var.gated()) return ctx;
  model::GateWeights g;
  const auto names = model::gateTensorShapes(var, H, D);
  g.w1 = p(attnPrefix + names[0].first);
  g.b1 = p(attnPrefix + names[1].first);
  if (names.size() == 4) g.w2 = p(attnPrefix + names[2].first), g.b2 = p(attnPrefix + names[3].first);
  return model::gateContext(ctx, model::attentionGate(h, g, var, H));
}

void CausalLm::addParam(const std::string& name, const at::Tensor& t) {
  byName_[name] = params_.size();
  params_.emplace_back(name, t.contiguous().requires_grad_(true));
}

void CausalLm::loadValues(const std::vector<std::pair<std::string, at::Tensor>>& tensors, const std::string& source) {
  std::unordered_map<std::string, const at::Tensor*> given;
  for (const auto& [n, t] : tensors) given[n] = &t;
  at::NoGradGuard noGrad;
  for (auto& [name, param] : params_) {
    auto it = given.find(name);
    if (it == given.end()) throw fileError(source, "missing tensor '" + name + "'");
    if (it->second->sizes() != param.sizes())
      throw fileError(source, "tensor '" + name + "' does not match the model shape");
    param.copy_(*it->second);
  }
}

std::unique_ptr<CausalLm> makeCausalLm(const std::string& architecture, const CausalLmShape& s, uint64_t seed) {
  if (architecture == "opt") {
    if (s.kvHeads != 0 && s.kvHeads != s.heads) throw Error("--kv-heads: OPT models have as many kv heads as heads");
    return std::make_unique<OptLm>(s, seed);
  }
  if (architecture == "llama") return std::make_unique<LlamaLm>(s, seed);
  throw Error("--arch: expected opt or llama, got '" + architecture + "'");
}

}  // namespace qs::train
