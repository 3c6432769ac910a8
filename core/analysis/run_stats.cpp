#include "core/analysis/run_stats.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "core/analysis/stat_names.h"

namespace qs::analysis {
namespace {

void putArrays(std::map<std::string, std::vector<float>>& out, const ChannelArrays& a, const std::string& prefix) {
  if (a.size() == 0) return;
  out[prefix + names::kMin] = a.min;
  out[prefix + names::kMax] = a.max;
  out[prefix + names::kMean] = a.mean;
  out[prefix + names::kVar] = a.var;
  out[prefix + names::kAbsmax] = a.absmax;
  out[prefix + names::kKurtosis] = a.kurtosis;
  out[prefix + names::kCenter] = a.center;
  out[prefix + names::kHalfRange] = a.halfRange;
}

// JSON has no NaN; a constant site's kurtosis is written as null.
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

runs::SiteStat toSiteStat(const SiteResult& r, const OutlierOptions& outliers) {
  runs::SiteStat s;
  s.layer = r.layer;
  s.site = r.site;
  s.kind = r.kind;
  s.channels = r.channels;
  s.maxAbs = r.summary.maxAbs;
  s.kurtosisMean = r.summary.kurtosisMean;
  s.kurtosisMax = r.summary.kurtosisMax;
  s.outlierChannels = r.summary.outlierChannels;
  putArrays(s.arrays, r.channel, "");
  putArrays(s.arrays, r.outChannel, names::kOutPrefix);
  if (!r.tokenAbsmax.empty()) s.arrays[names::kTokenAbsmax] = r.tokenAbsmax;

  nlohmann::json extra;
  extra["count"] = r.count;
  extra["mean"] = number(r.summary.mean);
  extra["variance"] = number(r.summary.variance);
  extra["median_absmax"] = number(r.summary.medianAbsmax);
  extra["outlier_rule"] = {{"abs_threshold", outliers.absThreshold}, {"median_factor", outliers.medianFactor}};
  extra["kurtosis"] = "pearson";  // m4/m2^2, 3 for a Gaussian (not excess)
  if (!r.sharedWith.empty()) extra["shared_input_with"] = r.sharedWith;
  if (!r.topTokens.empty()) {
    extra["top_tokens"] = nlohmann::json::array();
    for (const auto& t : r.topTokens)
      extra["top_tokens"].push_back({{"id", t.id},
                                     {"text", t.text},
                                     {"sample", t.sample},
                                     {"position", t.position},
                                     {"channel", t.channel},
                                     {"absmax", t.value}});
  }
  // Invalid UTF-8 in a token's text (a lone byte-fallback piece) is replaced, not thrown.
  s.extraJson = extra.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s;
}

std::vector<runs::Metric> analysisMetrics(const AnalysisResult& r) {
  double inMax = 0, resMax = 0, mmMax = 0, smMax = 0, kMax = NAN;
  int64_t outliers = 0;
  bool anyIn = false, anyRes = false, anyMm = false, anySm = false;
  for (const auto& s : r.sites) {
    if (s.kind == names::kInput) {
      anyIn = true;
      inMax = std::max(inMax, s.summary.maxAbs);
      outliers += s.summary.outlierChannels;
      if (std::isfinite(s.summary.kurtosisMax)) kMax = std::isnan(kMax) ? s.summary.kurtosisMax : std::max(kMax, s.summary.kurtosisMax);
    } else if (s.kind == names::kResidual) {
      anyRes = true;
      resMax = std::max(resMax, s.summary.maxAbs);
    } else if (s.kind == names::kMatmul) {
      anyMm = true;
      mmMax = std::max(mmMax, s.summary.maxAbs);
    } else if (s.kind == names::kSoftmax) {
      anySm = true;
      smMax = std::max(smMax, s.summary.maxAbs);
    }
  }
  const std::string protocol = "calibration samples=" + std::to_string(r.samples) + " seqlen=" + std::to_string(r.seqlen);
  std::vector<runs::Metric> out;
  auto add = [&](const std::string& key, double v, const std::string& unit = "") {
    runs::Metric m;
    m.key = key;
    m.value = v;
    m.protocol = protocol;
    m.unit = unit;
    m.n = r.tokens;
    out.push_back(m);
  };
  add("analysis.tokens", static_cast<double>(r.tokens), "tokens");
  if (anyIn) {
    add("analysis.max_abs.input", inMax);
    add("analysis.kurtosis_max", kMax);
    add("analysis.outlier_channels", static_cast<double>(outliers), "channels");
  }
  if (anyRes) add("analysis.max_abs.residual", resMax);
  if (anyMm) add("analysis.max_abs.matmul", mmMax);
  if (anySm) add("analysis.max_abs.softmax", smMax);  // largest |attention score| (unmasked)
  add("analysis.seconds", r.seconds, "s");
  return out;
}

}  // namespace qs::analysis
