#include "core/algo/hessian.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "core/util/error.h"

namespace qs::algo {

HessianAccumulator::HessianAccumulator(int64_t inFeatures, at::ScalarType batchDtype)
    : in_(inFeatures), batchDtype_(batchDtype) {
  if (inFeatures <= 0) throw Error("hessian: in_features must be positive, got " + std::to_string(inFeatures));
  if (batchDtype != at::kFloat && batchDtype != at::kDouble)
    throw Error("hessian: batch dtype must be float32 or float64");
  sum_ = at::zeros({in_, in_}, at::TensorOptions().dtype(at::kDouble));
}

void HessianAccumulator::add(const at::Tensor& x) {
  if (!x.defined() || x.dim() < 1 || x.size(-1) != in_)
    throw Error("inputs: expected [..., " + std::to_string(in_) + "] calibration inputs, got " +
                (x.defined() ? std::to_string(x.dim()) + "-D with last dimension " +
                                   (x.dim() ? std::to_string(x.size(-1)) : std::string("-"))
                             : std::string("an undefined tensor")));
  if (!at::isFloatingType(x.scalar_type())) throw Error("inputs: calibration inputs must be floating point");
  const at::Tensor rows = x.reshape({-1, in_}).to(at::kCPU, batchDtype_);
  if (rows.size(0) == 0) return;
  // X^T X a band of rows at a time (about 64 MiB of product each), added in place with type
  // promotion: no full [in, in] product and no float64 copy of one next to the sum (for a 7B
  // model's down projection they were 485 MB and 970 MB).
  const int64_t band = std::max<int64_t>(1, (int64_t{64} << 20) / (in_ * static_cast<int64_t>(c10::elementSize(batchDtype_))));
  for (int64_t r0 = 0; r0 < in_; r0 += band) {
    const int64_t n = std::min(band, in_ - r0);
    sum_.narrow(0, r0, n).add_(at::matmul(rows.narrow(1, r0, n).t(), rows));
  }
  tokens_ += rows.size(0);
}

at::Tensor HessianAccumulator::hessian() const {
  if (tokens_ == 0) throw Error("inputs: no calibration tokens were added to the Hessian");
  return at::mul(sum_, 2.0 / static_cast<double>(tokens_));
}

at::Tensor hessianFromInputs(const at::Tensor& x, jobs::Progress& progress, int64_t batchTokens,
                             at::ScalarType batchDtype) {
  if (!x.defined() || x.dim() < 1) throw Error("inputs: calibration inputs must have at least one dimension");
  const int64_t in = x.size(-1);
  const at::Tensor rows = x.reshape({-1, in});
  HessianAccumulator acc(in, batchDtype);
  const int64_t n = rows.size(0);
  for (int64_t b = 0; b < n; b += batchTokens) {
    progress.checkCancel();
    acc.add(rows.narrow(0, b, std::min(batchTokens, n - b)));
    progress.update(static_cast<double>(std::min(b + batchTokens, n)) / static_cast<double>(n), "hessian");
  }
  return acc.hessian();
}

at::Tensor deadColumns(const at::Tensor& hessian) { return at::diagonal(hessian) == 0; }

}  // namespace qs::algo
