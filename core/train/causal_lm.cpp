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

std::unique_ptr<CausalLm> makeCausalLm(const std::string& architecture, const CausalLmShape& s, uint64_t seed) {
  if (architecture == "opt") {
    if (s.kvHeads != 0 && s.kvHeads != s.heads) throw Error("--kv-heads: OPT models have as many kv heads as heads");
    OptLmShape o;
    o.vocab = s.vocab;
    o.hidden = s.hidden;
    o.layers = s.layers;
    o.heads = s.heads;
    o.ffn = s.ffn;
    o.maxPositions = s.maxPositions;
    o.attention = s.attention;
    return std::make_unique<OptLm>(o, seed);
  }
  if (architecture == "llama") return std::make_unique<LlamaLm>(s, seed);
  throw Error("--arch: expected opt or llama, got '" + architecture + "'");
}

}  // namespace qs::train
