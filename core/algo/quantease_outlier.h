// Outlier-aware QuantEase (Algorithm 3 of the paper): W is approximated by W^ + S, W^ on the grid
// and S sparse in full precision, minimising tr((W - W^ - S) H (W - W^ - S)^T). Implemented inside
// quantizeQuantEase as coordinate descent with free coordinates: the kept weights (the support of
// S) are coordinates that move to their exact optimum and keep the zero point as code, so the
// sweeps optimise S and W^ together. The support starts, as in the reference, at the `keep`
// largest |W| over the matrix (or the `keep` columns of largest norm); the grid is fitted to the
// other weights (a kept 1% no longer stretches every row's range); after each rounding sweep one
// iterative-hard-thresholding step (S + alpha / lambda_max(H) P, the `keep` largest) may move the
// support. keep = round(fraction * weights) (or fraction * in columns), exactly.
#pragma once
#include <ATen/core/Tensor.h>

#include "core/algo/layer_result.h"
#include "core/algo/quantease.h"
#include "core/algo/weight_grid.h"
#include "core/jobs/progress.h"

namespace qs::algo {

// What plain and outlier-aware QuantEase start from (prepared by quantizeQuantEase).
struct QuantEaseStart {
  at::Tensor target;  // [out, in] float32: W with dead columns zeroed
  at::Tensor h;       // [in, in] float32: H with dead diagonals set to 1
  at::Tensor wq;      // [out, in] float32 W^ on the grid (RTN or GPTQ; kept weights at W)
  at::Tensor codes;   // [out, in] float32 codes of wq (the zero point at kept weights)
  WeightGrid grid;    // the grid per group
  at::Tensor column;  // [in] int64: the group of each column as the descent sweeps them
  at::Tensor free;    // [out, in] float32 1 = kept in full precision (outlier support); or undefined
  int64_t keep = 0;   // size of the support (weights, or columns when structured)
};

// Largest eigenvalue of a symmetric PSD matrix by power iteration (float64), with a small upward
// margin so that 1/L from it is a safe step.
double largestEigenvalue(const at::Tensor& h, int iterations = 100);

}  // namespace qs::algo
