// The Quantizable Transformers validation report: perplexity together with the outlier metrics
// of the residual stream, from one streaming pass over the GPTQ-protocol windows (no activation
// is stored; block outputs and FFN outputs go through core/analysis's ChannelStats per batch).
//
// Definitions (stored with the numbers as the protocol string):
// - inf-norm of a layer: max |x| over every element of its block output (residual stream after
//   the block) on the evaluated windows; "ffn" the same for the FFN (MLP) output and "attn" for
//   the attention output (the output projection's output, out_proj / o_proj / dense) before the
//   residual add. max inf-norm = max over layers.
// - kurtosis of a layer: Pearson's m4 / m2^2 of each token's block-output vector over the hidden
//   dimension (population moments; 3 for a Gaussian), averaged over tokens — the paper's
//   per-layer kurtosis. avg kurtosis = mean over layers, max kurtosis = max over layers. The same
//   per module: attention output and FFN output kurtosis per layer, their mean and max.
// Torch-free header.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/eval/perplexity.h"
#include "core/jobs/progress.h"

namespace qs::model {
class Model;
}

namespace qs::eval {

inline constexpr const char* kOutlierProtocol = "outlier-metrics/block-out";

struct LayerOutlierMetrics {
  int layer = 0;
  double infNorm = 0;        // block output max |x|
  double ffnInfNorm = 0;     // FFN output max |x| (NaN when the FFN output site is not found)
  double attnInfNorm = 0;    // attention output max |x| (NaN when the output projection is not found)
  double kurtosis = 0;       // per-token kurtosis over hidden, mean over tokens
  double kurtosisTokenMax = 0;  // the largest per-token kurtosis seen
  double ffnKurtosis = 0;    // the same of the FFN output (NaN without the site)
  double attnKurtosis = 0;   // the same of the attention output (NaN without the site)
};

struct OutlierMetrics {
  PerplexityResult perplexity;  // same windows and numbers as evaluatePerplexity
  double maxInfNorm = 0;        // over layers
  double ffnMaxInfNorm = 0;     // over layers
  double kurtosisAvg = 0;       // mean over layers of the layer kurtosis
  double kurtosisMax = 0;       // max over layers of the layer kurtosis
  double attnMaxInfNorm = 0;    // over layers
  double attnKurtosisAvg = 0, attnKurtosisMax = 0;  // over layers (NaN when no layer has the site)
  double ffnKurtosisAvg = 0, ffnKurtosisMax = 0;    // over layers (NaN when no layer has the site)
  std::vector<LayerOutlierMetrics> layers;
  // "outlier-metrics/block-out gptq-nonoverlapping seqlen=N windows=W"
  std::string protocol() const;
  // The metrics as run-store keys: outlier.max_inf_norm, outlier.ffn_max_inf_norm,
  // outlier.attn_max_inf_norm, outlier.kurtosis_avg / _max, outlier.attn_kurtosis_avg / _max,
  // outlier.ffn_kurtosis_avg / _max and, with perLayer, outlier.layer<i>.inf_norm / .ffn_inf_norm
  // / .attn_inf_norm / .kurtosis / .attn_kurtosis / .ffn_kurtosis (perplexity is left to the
  // caller, which knows the dataset name).
  std::vector<std::pair<std::string, double>> namedValues(bool perLayer = true) const;
};

// One pass: perplexity (identical to evaluatePerplexity on the same options) and the metrics
// above. Throws like evaluatePerplexity; qs::Cancelled between batches.
OutlierMetrics evaluateOutlierMetrics(model::Model& model, const std::vector<int32_t>& tokens,
                                      const PerplexityOptions& options,
                                      jobs::Progress& progress = jobs::Progress::none());

// The FFN output site (MLP down projection) of each block, by [hidden, intermediate] shape, the
// last such Linear of the block; "" where none. Exposed for tests.
std::vector<std::string> ffnOutputSites(const model::Model& model);
// The attention output projection of each block (out_proj, o_proj, dense, c_proj by name); "" where
// none. Exposed for tests.
std::vector<std::string> attentionOutputSites(const model::Model& model);

}  // namespace qs::eval
