// The quantization grid of a weight [out, in] that the algorithms share: per-group (scale, zero)
// in original column order with each input column's group (g_idx), the per-element expansion
// coordinate descent needs, and the common finishing of a LayerQuantResult.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>

#include "core/algo/layer_result.h"
#include "core/quant/quant_spec.h"

namespace qs::algo {

struct WeightGrid {
  at::Tensor scales;  // [out, groups] float32
  at::Tensor zeros;   // [out, groups] float32
  at::Tensor gIdx;    // [in] int32
};

// Params of w by spec's observer: per tensor (expanded to [out, 1]), per output channel, or per
// group of group_size consecutive input columns (the last group may be shorter).
WeightGrid observeWeight(const at::Tensor& w, const quant::QuantSpec& spec);

// Per-element [out, in] scale and zero (columns pick their group through gIdx).
at::Tensor expandToColumns(const at::Tensor& perGroup, const at::Tensor& gIdx);

// Group size g when gIdx is the natural order (column j in group j / g, the last group possibly
// shorter), else 0. O(in).
int64_t naturalGroupSize(const at::Tensor& gIdx, int64_t groups);

// f(x, scale, zero) element-wise with per-group parameters [out, groups] broadcast over natural
// groups of g columns, without materialising [out, in] copies of them (the same float operations
// as on expanded parameters, so the same bits; a 7B model's RTN is mostly such passes).
at::Tensor applyPerGroup(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero, int64_t g,
                         const std::function<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>& f);

// Fills weight, codes (int32), params, relError (against the ORIGINAL w and H, when H is
// defined) and bit accounting. codes are float [out, in] holding integers of the dense part.
void finishResult(LayerQuantResult& r, const at::Tensor& w, const at::Tensor& codes, const WeightGrid& grid,
                  const at::Tensor& hessian, const quant::QuantSpec& spec);

// The result of bits = 16 (quantization off): the weight itself, 16 bits per weight.
LayerQuantResult unquantized(const std::string& method, const at::Tensor& w, const at::Tensor& hessian);

}  // namespace qs::algo
