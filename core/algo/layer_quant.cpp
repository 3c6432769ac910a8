#include "core/algo/layer_quant.h"

#include <ATen/ATen.h>

#include <chrono>

#include "core/algo/hessian.h"
#include "core/algo/rtn.h"
#include "core/algo/weight_grid.h"
#include "core/util/error.h"

namespace qs::algo {

const char* methodName(Method m) {
  switch (m) {
    case Method::Rtn: return "rtn";
    case Method::Gptq: return "gptq";
    case Method::QuantEase: return "quantease";
    case Method::GptqQuantEase: return "gptq_quantease";
  }
  return "?";
}

Method parseMethod(const std::string& name) {
  for (Method m : {Method::Rtn, Method::Gptq, Method::QuantEase, Method::GptqQuantEase})
    if (name == methodName(m)) return m;
  throw Error("method: '" + name + "' is not one of rtn, gptq, quantease, gptq_quantease");
}

GptqOptions LayerQuantOptions::gptq() const {
  GptqOptions g;
  g.spec = spec;
  g.percdamp = percdamp;
  g.blockSize = blockSize;
  return g;
}

QuantEaseOptions LayerQuantOptions::quantEase() const {
  QuantEaseOptions q;
  q.spec = spec;
  q.numIter = numIter;
  q.gptqInit = method == Method::GptqQuantEase;
  q.percdamp = percdamp;
  q.blockSize = blockSize;
  q.outlierFraction = outlierFraction;
  q.structuredOutlier = structuredOutlier;
  q.alpha = alpha;
  q.init = quanteaseInit;
  q.relaxedSweeps = relaxedSweeps;
  return q;
}

void LayerQuantOptions::validate() const {
  if ((method == Method::Rtn || method == Method::Gptq) && outlierFraction != 0)
    throw Error(std::string("outlier: only the QuantEase methods keep outliers (method is ") + methodName(method) + ")");
  if (method == Method::Rtn || method == Method::Gptq)
    gptq().validate();
  else
    quantEase().validate();
}

LayerQuantResult quantizeLayer(const at::Tensor& w, const at::Tensor& hessian, const LayerQuantOptions& opts,
                               jobs::Progress& progress) {
  opts.validate();
  // On a llama.cpp grid (observer ggml, groups of 32; ggml_k) a matrix whose rows do not split into
  // blocks cannot be on it: llama.cpp keeps such a matrix in another type, the run in float.
  // A K-quant grid's super-blocks are 256 columns.
  const bool ggmlGrid = opts.spec.observer == quant::Observer::Ggml || opts.spec.observer == quant::Observer::GgmlK;
  const int64_t block = opts.spec.observer == quant::Observer::GgmlK ? 256 : opts.spec.groupSize;
  if (ggmlGrid && opts.spec.enabled() && w.dim() == 2 && w.size(1) % block != 0)
    return unquantized(methodName(opts.method), w.to(at::kFloat), hessian);
  switch (opts.method) {
    case Method::Rtn: return quantizeRtn(w, opts.spec, hessian, progress);
    case Method::Gptq: return quantizeGptq(w, hessian, opts.gptq(), progress);
    case Method::QuantEase:
    case Method::GptqQuantEase: return quantizeQuantEase(w, hessian, opts.quantEase(), progress);
  }
  throw Error("method: unknown");
}

LayerQuantResult quantizeLayerFromInputs(const at::Tensor& w, const at::Tensor& inputs, const LayerQuantOptions& opts,
                                         jobs::Progress& progress) {
  opts.validate();
  if (!w.defined() || w.dim() != 2) throw Error("weight: expected a 2-D [out, in] tensor");
  if (!inputs.defined() || inputs.dim() < 1 || inputs.size(-1) != w.size(1))
    throw Error("inputs: last dimension must equal the weight's in_features " + std::to_string(w.size(1)));
  const auto t0 = std::chrono::steady_clock::now();
  jobs::SubProgress hp(progress, 0.0, 0.1);
  const at::Tensor h = hessianFromInputs(inputs, hp);
  const double hs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  jobs::SubProgress qp(progress, 0.1, 1.0);
  LayerQuantResult r = quantizeLayer(w, h, opts, qp);
  r.hessianSeconds = hs;
  return r;
}

}  // namespace qs::algo
