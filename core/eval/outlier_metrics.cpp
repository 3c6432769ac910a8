#include "core/eval/outlier_metrics.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_map>

#include "core/analysis/channel_stats.h"
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
                                                   {"outlier.kurtosis_avg", kurtosisAvg},
                                                   {"outlier.kurtosis_max", kurtosisMax}};
  if (perLayer)
    for (const auto& l : layers) {
      const std::string p = "outlier.layer" + std::to_string(l.layer) + ".";
      v.emplace_back(p + "inf_norm", l.infNorm);
      v.emplace_back(p + "ffn_inf_norm", l.ffnInfNorm);
      v.emplace_back(p + "kurtosis", l.kurtosis);
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

OutlierMetrics evaluateOutlierMetrics(model::Model& model, const std::vector<int32_t>& tokens,
                                      const PerplexityOptions& options, jobs::Progress& progress) {
  OutlierMetrics r;
  PerplexityResult& p = r.perplexity;
  p.seqlen = resolveSeqlen(model, options.seqlen);
  if (options.batchSize < 1) throw Error("--batch-size: must be at least 1, got " + std::to_string(options.batchSize));
  p.datasetTokens = static_cast<int64_t>(tokens.size());
  p.totalWindows = p.datasetTokens / p.seqlen;
  if (p.totalWindows == 0)
    throw Error("the text has " + std::to_string(p.datasetTokens) + " tokens, fewer than one window of " +
                std::to_string(p.seqlen) + "; use a longer text or a smaller --seqlen");
  p.windows = options.limitWindows > 0 ? std::min(options.limitWindows, p.totalWindows) : p.totalWindows;

  const int L = model.numBlocks();
  std::vector<analysis::ChannelStats> blockOut(static_cast<size_t>(L), analysis::ChannelStats(plainStats()));
  std::vector<analysis::ChannelStats> ffnOut(static_cast<size_t>(L), analysis::ChannelStats(plainStats()));
  std::vector<double> kurtSum(static_cast<size_t>(L), 0.0), kurtMax(static_cast<size_t>(L), 0.0);
  int64_t kurtTokens = 0;

  // FFN output = the down projection applied to its captured input (the engine has no hook on
  // Linear outputs); computed per batch, so nothing is kept.
  std::unordered_map<std::string, int> ffnLayer;
  const std::vector<std::string> ffnSites = ffnOutputSites(model);
  for (int i = 0; i < L; ++i)
    if (!ffnSites[static_cast<size_t>(i)].empty()) ffnLayer[ffnSites[static_cast<size_t>(i)]] = i;
  HookGuard restore{model};
  model.setInputHook([&](const std::string& site, const at::Tensor& x) {
    const auto it = ffnLayer.find(site);
    if (it == ffnLayer.end()) return;
    at::Tensor w = model.siteWeight(site).to(x.device(), x.scalar_type());
    at::Tensor b = model.siteBias(site);
    at::Tensor y = at::linear(x, w, b.defined() ? b.to(x.device(), x.scalar_type()) : at::Tensor());
    ffnOut[static_cast<size_t>(it->second)].update(y);
  });

  c10::InferenceMode guard;
  at::Tensor all = at::from_blob(const_cast<int32_t*>(tokens.data()), {p.windows * p.seqlen}, at::kInt)
                       .to(at::kLong)
                       .view({p.windows, p.seqlen});
  double lossSum = 0;
  const auto start = std::chrono::steady_clock::now();
  progress.update(0, "window 0/" + std::to_string(p.windows));
  for (int64_t w = 0; w < p.windows; w += options.batchSize) {
    progress.checkCancel();
    const int64_t n = std::min<int64_t>(options.batchSize, p.windows - w);
    at::Tensor ids = all.narrow(0, w, n).to(model.device());
    model::BatchState s = model.prepare(ids, {});
    at::Tensor h = model.embed(s);
    for (int i = 0; i < L; ++i) {
      h = model.runBlock(i, h, s);
      blockOut[static_cast<size_t>(i)].update(h);
      // Per-token kurtosis over the hidden dimension: the tokens as the "channels" of a
      // [hidden, tokens] batch.
      analysis::ChannelStats perToken(plainStats());
      perToken.update(h.reshape({-1, h.size(-1)}).t());
      at::Tensor k = at::nan_to_num(perToken.kurtosis(), 0.0);
      kurtSum[static_cast<size_t>(i)] += k.sum().item<double>();
      kurtMax[static_cast<size_t>(i)] = std::max(kurtMax[static_cast<size_t>(i)], k.max().item<double>());
    }
    kurtTokens += n * p.seqlen;
    at::Tensor logits = model.head(h);
    at::Tensor pred = logits.narrow(1, 0, p.seqlen - 1).reshape({-1, logits.size(2)});
    at::Tensor target = ids.narrow(1, 1, p.seqlen - 1).reshape({-1});
    at::Tensor nll = at::cross_entropy_loss(pred, target, {}, at::Reduction::None).view({n, p.seqlen - 1});
    lossSum += nll.mean(1).sum().item<double>();
    const int64_t done = w + n;
    char msg[160];
    std::snprintf(msg, sizeof msg, "window %lld/%lld  ppl %.3f", static_cast<long long>(done),
                  static_cast<long long>(p.windows), std::exp(lossSum / static_cast<double>(done)));
    progress.update(static_cast<double>(done) / static_cast<double>(p.windows), msg);
  }
  p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  p.meanLoss = lossSum / static_cast<double>(p.windows);
  p.perplexity = std::exp(p.meanLoss);
  p.tokensEvaluated = p.windows * p.seqlen;
  p.tokensPerSecond = p.seconds > 0 ? static_cast<double>(p.tokensEvaluated) / p.seconds : 0;

  double kurtTotal = 0;
  for (int i = 0; i < L; ++i) {
    LayerOutlierMetrics m;
    m.layer = i;
    m.infNorm = blockOut[static_cast<size_t>(i)].absmax().max().item<double>();
    const auto& f = ffnOut[static_cast<size_t>(i)];
    m.ffnInfNorm = f.count() > 0 ? f.absmax().max().item<double>() : NAN;
    m.kurtosis = kurtSum[static_cast<size_t>(i)] / static_cast<double>(kurtTokens);
    m.kurtosisTokenMax = kurtMax[static_cast<size_t>(i)];
    r.maxInfNorm = std::max(r.maxInfNorm, m.infNorm);
    if (!std::isnan(m.ffnInfNorm)) r.ffnMaxInfNorm = std::max(r.ffnMaxInfNorm, m.ffnInfNorm);
    r.kurtosisMax = std::max(r.kurtosisMax, m.kurtosis);
    kurtTotal += m.kurtosis;
    r.layers.push_back(m);
  }
  r.kurtosisAvg = L > 0 ? kurtTotal / L : 0;
  return r;
}

}  // namespace qs::eval
