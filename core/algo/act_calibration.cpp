#include "core/algo/act_calibration.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <unordered_map>

#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/quant/qconfig_yaml.h"
#include "core/util/error.h"

namespace qs::algo {

struct ActQuantSession::State {
  std::unordered_map<std::string, int> groupOfSite;            // site -> index into quantizers
  std::vector<std::unique_ptr<quant::ActQuantizer>> quantizers;
  bool observing = false;
  // Sites of one group receive the same input tensor: quantize once, so q/k/v stay one GEMM.
  at::Tensor lastIn, lastOut;
  int lastGroup = -1;
};

ActQuantSession::ActQuantSession(model::Model& model, const quant::ActQuantOptions& options,
                                 const std::vector<std::string>& except, bool matmulOperands)
    : model_(model), state_(std::make_shared<State>()), matmul_(matmulOperands) {
  options.validate();
  std::unordered_map<int, int> byGroup;
  for (const auto& si : model.sites()) {
    if (quant::siteExcluded(si.name, except)) continue;
    // Excluding one site of a shared input still quantizes the others with their own quantizer.
    const int key = si.inputGroup >= 0 ? si.inputGroup : -1 - static_cast<int>(state_->groupOfSite.size());
    auto it = byGroup.find(key);
    if (it == byGroup.end()) {
      it = byGroup.emplace(key, static_cast<int>(state_->quantizers.size())).first;
      state_->quantizers.push_back(std::make_unique<quant::ActQuantizer>(options));
    }
    state_->groupOfSite[si.name] = it->second;
  }
  if (matmul_) {
    const auto names = model.matmulSites();
    if (names.empty()) throw Error("this model has no attention matmul operands to quantize");
    for (const auto& name : names) {
      if (quant::siteExcluded(name, except)) continue;
      state_->groupOfSite[name] = static_cast<int>(state_->quantizers.size());
      state_->quantizers.push_back(std::make_unique<quant::ActQuantizer>(options));
    }
  }
  std::weak_ptr<State> weak = state_;
  auto transform = [weak](const std::string& site, const at::Tensor& x) -> at::Tensor {
    auto s = weak.lock();
    if (!s) return x;
    auto it = s->groupOfSite.find(site);
    if (it == s->groupOfSite.end()) return x;
    quant::ActQuantizer& q = *s->quantizers[static_cast<size_t>(it->second)];
    if (s->lastGroup == it->second && s->lastIn.defined() && s->lastIn.is_same(x)) return s->lastOut;
    at::Tensor y;
    if (s->observing) {
      q.observe(x);
      y = x;
    } else {
      y = q.apply(x);
    }
    s->lastIn = x;
    s->lastOut = y;
    s->lastGroup = it->second;
    return y;
  };
  model_.setInputTransform(transform);
  if (matmul_) model_.setMatmulTransform(transform);
}

ActQuantSession::~ActQuantSession() {
  model_.setInputTransform({});
  if (matmul_) model_.setMatmulTransform({});
}

void ActQuantSession::calibrate(const at::Tensor& samples, jobs::Progress& progress) {
  bool anyStatic = false;
  for (const auto& q : state_->quantizers) anyStatic |= !q->options().isDynamic() && q->options().enabled();
  if (!anyStatic) return;
  c10::InferenceMode guard;
  state_->observing = true;
  try {
    model::runBlocks(model_, samples, kCalibrationBatch, progress, "activation calibration");
  } catch (...) {
    state_->observing = false;
    throw;
  }
  state_->observing = false;
  state_->lastIn = state_->lastOut = at::Tensor();
  state_->lastGroup = -1;
  for (auto& q : state_->quantizers) q->finalize();
}

const quant::ActQuantizer* ActQuantSession::quantizer(const std::string& site) const {
  auto it = state_->groupOfSite.find(site);
  return it == state_->groupOfSite.end() ? nullptr : state_->quantizers[static_cast<size_t>(it->second)].get();
}

int ActQuantSession::numQuantizers() const { return static_cast<int>(state_->quantizers.size()); }

at::Tensor fakeQuantWeight(const at::Tensor& w, const quant::QuantSpec& spec) {
  if (!spec.enabled()) return w;
  c10::InferenceMode guard;
  const at::Tensor wf = w.to(at::kFloat);
  // Per group (a ragged last group included), per channel or per tensor, as every weight method.
  const quant::QuantParams p = quant::observeGroups(wf, spec);
  const at::Tensor gIdx = quant::naturalGroupIndex(wf.size(1), spec).to(at::kLong);
  const at::Tensor s = p.scale.index_select(1, gIdx), z = p.zero.index_select(1, gIdx);
  return quant::dequantizeCodes(quant::quantizeCodes(wf, s, z, spec), s, z).to(w.scalar_type());
}

int quantizeWeightsRtn(model::Model& model, const quant::QuantSpec& spec, const std::vector<std::string>& except,
                       jobs::Progress& progress) {
  if (!spec.enabled()) return 0;
  spec.validate();
  int done = 0;
  const auto& sites = model.sites();
  for (size_t i = 0; i < sites.size(); ++i) {
    progress.checkCancel();
    if (quant::siteExcluded(sites[i].name, except)) continue;
    model.setSiteWeight(sites[i].name, fakeQuantWeight(model.siteWeight(sites[i].name), spec));
    ++done;
    progress.update(static_cast<double>(i + 1) / static_cast<double>(sites.size()), "weights " + sites[i].name);
  }
  return done;
}

std::map<std::string, SiteInputStats> captureSiteInputs(model::Model& model, const at::Tensor& samples,
                                                        const std::vector<std::string>& sites, int64_t maxTokens,
                                                        jobs::Progress& progress) {
  std::map<std::string, SiteInputStats> out;
  for (const auto& s : sites) out[s];
  const int64_t n = samples.size(0);
  const int64_t batches = (n + kCalibrationBatch - 1) / kCalibrationBatch;
  const int64_t quota = std::max<int64_t>(1, maxTokens / std::max<int64_t>(1, batches));
  std::unordered_map<std::string, std::vector<at::Tensor>> kept;
  model.setInputHook([&](const std::string& site, const at::Tensor& x) {
    auto it = out.find(site);
    if (it == out.end()) return;
    SiteInputStats& st = it->second;
    at::Tensor rows = x.reshape({-1, x.size(-1)}).to(at::kFloat);
    at::Tensor mn = std::get<0>(rows.min(0)), mx = std::get<0>(rows.max(0));
    st.min = st.min.defined() ? at::minimum(st.min, mn) : mn;
    st.max = st.max.defined() ? at::maximum(st.max, mx) : mx;
    st.tokensSeen += rows.size(0);
    const int64_t step = std::max<int64_t>(1, rows.size(0) / quota);
    kept[site].push_back(rows.slice(0, 0, rows.size(0), step).slice(0, 0, quota).cpu().clone());
  });
  try {
    c10::InferenceMode guard;
    model::runBlocks(model, samples, kCalibrationBatch, progress, "channel ranges");
  } catch (...) {
    model.setInputHook({});
    throw;
  }
  model.setInputHook({});
  for (auto& [site, st] : out) {
    if (!st.min.defined()) throw Error("site '" + site + "' saw no input during calibration");
    st.min = st.min.cpu();
    st.max = st.max.cpu();
    st.absMax = at::maximum(st.min.abs(), st.max.abs());
    at::Tensor all = at::cat(kept[site]);
    st.tokens = all.size(0) > maxTokens ? all.slice(0, 0, maxTokens) : all;
  }
  return out;
}

at::Tensor calibrationWindows(const std::vector<int32_t>& tokens, int n, int seqlen) {
  const int64_t total = static_cast<int64_t>(tokens.size());
  if (n < 1 || seqlen < 2) throw Error("calibration needs at least 1 sample of at least 2 tokens");
  if (total < seqlen)
    throw Error("calibration text has " + std::to_string(total) + " tokens, fewer than one window of " +
                std::to_string(seqlen));
  at::Tensor out = at::empty({n, seqlen}, at::kLong);
  auto acc = out.accessor<int64_t, 2>();
  const int64_t span = total - seqlen;
  for (int i = 0; i < n; ++i) {
    const int64_t start = n == 1 ? 0 : span * i / (n - 1);
    for (int t = 0; t < seqlen; ++t) acc[i][t] = tokens[static_cast<size_t>(start + t)];
  }
  return out;
}

}  // namespace qs::algo
