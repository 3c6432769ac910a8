#include "core/algo/weight_grid.h"

#include <ATen/ATen.h>

#include <chrono>

namespace qs::algo {

WeightGrid observeWeight(const at::Tensor& w, const quant::QuantSpec& spec) {
  const quant::QuantParams p = quant::observeGroups(w, spec);
  return {p.scale, p.zero, quant::naturalGroupIndex(w.size(1), spec)};
}

at::Tensor expandToColumns(const at::Tensor& perGroup, const at::Tensor& gIdx) {
  return perGroup.index_select(1, gIdx.to(at::kLong)).contiguous();
}

void finishResult(LayerQuantResult& r, const at::Tensor& w, const at::Tensor& codes, const WeightGrid& grid,
                  const at::Tensor& hessian, const quant::QuantSpec& spec) {
  r.codes = codes.to(at::kInt);
  r.scales = grid.scales;
  r.zeros = grid.zeros;
  r.gIdx = grid.gIdx;
  r.weight = reconstructWeight(r);
  if (hessian.defined()) {
    const auto t0 = std::chrono::steady_clock::now();
    r.relError = relativeError(w, r.weight, hessian);
    r.errorSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  accountBits(r, spec.bits, spec.symmetric, w.size(0), w.size(1), spec.actOrder && spec.grouped() && !spec.staticGroups,
              spec.chAxis == -1);
}

LayerQuantResult unquantized(const std::string& method, const at::Tensor& w, const at::Tensor& hessian) {
  LayerQuantResult r;
  r.method = method;
  r.weight = w.to(at::kFloat).clone();
  if (hessian.defined()) r.relError = relativeError(w, r.weight, hessian);
  accountBits(r, 16, true, w.size(0), w.size(1), false, false);
  return r;
}

}  // namespace qs::algo
