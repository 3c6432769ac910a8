// What the run Compare view shows, without widgets: the metric table with deltas against the
// first (reference) run, and a per-layer series of runs::Comparison turned into one curve per run
// (all sites along the x axis in model order, or one site across layers). Pure functions over a
// runs::Comparison (core/runs/run_compare.h), tested with GoogleTest.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/runs/run_compare.h"

namespace qs::plot {

struct MetricDelta {
  std::string key, unit, protocol;  // protocol: the reference run's ("" when runs disagree: see protocolsDiffer)
  bool protocolsDiffer = false;     // the runs measured this key under different protocols
  std::vector<double> values;       // per run; NaN = the run has no such metric
  std::vector<double> delta;        // values[i] - values[0]; NaN where either is missing (delta[0] = 0)
  std::vector<double> relDelta;     // delta / |values[0]| (0.05 = +5%); NaN when values[0] is 0 or missing
};
// Perplexities first (ppl.*, then ppl_fp.*), then accuracies, then the rest, each in key order.
std::vector<MetricDelta> metricDeltas(const runs::Comparison& c);

// "layers.3.self_attn.q_proj" -> "self_attn.q_proj"; other names unchanged.
std::string shortSite(const std::string& site);
// Distinct short site names of a series, in first-seen order.
std::vector<std::string> seriesSites(const runs::LayerSeries& s);
// Axis/legend wording of a series name ("rel_error" -> "reconstruction error (relative)").
std::string seriesTitle(const std::string& name);

struct CompareCurve {
  std::string label;       // "#4 gptq w4"
  std::vector<double> x, y;  // missing values left out
};

struct CompareSeriesData {
  std::string name, title, xLabel;
  std::vector<CompareCurve> curves;                // one per run, in the comparison's order
  std::vector<std::pair<double, std::string>> ticks;  // x-axis labels (layer starts)
  bool logScale = false;                            // positive values spanning more than 50x
};
// site "" = every site: x is the position of (layer, site) in the series; else x is the layer.
CompareSeriesData compareSeries(const runs::Comparison& c, const std::string& series, const std::string& site = "");

std::string runLabel(const runs::RunInfo& r);  // "#4 gptq w4"

}  // namespace qs::plot
