#include "core/algo/weight_grid.h"

#include <ATen/ATen.h>

#include <chrono>

#include "core/algo/quantize_config.h"
#include "core/io/ggml_quants.h"

namespace qs::algo {

WeightGrid observeWeight(const at::Tensor& w, const quant::QuantSpec& spec) {
  const quant::QuantParams p = quant::observeGroups(w, spec);
  return {p.scale, p.zero, quant::naturalGroupIndex(w.size(1), spec)};
}

at::Tensor expandToColumns(const at::Tensor& perGroup, const at::Tensor& gIdx) {
  return perGroup.index_select(1, gIdx.to(at::kLong)).contiguous();
}

int64_t naturalGroupSize(const at::Tensor& gIdx, int64_t groups) {
  const int64_t in = gIdx.numel();
  if (in == 0 || groups < 1) return 0;
  const at::Tensor idx = gIdx.to(at::kLong).contiguous();
  const int64_t g = groups == 1 ? in : (idx == 0).sum().item<int64_t>();
  if (g < 1) return 0;
  return at::equal(idx, at::div(at::arange(in, at::kLong), g, "floor")) ? g : 0;
}

at::Tensor applyPerGroup(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero, int64_t g,
                         const std::function<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>& f) {
  const int64_t out = x.size(0), in = x.size(1), full = in / g, rest = in - full * g;
  std::vector<at::Tensor> parts;
  if (full > 0) {
    const at::Tensor xs = x.narrow(1, 0, full * g).reshape({out, full, g});
    parts.push_back(f(xs, scale.narrow(1, 0, full).unsqueeze(2), zero.narrow(1, 0, full).unsqueeze(2))
                        .reshape({out, full * g}));
  }
  if (rest > 0) parts.push_back(f(x.narrow(1, full * g, rest), scale.narrow(1, full, 1), zero.narrow(1, full, 1)));
  return parts.size() == 1 ? parts.front() : at::cat(parts, 1);
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
  // On a llama.cpp grid the parameters cost what its block stores (Q4_0: an fp16 scale per 32,
  // 4.5 bits per weight; Q4_K: 144 bytes per 256, also 4.5), not a scale and a zero per group.
  if (const std::string type = gridTargetType(spec); !type.empty()) {
    const io::GgmlTypeTraits t = io::ggmlTypeTraits(*io::ggmlTypeByName(type));
    const double perWeight = 8.0 * static_cast<double>(t.typeSize) / static_cast<double>(t.blockSize);
    r.paramBits = perWeight - r.denseBits;
    r.bitsPerWeight = perWeight + r.outlierBits;
  }
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
