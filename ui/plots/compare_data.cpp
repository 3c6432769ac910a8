// compare_data: see compare_data.h.
#include "ui/plots/compare_data.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace qs::plot {

std::vector<MetricDelta> metricDeltas(const runs::Comparison& c) {
  std::vector<MetricDelta> out;
  for (const auto& row : c.metrics) {
    MetricDelta d;
    d.key = row.key;
    std::set<std::string> protocols;
    for (const auto& v : row.values) {
      d.values.push_back(v ? v->value : NAN);
      if (v) {
        if (d.unit.empty()) d.unit = v->unit;
        if (d.protocol.empty() && !protocols.count(v->protocol) && protocols.empty()) d.protocol = v->protocol;
        protocols.insert(v->protocol);
      }
    }
    d.protocolsDiffer = protocols.size() > 1;
    if (d.protocolsDiffer) d.protocol.clear();
    const double ref = d.values.empty() ? NAN : d.values[0];
    for (double v : d.values) {
      const double delta = std::isnan(ref) || std::isnan(v) ? NAN : v - ref;
      d.delta.push_back(delta);
      d.relDelta.push_back(std::isnan(delta) || ref == 0 ? NAN : delta / std::fabs(ref));
    }
    out.push_back(std::move(d));
  }
  // Quality first (perplexity, accuracy), then the rest in key order: what a comparison is for.
  auto rank = [](const std::string& k) {
    if (k.rfind("ppl.", 0) == 0) return 0;
    if (k.rfind("ppl_fp.", 0) == 0) return 1;
    if (k.rfind("acc", 0) == 0) return 2;
    return 3;
  };
  std::stable_sort(out.begin(), out.end(), [&](const MetricDelta& a, const MetricDelta& b) { return rank(a.key) < rank(b.key); });
  return out;
}

std::string shortSite(const std::string& site) {
  const std::string prefix = "layers.";
  if (site.compare(0, prefix.size(), prefix) != 0) return site;
  size_t i = prefix.size();
  while (i < site.size() && std::isdigit(static_cast<unsigned char>(site[i]))) ++i;
  if (i == prefix.size() || i >= site.size() || site[i] != '.') return site;
  return site.substr(i + 1);
}

std::vector<std::string> seriesSites(const runs::LayerSeries& s) {
  std::vector<std::string> out;
  for (const auto& r : s.rows) {
    const std::string name = shortSite(r.site);
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

std::string seriesTitle(const std::string& name) {
  static const std::map<std::string, std::string> fixed = {
      {"rel_error", "reconstruction error ||WX - QX||² / ||WX||²"},
      {"seconds", "seconds per site"},
      {"bits", "bits per weight"},
  };
  auto it = fixed.find(name);
  if (it != fixed.end()) return it->second;
  // "<kind>.<quantity>" from site statistics.
  const size_t dot = name.find('.');
  if (dot == std::string::npos) return name;
  const std::string kind = name.substr(0, dot), q = name.substr(dot + 1);
  static const std::map<std::string, std::string> quantity = {{"max_abs", "max |x|"},
                                                              {"kurtosis_mean", "kurtosis (mean)"},
                                                              {"kurtosis_max", "kurtosis (max)"},
                                                              {"outlier_channels", "outlier channels"}};
  auto qi = quantity.find(q);
  return (qi == quantity.end() ? q : qi->second) + " (" + kind + ")";
}

std::string runLabel(const runs::RunInfo& r) {
  return "#" + std::to_string(r.id) + (r.name.empty() ? "" : " " + r.name);
}

CompareSeriesData compareSeries(const runs::Comparison& c, const std::string& series, const std::string& site) {
  CompareSeriesData out;
  out.name = series;
  out.title = seriesTitle(series);
  const runs::LayerSeries* s = nullptr;
  for (const auto& ls : c.series)
    if (ls.name == series) s = &ls;
  for (const auto& r : c.runs) out.curves.push_back({runLabel(r), {}, {}});
  if (!s) return out;
  out.xLabel = site.empty() ? "layer (every site, in model order)" : "layer (" + site + ")";
  int lastLayer = -1;
  double x = 0;
  double lo = INFINITY, hi = 0;
  for (const auto& row : s->rows) {
    if (!site.empty() && shortSite(row.site) != site) continue;
    const double key = site.empty() ? x : row.layer;
    if (row.layer != lastLayer) {
      out.ticks.push_back({key, std::to_string(row.layer)});
      lastLayer = row.layer;
    }
    for (size_t i = 0; i < row.values.size() && i < out.curves.size(); ++i) {
      if (!row.values[i] || std::isnan(*row.values[i])) continue;
      out.curves[i].x.push_back(key);
      out.curves[i].y.push_back(*row.values[i]);
      if (*row.values[i] > 0) {
        lo = std::min(lo, *row.values[i]);
        hi = std::max(hi, *row.values[i]);
      }
    }
    x += 1;
  }
  out.logScale = std::isfinite(lo) && hi / lo > 50.0;
  return out;
}

}  // namespace qs::plot
