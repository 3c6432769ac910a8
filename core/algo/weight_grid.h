// The quantization grid of a weight [out, in] that the algorithms share: per-group (scale, zero)
// in original column order with each input column's group (g_idx), the per-element expansion
// coordinate descent needs, and the common finishing of a LayerQuantResult.
#pragma once
#include <ATen/core/Tensor.h>

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

// Fills weight, codes (int32), params, relError (against the ORIGINAL w and H, when H is
// defined) and bit accounting. codes are float [out, in] holding integers of the dense part.
void finishResult(LayerQuantResult& r, const at::Tensor& w, const at::Tensor& codes, const WeightGrid& grid,
                  const at::Tensor& hessian, const quant::QuantSpec& spec);

// The result of bits = 16 (quantization off): the weight itself, 16 bits per weight.
LayerQuantResult unquantized(const std::string& method, const at::Tensor& w, const at::Tensor& hessian);

}  // namespace qs::algo
