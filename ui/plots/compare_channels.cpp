// compare_channels: see compare_channels.h.
#include "ui/plots/compare_channels.h"

#include "ui/plots/compare_data.h"

namespace qs::plot {

std::string ChannelSiteKey::label() const {
  return "layer " + std::to_string(layer) + " · " + site + " (" + kind + ")";
}

std::vector<ChannelSiteKey> commonChannelSites(const std::vector<std::vector<runs::SiteStat>>& statsPerRun) {
  std::vector<ChannelSiteKey> out;
  if (statsPerRun.empty()) return out;
  for (const runs::SiteStat& s : statsPerRun[0]) {
    if (s.channels <= 0) continue;
    const ChannelSiteKey key{s.layer, s.site, s.kind};
    bool everywhere = true;
    for (size_t r = 1; r < statsPerRun.size() && everywhere; ++r) {
      bool found = false;
      for (const runs::SiteStat& t : statsPerRun[r])
        if (t.layer == s.layer && t.site == s.site && t.kind == s.kind && t.channels == s.channels) found = true;
      everywhere = found;
    }
    bool seen = false;
    for (const auto& k : out) seen = seen || k == key;
    if (everywhere && !seen) out.push_back(key);
  }
  return out;
}

ChannelOverlayData channelOverlay(const std::vector<runs::RunInfo>& runs, const ChannelSiteKey& key,
                                  const std::vector<runs::SiteStat>& sitePerRun) {
  ChannelOverlayData d;
  d.title = key.label();
  if (runs.size() != sitePerRun.size()) {
    d.error = "internal: " + std::to_string(runs.size()) + " runs but " + std::to_string(sitePerRun.size()) + " site rows";
    return d;
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    const runs::SiteStat& s = sitePerRun[i];
    const std::string who = "run #" + std::to_string(runs[i].id);
    auto mn = s.arrays.find("min"), mx = s.arrays.find("max");
    if (mn == s.arrays.end() || mx == s.arrays.end() || mn->second.size() != mx->second.size() || mn->second.empty()) {
      d.error = who + " has no per-channel min/max at " + key.label();
      d.curves.clear();
      return d;
    }
    const int64_t n = static_cast<int64_t>(mn->second.size());
    if (d.channels == 0) d.channels = n;
    if (n != d.channels) {
      d.error = who + " has " + std::to_string(n) + " channels at " + key.label() + ", the first run " +
                std::to_string(d.channels) + ": they are not the same site";
      d.curves.clear();
      return d;
    }
    ChannelRangeCurve c;
    c.label = runLabel(runs[i]);
    c.min.assign(mn->second.begin(), mn->second.end());
    c.max.assign(mx->second.begin(), mx->second.end());
    d.curves.push_back(std::move(c));
  }
  return d;
}

}  // namespace qs::plot
