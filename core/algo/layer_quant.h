// One entry point over the per-Linear weight quantizers: method by name (rtn, gptq, quantease,
// gptq_quantease), one options struct, from a Hessian or straight from calibration inputs.
// This is what bench-layer and (later) the layer-wise pipeline call.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "core/algo/gptq.h"
#include "core/algo/layer_result.h"
#include "core/algo/quantease.h"
#include "core/jobs/progress.h"
#include "core/quant/quant_spec.h"

namespace qs::algo {

enum class Method { Rtn, Gptq, QuantEase, GptqQuantEase };

const char* methodName(Method m);                // "rtn", "gptq", "quantease", "gptq_quantease"
Method parseMethod(const std::string& name);     // throws qs::Error naming "method"

struct LayerQuantOptions {
  Method method = Method::Gptq;    // "method"
  quant::QuantSpec spec;           // the weight grid (bit, group_size, act_order, observer, ...)
  double percdamp = 0.01;          // "percdamp": GPTQ dampening (also GPTQ init of gptq_quantease)
  int blockSize = 128;             // "blocksize": GPTQ lazy batch / QuantEase GEMM block
  int numIter = 30;                // "num_iter": QuantEase sweeps
  double outlierFraction = 0;      // "outlier": QuantEase methods only; fraction kept in full precision
  bool structuredOutlier = false;  // "structured_outlier": whole input columns
  double alpha = 1.0;              // "alpha": outlier IHT step as a fraction of 1/L
  QuantEaseInit quanteaseInit = QuantEaseInit::Best;  // "quantease_init": best | weights | rtn | gptq
  bool relaxedSweeps = true;       // "relaxed_sweeps": QuantEase's every third sweep unconstrained

  LayerQuantOptions& withMethod(Method v) { method = v; return *this; }
  LayerQuantOptions& withSpec(const quant::QuantSpec& v) { spec = v; return *this; }
  LayerQuantOptions& withBits(int v) { spec.bits = v; return *this; }
  LayerQuantOptions& withGroupSize(int v) { spec.groupSize = v; return *this; }
  LayerQuantOptions& withActOrder(bool v) { spec.actOrder = v; return *this; }
  LayerQuantOptions& withPercdamp(double v) { percdamp = v; return *this; }
  LayerQuantOptions& withNumIter(int v) { numIter = v; return *this; }
  LayerQuantOptions& withOutlier(double fraction, bool structured = false) {
    outlierFraction = fraction; structuredOutlier = structured; return *this;
  }
  LayerQuantOptions& withAlpha(double v) { alpha = v; return *this; }

  GptqOptions gptq() const;
  QuantEaseOptions quantEase() const;
  // Throws qs::Error naming the key (e.g. outlier with rtn/gptq).
  void validate() const;
};

// w [out, in], hessian [in, in].
LayerQuantResult quantizeLayer(const at::Tensor& w, const at::Tensor& hessian, const LayerQuantOptions& opts,
                               jobs::Progress& progress = jobs::Progress::none());

// Builds H from inputs [tokens, in] (or [..., in]) in batches first; fills hessianSeconds. The
// first 10% of progress is the Hessian.
LayerQuantResult quantizeLayerFromInputs(const at::Tensor& w, const at::Tensor& inputs, const LayerQuantOptions& opts,
                                         jobs::Progress& progress = jobs::Progress::none());

}  // namespace qs::algo
