// GPTQ (Frantar et al. 2022) on one Linear: columns are quantized one at a time and the error of
// each is spread onto the not-yet-quantized columns through the Cholesky factor of H^-1, with
// lazy batch updates (one GEMM per block of columns), optional act-order (columns by decreasing
// H diagonal), groups and static groups. Dead inputs (H_jj = 0) get W[:, j] = 0 and H_jj = 1.
#pragma once
#include <ATen/core/Tensor.h>

#include "core/algo/layer_result.h"
#include "core/jobs/progress.h"
#include "core/quant/quant_spec.h"

namespace qs::algo {

struct GptqOptions {
  quant::QuantSpec spec;  // bit, symmetric, group_size, act_order, static_groups, observer
  double percdamp = 0.01;  // "percdamp": added to H's diagonal as a fraction of its mean
  int blockSize = 128;     // "blocksize": columns per lazy batch update
  // Weights kept in full precision ([out, in], nonzero = kept; undefined = none): they are not
  // rounded (their error is zero, so nothing is spread from them), the grid is fitted to the other
  // weights, their codes are the zero point and their final values the sparse part of the result
  // (outlierIndices / outlierValues). QuantEase's outlier variant starts from this.
  at::Tensor keep;
  bool measureError = true;  // false: relError left 0 (a caller that goes on from the result, e.g. QuantEase's start)

  GptqOptions& withSpec(const quant::QuantSpec& v) { spec = v; return *this; }
  GptqOptions& withBits(int v) { spec.bits = v; return *this; }
  GptqOptions& withSymmetric(bool v) { spec.symmetric = v; return *this; }
  GptqOptions& withGroupSize(int v) { spec.groupSize = v; return *this; }
  GptqOptions& withActOrder(bool v) { spec.actOrder = v; return *this; }
  GptqOptions& withStaticGroups(bool v) { spec.staticGroups = v; return *this; }
  GptqOptions& withPercdamp(double v) { percdamp = v; return *this; }
  GptqOptions& withBlockSize(int v) { blockSize = v; return *this; }

  // Throws qs::Error naming the key (spec keys, percdamp, blocksize).
  void validate() const;
};

// w [out, in] (any float dtype), hessian [in, in] (e.g. from HessianAccumulator). relError is
// against w and the given (undamped) hessian. Checks progress for cancellation every block.
LayerQuantResult quantizeGptq(const at::Tensor& w, const at::Tensor& hessian, const GptqOptions& opts,
                              jobs::Progress& progress = jobs::Progress::none());

}  // namespace qs::algo
