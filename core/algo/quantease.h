// QuantEase (Behdin et al. 2023): cyclic coordinate descent over the quantization grid on the
// layer objective f(W^) = tr((W - W^) H (W - W^)^T) = (2/n) ||WX - W^X||^2. Rows are independent
// and every coordinate update is exact: column j moves to the grid point nearest
//   beta_j = W^_j + P_j / H_jj,   P = (W - W^) H   (the residual product),
// after which P changes by the rank-1 term (old_j - new_j) H_j. This is the accelerated column
// form of the paper (Algorithm 2): within a block of columns the rank-1 updates touch only the
// block, and one GEMM per block brings the rest of P up to date, so a sweep costs about one
// out x in x in GEMM and needs no matrix inverse.
//
// The iteration follows the reference implementation's schedule, which matters more than any
// other detail (issue 16, docs/BENCHMARKS.md "QuantEase against its reference"):
//  - it starts from W itself, off the grid, so the first sweep rounds column by column with the
//    error of the columns already rounded fed forward (a GPTQ-like pass with H instead of H^-1);
//    starting from round-to-nearest instead ends in a worse local minimum;
//  - every third sweep (1, 4, 7, ...; not in the last four) is relaxed: each weight moves to its
//    unconstrained optimum, which pulls W^ back towards W and lets the next rounding sweep leave
//    the local minimum the previous ones settled in;
//  - the result is the best quantized iterate (the reference returns the last one), so it is never
//    worse than any rounding sweep it made, a GPTQ start included;
//  - by default (quantease_init best) GPTQ's rounding is polished too (num_iter / 10 rounding
//    sweeps) and the better of the two is kept: from W on strongly
//    correlated inputs the descent settles above GPTQ; from GPTQ's rounding it can only go lower.
//
// `gptq_quantease` starts from GPTQ's codes and grid; the objective stays the distance to the
// ORIGINAL W (not to GPTQ's output, which would make the sweeps a no-op). The outlier-aware
// variant (Algorithm 3) is in quantease_outlier.h.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "core/algo/layer_result.h"
#include "core/jobs/progress.h"
#include "core/quant/quant_spec.h"

namespace qs::algo {

// Where plain QuantEase starts ("quantease_init"): W itself (off the grid, the reference's start),
// its round to nearest, GPTQ's rounding, or best: the descent from W, then GPTQ's rounding polished
// by up to polishSweeps(num_iter) rounding sweeps, the better kept.
enum class QuantEaseInit { Weights, Rtn, Gptq, Best };
const char* quantEaseInitName(QuantEaseInit v);                 // "weights", "rtn", "gptq", "best"
QuantEaseInit parseQuantEaseInit(const std::string& text);      // throws qs::Error naming "quantease_init"

// Whether sweep `it` of `numIter` is relaxed under the reference schedule: it % 3 == 1, not in the
// last four sweeps.
bool relaxedSweep(int it, int numIter);

// The most rounding sweeps quantease_init best spends polishing GPTQ's rounding: num_iter / 10, at
// least 1 (the whole run then costs about 10 % more than the descent from W, plus one GPTQ).
int polishSweeps(int numIter);

struct QuantEaseOptions {
  quant::QuantSpec spec;           // bit, symmetric, group_size, act_order (GPTQ init), observer
  int numIter = 30;                // "num_iter": full cyclic sweeps over all columns
  bool gptqInit = false;           // "gptq_quantease": start from GPTQ's result and grid
  QuantEaseInit init = QuantEaseInit::Best;  // "quantease_init": start(s) of plain QuantEase
  bool relaxedSweeps = true;       // "relaxed_sweeps": every third sweep unconstrained (the reference's)
  double percdamp = 0.01;          // "percdamp": GPTQ initialisation only
  int blockSize = 128;             // "blocksize": columns per GEMM update of the residual product
  double outlierFraction = 0;      // "outlier": fraction of weights kept in full precision; 0 = off
  bool structuredOutlier = false;  // "structured_outlier": keep whole input columns, not single weights
  double alpha = 1.0;              // "alpha": IHT step of the outlier part, as a fraction of 1/L (0, 1]

  QuantEaseOptions& withSpec(const quant::QuantSpec& v) { spec = v; return *this; }
  QuantEaseOptions& withBits(int v) { spec.bits = v; return *this; }
  QuantEaseOptions& withSymmetric(bool v) { spec.symmetric = v; return *this; }
  QuantEaseOptions& withGroupSize(int v) { spec.groupSize = v; return *this; }
  QuantEaseOptions& withActOrder(bool v) { spec.actOrder = v; return *this; }
  QuantEaseOptions& withNumIter(int v) { numIter = v; return *this; }
  QuantEaseOptions& withGptqInit(bool v) { gptqInit = v; return *this; }
  QuantEaseOptions& withPercdamp(double v) { percdamp = v; return *this; }
  QuantEaseOptions& withBlockSize(int v) { blockSize = v; return *this; }
  QuantEaseOptions& withOutlier(double fraction, bool structured = false) {
    outlierFraction = fraction; structuredOutlier = structured; return *this;
  }
  QuantEaseOptions& withAlpha(double v) { alpha = v; return *this; }
  QuantEaseOptions& withInit(QuantEaseInit v) { init = v; return *this; }
  QuantEaseOptions& withRelaxedSweeps(bool v) { relaxedSweeps = v; return *this; }

  // Throws qs::Error naming the key (spec keys, num_iter, percdamp, blocksize, outlier, alpha).
  void validate() const;
};

// The grid as the descent reads it: scales / zeros [out, groups] float32 and each column's group
// (int64 [in]). Per-element parameters are the case groups = in, group = arange(in).
struct ColumnGrid {
  at::Tensor scales, zeros, group;
};

// The coordinate-descent state on f(W^) = tr((T - W^) H (T - W^)^T) with a fixed grid. T is the
// target (W, or W minus the outlier part); all tensors float32 [out, in] except H and the grid.
class CoordinateDescent {
 public:
  // h: [in, in] with a positive diagonal (dead columns already set to 1); initCodes are the codes
  // of init when init lies on the grid (scale, zero) given per element; init may also be off the
  // grid (W itself): the first rounding sweep then sets every code. init and initCodes are copied
  // unless handed over (std::move of the only reference): the descent edits them in place.
  CoordinateDescent(const at::Tensor& target, at::Tensor init, at::Tensor initCodes,
                    const at::Tensor& h, const at::Tensor& scale, const at::Tensor& zero,
                    const quant::QuantSpec& spec, int blockSize);
  // The grid per group: the CPU sweep expands a block's columns at a time, so a 7B down
  // projection does not hold two more [out, in] float32 copies (360 MB).
  CoordinateDescent(const at::Tensor& target, at::Tensor init, at::Tensor initCodes, const at::Tensor& h,
                    const ColumnGrid& grid, const quant::QuantSpec& spec, int blockSize);
  // One cyclic pass over all columns; progress fractions map onto [begin, end]. Cancellable.
  // quantize: each weight goes to the grid point nearest its optimum; else (a relaxed sweep) to the
  // optimum itself, codes untouched. Free weights (setFree) always take their optimum and the zero
  // point as code. CPU tensors take the row-parallel scalar loop; CUDA tensors sweepBlocked.
  void sweep(jobs::Progress& progress, double begin, double end, bool quantize = true);
  // The same pass in the device form (quantease_sweep.h): per block, the column updates for all
  // rows at once (the registered CUDA kernel, else ATen ops), then the GEMMs. No host round trip
  // per column. Exactly equal to sweep() on the CPU (the test checks it there).
  void sweepBlocked(jobs::Progress& progress, double begin, double end, bool quantize = true);
  // Weights kept in full precision (outliers): mask [out, in], nonzero = free; undefined = none.
  void setFree(const at::Tensor& mask);
  // Moves the target (P follows with one GEMM).
  void setTarget(const at::Tensor& target);
  // tr((T - W^) H (T - W^)^T) in float64, from the maintained residual product.
  double objective() const;

  const at::Tensor& weight() const { return wq_; }
  const at::Tensor& codes() const { return codes_; }
  const at::Tensor& target() const { return target_; }
  const at::Tensor& residualProduct() const { return p_; }  // (T - W^) H
  const at::Tensor& freeMask() const { return free_; }

  // Where the sweeps' time went: the column updates inside each block (the scalar loop or the
  // device kernel) and the GEMMs that bring the rest of P up to date, summed over all sweeps.
  struct SweepSeconds {
    double columns = 0, updates = 0;
    int sweeps = 0;
  };
  const SweepSeconds& sweepSeconds() const { return seconds_; }

 private:
  SweepSeconds seconds_;
  at::Tensor target_, wq_, codes_, h_, p_;
  at::Tensor scale_, zero_, group_;           // [out, groups] float32, [in] int64
  at::Tensor expandedScale_, expandedZero_;   // [out, in], built for sweepBlocked only
  at::Tensor free_;  // float32 [out, in]: 1 = free (full precision), or undefined
  quant::QuantSpec spec_;
  int blockSize_;
};

// w [out, in], hessian [in, in]. Plain QuantEase, or the outlier-aware variant when
// opts.outlierFraction > 0. relError against w and the given hessian; objectiveTrace holds f of
// every quantized iterate (per descent: the start when it is on the grid, then each rounding sweep;
// the descents of quantease_init best one after the other), and the result is the one with the
// smallest. iterations counts the sweeps of all descents.
LayerQuantResult quantizeQuantEase(const at::Tensor& w, const at::Tensor& hessian, const QuantEaseOptions& opts,
                                   jobs::Progress& progress = jobs::Progress::none());

}  // namespace qs::algo
