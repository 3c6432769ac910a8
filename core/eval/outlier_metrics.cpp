#include "core/eval/outlier_metrics.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <tuple>
#include <unordered_map>

#include "core/analysis/channel_stats.h"
#include "core/eval/window_pass.h"
#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/util/error.h"

namespace qs::eval {
namespace {

analysis::ChannelStatsOptions plainStats() { return analysis::ChannelStatsOptions().withTopTokens(0).withPositions(false); }

// Clears the model's input hook however the pass ends.
struct HookGuard {
  model::Model& m;
  ~HookGuard() { m.setInputHook({}); }
};

}  // namespace

std::string OutlierMetrics::protocol() const {
  return std::string(kOutlierProtocol) + " " + perplexity.protocol + " seqlen=" + std::to_string(perplexity.seqlen) +
         " windows=" + std::to_string(perplexity.windows);
}

std::vector<std::pair<std::string, double>> OutlierMetrics::namedValues(bool perLayer) const {
  std::vector<std::pair<std::string, double>> v = {{"outlier.max_inf_norm", maxInfNorm},
                                                   {"outlier.ffn_max_inf_norm", ffnMaxInfNorm},
                                                   {"outlier.attn_max_inf_norm", attnMaxInfNorm},
                                                   {"outlier.kurtosis_avg", kurtosisAvg},
                                                   {"outlier.kurtosis_max", kurtosisMax},
                                                   {"outlier.attn_kurtosis_avg", attnKurtosisAvg},
                                                   {"outlier.attn_kurtosis_max", attnKurtosisMax},
                                                   {"outlier.ffn_kurtosis_avg", ffnKurtosisAvg},
                                                   {"outlier.ffn_kurtosis_max", ffnKurtosisMax}};
  if (perLayer)
    for (const auto& l : layers) {
      const std::string p = "outlier.layer" + std::to_string(l.layer) + ".";
      v.emplace_back(p + "inf_norm", l.infNorm);
      v.emplace_back(p + "ffn_inf_norm", l.ffnInfNorm);
      v.emplace_back(p + "attn_inf_norm", l.attnInfNorm);
      v.emplace_back(p + "kurtosis", l.kurtosis);
      v.emplace_back(p + "attn_kurtosis", l.attnKurtosis);
      v.emplace_back(p + "ffn_kurtosis", l.ffnKurtosis);
    }
  return v;
}

std::vector<std::string> ffnOutputSites(const model::Model& model) {
  const auto& cfg = model.config();
  std::vector<std::string> out(static_cast<size_t>(model.numBlocks()));
  for (const auto& s : model.sites())
    if (s.block >= 0 && s.block < model.numBlocks() && s.outFeatures == cfg.hiddenSize &&
        s.inFeatures == cfg.intermediateSize)
      out[static_cast<size_t>(s.block)] = s.name;  // sites are in block order: the last one wins
  return out;
}

std::vector<std::string> attentionOutputSites(const model::Model& model) {
  static const char* const kSuffixes[] = {".self_attn.out_proj", ".self_attn.o_proj", ".self_attention.dense",
                                          ".attention.dense", ".attn.c_proj", ".attn.out_proj"};
  std::vector<std::string> out(static_cast<size_t>(model.numBlocks()));
  for (const auto& s : model.sites()) {
    if (s.block < 0 || s.block >= model.numBlocks()) continue;
    for (const char* suffix : kSuffixes) {
      const std::string suf = suffix;
      if (s.name.size() > suf.size() && s.name.compare(s.name.size() - suf.size(), suf.size(), suf) == 0)
        out[static_cast<size_t>(s.block)] = s.name;
    }
  }
  return out;
}

OutlierMetrics evaluateOutlierMetrics(model::Model& model, const std::vector<int32_t>& tokens,
                                      const PerplexityOptions& options, jobs::Progress& progress) {
  OutlierMetrics r;
  PerplexityResult& p = r.perplexity;
  p = planWindows(model, static_cast<int64_t>(tokens.size()), options);

  const int L = model.numBlocks();
  std::vector<analysis::ChannelStats> blockOut(static_cast<size_t>(L), analysis::ChannelStats(plainStats()));
  std::vector<analysis::ChannelStats> ffnOut(static_cast<size_t>(L), analysis::ChannelStats(plainStats()));
  std::vector<analysis::ChannelStats> attnOut(static_cast<size_t>(L), analysis::ChannelStats(plainStats()));
  std::vector<double> kurtSum(static_cast<size_t>(L), 0.0), kurtMax(static_cast<size_t>(L), 0.0);
  std::vector<double> ffnKurtSum(static_cast<size_t>(L), 0.0), attnKurtSum(static_cast<size_t>(L), 0.0);
  std::vector<int64_t> ffnKurtTokens(static_cast<size_t>(L), 0), attnKurtTokens(static_cast<size_t>(L), 0);
  int64_t kurtTokens = 0;
  // Per-token kurtosis over the hidden dimension of y [..., D]: the tokens as the "channels" of a
  // [hidden, tokens] batch; NaN (a constant token vector) counts as 0. Returns (sum, max, tokens).
  auto tokenKurtosis = [](const at::Tensor& y) {
    analysis::ChannelStats perToken(plainStats());
    perToken.update(y.reshape({-1, y.size(-1)}).t());
    at::Tensor k = at::nan_to_num(perToken.kurtosis(), 0.0);
    return std::make_tuple(k.sum().item<double>(), k.max().item<double>(), k.numel());
  };

  // FFN output = the down projection applied to its captured input, attention output the output
  // projection applied to its input (the engine has no hook on Linear outputs); computed per
  // batch, so nothing is kept.
  std::unordered_map<std::string, std::pair<int, bool>> outputSite;  // site -> (layer, is FFN)
  const std::vector<std::string> ffnSites = ffnOutputSites(model), attnSites = attentionOutputSites(model);
  for (int i = 0; i < L; ++i) {
    if (!ffnSites[static_cast<size_t>(i)].empty()) outputSite[ffnSites[static_cast<size_t>(i)]] = {i, true};
    if (!attnSites[static_cast<size_t>(i)].empty()) outputSite[attnSites[static_cast<size_t>(i)]] = {i, false};
  }
  HookGuard restore{model};
  model.setInputHook([&](const std::string& site, const at::Tensor& x) {
    const auto it = outputSite.find(site);
    if (it == outputSite.end()) return;
    at::Tensor w = model.siteWeight(site).to(x.device(), x.scalar_type());
    at::Tensor b = model.siteBias(site);
    at::Tensor y = at::linear(x, w, b.defined() ? b.to(x.device(), x.scalar_type()) : at::Tensor());
    const auto layer = static_cast<size_t>(it->second.first);
    const auto [ksum, kmax, n] = tokenKurtosis(y);
    (void)kmax;
    if (it->second.second) {
      ffnOut[layer].update(y);
      ffnKurtSum[layer] += ksum;
      ffnKurtTokens[layer] += n;
    } else {
      attnOut[layer].update(y);
      attnKurtSum[layer] += ksum;
      attnKurtTokens[layer] += n;
    }
  });

  c10::InferenceMode guard;
  runWindowPass(model, tokens, options.batchSize, p, progress, [&](int i, const at::Tensor& h) {
    blockOut[static_cast<size_t>(i)].update(h);
    const auto [ksum, kmax, n] = tokenKurtosis(h);
    kurtSum[static_cast<size_t>(i)] += ksum;
    kurtMax[static_cast<size_t>(i)] = std::max(kurtMax[static_cast<size_t>(i)], kmax);
    if (i == 0) kurtTokens += n;
  });

  double kurtTotal = 0, ffnKurtTotal = 0, attnKurtTotal = 0;
  int ffnLayers = 0, attnLayers = 0;
  r.attnKurtosisMax = r.ffnKurtosisMax = 0;
  for (int i = 0; i < L; ++i) {
    LayerOutlierMetrics m;
    m.layer = i;
    m.infNorm = blockOut[static_cast<size_t>(i)].absmax().max().item<double>();
    const auto& f = ffnOut[static_cast<size_t>(i)];
    m.ffnInfNorm = f.count() > 0 ? f.absmax().max().item<double>() : NAN;
    m.kurtosis = kurtSum[static_cast<size_t>(i)] / static_cast<double>(kurtTokens);
    m.kurtosisTokenMax = kurtMax[static_cast<size_t>(i)];
    const auto& a = attnOut[static_cast<size_t>(i)];
    m.attnInfNorm = a.count() > 0 ? a.absmax().max().item<double>() : NAN;
    const int64_t fn = ffnKurtTokens[static_cast<size_t>(i)], an = attnKurtTokens[static_cast<size_t>(i)];
    m.ffnKurtosis = fn > 0 ? ffnKurtSum[static_cast<size_t>(i)] / static_cast<double>(fn) : NAN;
    m.attnKurtosis = an > 0 ? attnKurtSum[static_cast<size_t>(i)] / static_cast<double>(an) : NAN;
    if (!std::isnan(m.attnInfNorm)) r.attnMaxInfNorm = std::max(r.attnMaxInfNorm, m.attnInfNorm);
    if (fn > 0) {
      ffnKurtTotal += m.ffnKurtosis;
      r.ffnKurtosisMax = std::max(r.ffnKurtosisMax, m.ffnKurtosis);
      ++ffnLayers;
    }
    if (an > 0) {
      attnKurtTotal += m.attnKurtosis;
      r.attnKurtosisMax = std::max(r.attnKurtosisMax, m.attnKurtosis);
      ++attnLayers;
    }
    r.maxInfNorm = std::max(r.maxInfNorm, m.infNorm);
    if (!std::isnan(m.ffnInfNorm)) r.ffnMaxInfNorm = std::max(r.ffnMaxInfNorm, m.ffnInfNorm);
    r.kurtosisMax = std::max(r.kurtosisMax, m.kurtosis);
    kurtTotal += m.kurtosis;
    r.layers.push_back(m);
  }
  r.kurtosisAvg = L > 0 ? kurtTotal / L : 0;
  r.ffnKurtosisAvg = ffnLayers > 0 ? ffnKurtTotal / ffnLayers : NAN;
  r.attnKurtosisAvg = attnLayers > 0 ? attnKurtTotal / attnLayers : NAN;
  if (ffnLayers == 0) r.ffnKurtosisMax = NAN;
  if (attnLayers == 0) r.attnKurtosisMax = NAN;
  return r;
}

}  // namespace qs::eval
