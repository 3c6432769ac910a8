#include "core/algo/smoothquant.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "core/algo/act_calibration.h"
#include "core/model/migration.h"
#include "core/model/model.h"
#include "core/util/error.h"

namespace qs::algo {

at::Tensor smoothQuantScales(const at::Tensor& xMax, const std::vector<at::Tensor>& weights,
                             const SmoothQuantOptions& options) {
  if (!(options.alpha >= 0 && options.alpha <= 1)) throw Error("SmoothQuant alpha must be in [0, 1]");
  if (weights.empty()) throw Error("SmoothQuant needs at least one consumer weight");
  c10::InferenceMode guard;
  at::Tensor wMax;
  for (const auto& w : weights) {
    at::Tensor m = std::get<0>(w.to(at::kFloat).abs().max(0));
    wMax = wMax.defined() ? at::maximum(wMax, m) : m;
  }
  at::Tensor x = xMax.to(at::kFloat).clamp_min(options.minScale);
  at::Tensor s = x.pow(options.alpha) / wMax.clamp_min(options.minScale).pow(1.0 - options.alpha);
  return s.clamp_min(options.minScale);
}

std::vector<SmoothQuantPair> applySmoothQuant(model::Model& model, const at::Tensor& samples,
                                              const SmoothQuantOptions& options, jobs::Progress& progress,
                                              const PairObserver& observe, int64_t statTokens) {
  std::vector<SmoothQuantPair> out;
  forEachPairBlockwise(
      model, samples, options.valueOut, /*maxTokens=*/1, statTokens,
      [&](int, const model::MigrationPair& pair, const SiteInputStats& st) {
        std::vector<at::Tensor> ws;
        for (const auto& c : pair.consumers) ws.push_back(model.siteWeight(c));
        SmoothQuantPair r;
        r.name = pair.name;
        r.scale = smoothQuantScales(st.absMax, ws, options);
        r.maxAbsBefore = st.absMax.max().item<double>();
        r.maxAbsAfter = (st.absMax / r.scale).max().item<double>();
        model::foldMigration(model, pair, {}, r.scale);
        if (observe) observe(pair, st, at::Tensor(), r.scale);
        out.push_back(std::move(r));
      },
      progress, "SmoothQuant capture");
  if (!out.empty()) progress.update(1.0, "SmoothQuant folded");
  return out;
}

}  // namespace qs::algo
