// Small tensor helpers the algorithm tests share: seeded token batches, the forward pass in
// inference mode, and the max-abs relative difference used for "folds exactly" checks.
#pragma once
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>

#include "core/model/model.h"

namespace qs::test {

// [n, t] token ids drawn uniformly from [0, 256) with `seed` (the tiny models' vocabulary).
inline at::Tensor randomTokens(int64_t n, int64_t t, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return at::randint(0, 256, {n, t}, g, at::kLong);
}

// max |a - ref| / max |ref|.
inline double maxRelDiff(const at::Tensor& a, const at::Tensor& ref) {
  return (a - ref).abs().max().item<double>() / ref.abs().max().item<double>();
}

inline at::Tensor inferenceLogits(model::Model& m, const at::Tensor& ids) {
  c10::InferenceMode guard;
  return m.forward(ids);
}

}  // namespace qs::test
