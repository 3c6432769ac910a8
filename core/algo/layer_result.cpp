#include "core/algo/layer_result.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/algo/weight_grid.h"

namespace qs::algo {

double quadraticError(const at::Tensor& d, const at::Tensor& hessian) {
  const at::Tensor d64 = d.to(at::kDouble);
  const at::Tensor h64 = hessian.to(at::kDouble);
  return at::sum(at::mul(at::matmul(d64, h64), d64)).item<double>();
}

double relativeError(const at::Tensor& w, const at::Tensor& wq, const at::Tensor& hessian) {
  // [dW; W] H then row-wise dot products, a chunk of rows at a time (about 32 MiB of rows), so the
  // error of a 4096 x 11008 projection needs a few hundred MiB beyond H, not float64 copies of the
  // whole weight. Layers up to about 2^35 multiply-adds (3072 x 3072 inputs and below) multiply in
  // float64; larger ones in float32 with float64 sums, about 3x faster on a CPU and still within
  // ~1e-6 relative, since H is positive semi-definite (no cancellation to amplify).
  const int64_t out = w.size(0), in = w.size(1);
  const bool large = static_cast<double>(out) * static_cast<double>(in) * static_cast<double>(in) > 34359738368.0;
  const at::ScalarType gemm = large ? at::kFloat : at::kDouble;
  const at::Tensor h = hessian.to(gemm);
  const int64_t chunk = std::max<int64_t>(1, (int64_t{32} << 20) / (in * 8));
  double num = 0, den = 0;
  for (int64_t r0 = 0; r0 < out; r0 += chunk) {
    const int64_t n = std::min(chunk, out - r0);
    const at::Tensor w64 = w.narrow(0, r0, n).to(at::kDouble);
    const at::Tensor d64 = at::sub(w64, wq.narrow(0, r0, n).to(at::kDouble));
    const at::Tensor both = at::cat({d64, w64}, 0).to(gemm);
    const at::Tensor prod = at::sum(at::mul(at::matmul(both, h), both).to(at::kDouble), 1);
    num += prod.narrow(0, 0, n).sum().item<double>();
    den += prod.narrow(0, n, n).sum().item<double>();
  }
  return den > 0 ? num / den : 0.0;
}

at::Tensor reconstructWeight(const LayerQuantResult& r) {
  at::Tensor w;
  if (!r.codes.defined()) {
    w = r.weight.clone();
    return w;
  }
  const int64_t g = naturalGroupSize(r.gIdx, r.scales.size(1));
  if (g > 0) {
    w = applyPerGroup(r.codes.to(at::kFloat), r.scales, r.zeros, g,
                      [](const at::Tensor& c, const at::Tensor& s, const at::Tensor& z) { return at::sub(c, z).mul_(s); });
  } else {
    const at::Tensor idx = r.gIdx.to(at::kLong);
    const at::Tensor s = r.scales.index_select(1, idx);
    const at::Tensor z = r.zeros.index_select(1, idx);
    w = at::mul(at::sub(r.codes.to(at::kFloat), z), s);
  }
  if (r.outlierIndices.defined() && r.outlierIndices.numel() > 0) {
    const at::Tensor flat = at::add(at::mul(r.outlierIndices.select(1, 0), w.size(1)), r.outlierIndices.select(1, 1));
    w = w.flatten().index_add(0, flat, r.outlierValues.to(at::kFloat)).view(w.sizes());
  }
  return w;
}

void accountBits(LayerQuantResult& r, int bits, bool symmetric, int64_t outFeatures, int64_t inFeatures,
                 bool actOrderGroups, bool perTensor) {
  const double n = static_cast<double>(outFeatures) * static_cast<double>(inFeatures);
  if (bits >= 16) {
    r.denseBits = 16;
    r.paramBits = r.outlierBits = 0;
    r.bitsPerWeight = 16;
    return;
  }
  r.denseBits = bits;
  const double numParams = perTensor ? 1.0 : static_cast<double>(r.scales.numel());
  double paramBits = numParams * (16.0 + (symmetric ? 0.0 : bits));
  if (actOrderGroups) paramBits += 32.0 * static_cast<double>(inFeatures);
  r.paramBits = paramBits / n;
  double extra = 0;
  if (r.keptColumns.defined() && r.keptColumns.numel() > 0)
    extra = static_cast<double>(r.keptColumns.numel()) * (16.0 * static_cast<double>(outFeatures) + 32.0);
  else if (r.outlierValues.defined())
    extra = static_cast<double>(r.outlierValues.numel()) * (16.0 + 32.0);
  r.outlierBits = extra / n;
  r.bitsPerWeight = r.denseBits + r.paramBits + r.outlierBits;
}

}  // namespace qs::algo
