#include "core/algo/quantease_outlier.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "core/util/error.h"

namespace qs::algo {
double largestEigenvalue(const at::Tensor& h, int iterations) {
  const at::Tensor h64 = h.to(at::kDouble);
  const int64_t n = h64.size(0);
  // A fixed, non-symmetric start so the result is reproducible and rarely orthogonal to the top
  // eigenvector.
  at::Tensor v = at::add(at::ones({n}, h64.options()), at::div(at::arange(n, h64.options()), n));
  v = at::div(v, at::norm(v));
  double lambda = 0;
  for (int i = 0; i < iterations; ++i) {
    const at::Tensor w = at::mv(h64, v);
    const double norm = at::norm(w).item<double>();
    if (norm == 0) return 0;
    lambda = norm;  // ||H v|| <= lambda_max for unit v, converging from below
    v = at::div(w, norm);
  }
  return lambda * 1.05;  // margin: the estimate approaches lambda_max from below
}

}  // namespace qs::algo
