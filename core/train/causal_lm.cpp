#include "core/train/causal_lm.h"

#include <ATen/ATen.h>

#include "core/train/llama_lm.h"
#include "core/train/opt_lm.h"
#include "core/util/error.h"

namespace qs::train {

at::Tensor CausalLm::loss(const at::Tensor& ids) const {
  at::Tensor logits = forward(ids.narrow(1, 0, ids.size(1) - 1));
  at::Tensor target = ids.narrow(1, 1, ids.size(1) - 1);
  return at::cross_entropy_loss(logits.reshape({-1, vocab()}), target.reshape({-1}));
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
