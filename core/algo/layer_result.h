// What every weight quantizer (RTN, GPTQ, QuantEase, outlier-aware QuantEase) returns for one
// Linear, in one layout, so the pipeline, the run store and bench-layer treat them alike.
//
// Reconstruction: weight = (codes - zeros[:, gIdx]) * scales[:, gIdx] + outliers, where outliers
// is the sparse full-precision part (outlierIndices/outlierValues), added on top of the dense
// part. For structured outliers the dense part of a kept column is exactly 0 (codes = zero
// point) and the whole column lives in the sparse part.
//
// Bits per weight (stated accounting, the same for every method):
//   dense codes      bits for every weight (kept columns included: a dense layout stores them)
//   params           per group: 16-bit scale, plus a bits-wide zero point when asymmetric;
//                    plus a 32-bit g_idx entry per input column when act-order reorders groups
//   outliers         unstructured: 16-bit value + 32-bit flat index per outlier;
//                    structured: 16 * out_features bits + a 32-bit column index per kept column
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace qs::algo {

struct LayerQuantResult {
  std::string method;         // "rtn", "gptq", "quantease", "gptq_quantease" (+ "_outlier")
  at::Tensor weight;          // [out, in] float32: the dequantized weight to emulate with
  at::Tensor codes;           // [out, in] int32 integer codes of the dense part (undefined at 16 bits)
  at::Tensor scales;          // [out, groups] float32 (groups = 1 without group_size)
  at::Tensor zeros;           // [out, groups] float32 holding integers (0 when symmetric)
  at::Tensor gIdx;            // [in] int32: group of each input column (act-order permutes it)
  at::Tensor outlierIndices;  // [k, 2] int64 (row, column) of the sparse full-precision part
  at::Tensor outlierValues;   // [k] float32, added to the dense part at outlierIndices
  at::Tensor keptColumns;     // [c] int64 input columns kept in full precision (structured)
  double relError = 0;        // ||WX - W^X||^2 / ||WX||^2 = tr(dW H dW^T) / tr(W H W^T) (relativeError)
  double denseBits = 0;       // bits per weight of the dense codes
  double paramBits = 0;       // bits per weight spent on scales, zeros and g_idx
  double outlierBits = 0;     // extra bits per weight of the sparse part
  double bitsPerWeight = 0;   // denseBits + paramBits + outlierBits (16 when not quantized)
  double hessianSeconds = 0;  // building H from the inputs (0 when H was given)
  double quantSeconds = 0;    // the algorithm itself, error evaluation excluded
  double errorSeconds = 0;    // computing relError
  int iterations = 0;         // QuantEase sweeps done
  std::vector<double> objectiveTrace;  // QuantEase: tr(dW H dW^T) after init and after each sweep
};

// tr((W - Wq) H (W - Wq)^T) / tr(W H W^T), float64 sums (the GEMM in float32 above 2^35 multiply-
// adds, see layer_result.cpp). H [in, in]; 0 when W H W^T is 0.
double relativeError(const at::Tensor& w, const at::Tensor& wq, const at::Tensor& hessian);

// tr(D H D^T) in float64 for D [out, in].
double quadraticError(const at::Tensor& d, const at::Tensor& hessian);

// Rebuilds the weight from codes/scales/zeros/gIdx plus the sparse part (the documented layout).
at::Tensor reconstructWeight(const LayerQuantResult& r);

// Fills denseBits/paramBits/outlierBits/bitsPerWeight for r (bits, symmetric, groups, act-order).
// perTensor: one (scale, zero) for the whole weight, stored expanded to [out, 1].
void accountBits(LayerQuantResult& r, int bits, bool symmetric, int64_t outFeatures, int64_t inFeatures,
                 bool actOrderGroups, bool perTensor);

}  // namespace qs::algo
