// The Compare view's channel view of one site across runs, without widgets: which sites every
// compared run has per-channel statistics for (analysis runs), and each run's per-channel
// min/max on the same channel axis. Pure functions over the run store's rows, tested with
// GoogleTest; compare_plot.h draws the result.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/runs/run_types.h"

namespace qs::plot {

struct ChannelSiteKey {
  int layer = 0;
  std::string site;  // "q_proj"
  std::string kind;  // "input", "output", "weight", "residual"
  std::string label() const;  // "layer 3 · q_proj (input)"
  bool operator==(const ChannelSiteKey& o) const { return layer == o.layer && site == o.site && kind == o.kind; }
};

// Sites with per-channel statistics (channels > 0) in every run and the same channel count in
// all of them, in the first run's order. statsPerRun: each run's site rows (arrays not needed).
std::vector<ChannelSiteKey> commonChannelSites(const std::vector<std::vector<runs::SiteStat>>& statsPerRun);

struct ChannelRangeCurve {
  std::string label;             // "#4 analysis 32 x 256"
  std::vector<double> min, max;  // per channel, index = channel
};

struct ChannelOverlayData {
  std::string title;                     // "layer 3 · q_proj (input)"
  int64_t channels = 0;                  // the common channel axis
  std::vector<ChannelRangeCurve> curves;  // one per run, in the comparison's order
  std::string error;                     // non-empty: why nothing can be overlaid
};

// runs[i] and sitePerRun[i] belong together: the site's row of run i with its "min" and "max"
// arrays (a row without them, or of another channel count, is an error naming the run).
ChannelOverlayData channelOverlay(const std::vector<runs::RunInfo>& runs, const ChannelSiteKey& key,
                                  const std::vector<runs::SiteStat>& sitePerRun);

}  // namespace qs::plot
