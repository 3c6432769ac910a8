#include "core/algo/precision_eval.h"

#include <ATen/ATen.h>

#include <cstdio>

#include "core/model/model.h"
#include "core/quant/format_density.h"

namespace qs::algo {

std::string PrecisionSummary::describe() const {
  char buf[160];
  std::snprintf(buf, sizeof buf, "weights %.2f bits (%.2fx memory, ~%.1fx arithmetic), inputs %.2f bits, %zu sites",
                weightBits, weightBits > 0 ? 32.0 / weightBits : 0.0, weightArithmeticDensity, inputBits,
                sites.size());
  return buf;
}

PrecisionSummary summarizePrecision(const std::vector<model::SiteInfo>& sites, const quant::LayerPrecision& lp) {
  PrecisionSummary s;
  double wBits = 0, wArith = 0, iBits = 0;
  int64_t inTotal = 0;
  std::vector<std::string> names;
  for (const auto& si : sites) {
    const auto m = lp.match(si.name);
    PrecisionSummary::Site site;
    site.name = si.name;
    site.weight = m.precision.weight;
    site.input = m.precision.input;
    site.rule = m.rule;
    site.weightElements = si.outFeatures * si.inFeatures;
    const auto wd = quant::formatDensity(site.weight, si.inFeatures);
    site.weightBits = wd.bitsPerElement;
    site.inputBits = quant::formatDensity(site.input, si.inFeatures).bitsPerElement;
    wBits += site.weightBits * static_cast<double>(site.weightElements);
    wArith += wd.arithmeticDensity * static_cast<double>(site.weightElements);
    iBits += site.inputBits * static_cast<double>(si.inFeatures);
    s.weightElements += site.weightElements;
    inTotal += si.inFeatures;
    names.push_back(si.name);
    s.sites.push_back(std::move(site));
  }
  if (s.weightElements > 0) {
    s.weightBits = wBits / static_cast<double>(s.weightElements);
    s.weightArithmeticDensity = wArith / static_cast<double>(s.weightElements);
  }
  if (inTotal > 0) s.inputBits = iBits / static_cast<double>(inTotal);
  s.unusedRules = lp.unusedRules(names);
  return s;
}

PrecisionEmulator::~PrecisionEmulator() {
  try {
    restore();
  } catch (...) {
    // A destructor must not throw; the model is being discarded with the emulator anyway.
  }
}

PrecisionSummary PrecisionEmulator::apply(const quant::LayerPrecision& lp, jobs::Progress& progress) {
  const auto& sites = model_.sites();
  PrecisionSummary summary = summarizePrecision(sites, lp);
  model_.setInputTransform({});
  // Weights are quantized as their block is materialised (a weight transform), so no copy of the
  // model is held and a model larger than memory streams with its formats.
  std::map<std::string, quant::NumberFormat> weights;
  for (const auto& site : summary.sites)
    if (site.weight.enabled()) weights.emplace(site.name, site.weight);
  progress.checkCancel();
  if (weights.empty()) {
    model_.setWeightTransform({});
  } else {
    model_.setWeightTransform([weights = std::move(weights)](const std::string& name, const at::Tensor& w) {
      const auto it = weights.find(name);
      return it == weights.end() ? w : quant::quantize(w, it->second);
    });
  }
  progress.update(1.0, "weight formats");
  // Input formats by site; sites sharing one input tensor and one format get the very same
  // quantized tensor back, so the engine keeps their fused GEMM.
  std::map<std::string, quant::NumberFormat> inputs;
  for (const auto& site : summary.sites)
    if (site.input.enabled()) inputs.emplace(site.name, site.input);
  if (!inputs.empty()) {
    struct Last {
      const void* impl = nullptr;
      std::string fmt;
      at::Tensor x, q;  // x is held so its address cannot be reused by another tensor
    };
    auto last = std::make_shared<Last>();
    model_.setInputTransform([inputs = std::move(inputs), last](const std::string& name, const at::Tensor& x) {
      const auto it = inputs.find(name);
      if (it == inputs.end()) return x;
      const std::string fmt = it->second.toString();
      if (last->impl == x.unsafeGetTensorImpl() && last->fmt == fmt) return last->q;
      at::Tensor q = quant::quantize(x, it->second);
      *last = {x.unsafeGetTensorImpl(), fmt, x, q};
      return q;
    });
  }
  return summary;
}

void PrecisionEmulator::restore() {
  model_.setInputTransform({});
  model_.setWeightTransform({});
}

}  // namespace qs::algo
