#include "core/algo/rtn.h"

#include <ATen/ATen.h>

#include <chrono>

#include "core/algo/weight_grid.h"
#include "core/util/error.h"

namespace qs::algo {

LayerQuantResult quantizeRtn(const at::Tensor& wIn, const quant::QuantSpec& spec, const at::Tensor& hessian,
                             jobs::Progress& progress) {
  if (!wIn.defined() || wIn.dim() != 2) throw Error("weight: expected a 2-D [out, in] tensor");
  spec.validateFor(wIn.size(0), wIn.size(1));
  progress.checkCancel();
  if (!spec.enabled()) return unquantized("rtn", wIn, hessian);
  const auto t0 = std::chrono::steady_clock::now();
  const at::Tensor w = wIn.to(at::kFloat);
  const WeightGrid grid = observeWeight(w, spec);
  // RTN's groups are in natural order: the parameters broadcast over them.
  const int64_t g = naturalGroupSize(grid.gIdx, grid.scales.size(1));
  const at::Tensor codes =
      g > 0 ? applyPerGroup(w, grid.scales, grid.zeros, g,
                            [&](const at::Tensor& x, const at::Tensor& sc, const at::Tensor& z) {
                              return quant::quantizeCodes(x, sc, z, spec);
                            })
            : quant::quantizeCodes(w, expandToColumns(grid.scales, grid.gIdx), expandToColumns(grid.zeros, grid.gIdx),
                                   spec);
  LayerQuantResult r;
  r.method = "rtn";
  r.quantSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  quant::QuantSpec noOrder = spec;
  noOrder.actOrder = false;
  finishResult(r, w, codes, grid, hessian, noOrder);
  progress.update(1.0, "rtn");
  return r;
}

}  // namespace qs::algo
