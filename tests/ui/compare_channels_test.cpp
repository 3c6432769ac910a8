// The Compare view's channel view across runs (ui/plots/compare_channels.h): only sites that
// every run has per-channel statistics for, with the same channel count, are offered; the
// overlay keeps each run's min/max on the shared channel index; a run without the arrays or with
// another channel count is an error naming the run, not a misaligned plot. Values are made here.
#include <gtest/gtest.h>

#include "ui/plots/compare_channels.h"

namespace qs::plot {
namespace {

runs::SiteStat stat(int layer, const std::string& site, const std::string& kind, int64_t channels) {
  runs::SiteStat s;
  s.layer = layer;
  s.site = site;
  s.kind = kind;
  s.channels = channels;
  return s;
}

runs::RunInfo run(int64_t id, const std::string& name) {
  runs::RunInfo r;
  r.id = id;
  r.name = name;
  r.kind = runs::RunKind::Analysis;
  return r;
}

TEST(CompareChannels, CommonSitesNeedTheSameChannelsInEveryRun) {
  const std::vector<std::vector<runs::SiteStat>> stats = {
      {stat(0, "q_proj", "input", 64), stat(0, "fc1", "input", 64), stat(1, "q_proj", "input", 64),
       stat(0, "migration", "migration_before", 0)},
      {stat(1, "q_proj", "input", 64), stat(0, "q_proj", "input", 64), stat(0, "fc1", "input", 32)},
  };
  const auto sites = commonChannelSites(stats);
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[0], (ChannelSiteKey{0, "q_proj", "input"})) << "the first run's order";
  EXPECT_EQ(sites[1], (ChannelSiteKey{1, "q_proj", "input"}));
  EXPECT_EQ(sites[0].label(), "layer 0 · q_proj (input)");
  EXPECT_TRUE(commonChannelSites({}).empty());
  // A quantize run with only migration rows (no per-channel arrays) shares nothing.
  EXPECT_TRUE(commonChannelSites({stats[0], {stat(0, "q_proj", "migration_after", 0)}}).empty());
}

TEST(CompareChannels, OverlayKeepsEachRunOnTheSameChannelAxis) {
  runs::SiteStat a = stat(2, "fc1", "input", 3), b = stat(2, "fc1", "input", 3);
  a.arrays["min"] = {-1, -2, -3};
  a.arrays["max"] = {1, 2, 30};
  b.arrays["min"] = {-0.5f, -1, -1};
  b.arrays["max"] = {0.5f, 1, 3};
  const ChannelSiteKey key{2, "fc1", "input"};
  const auto d = channelOverlay({run(4, "fp"), run(7, "after os+")}, key, {a, b});
  ASSERT_EQ(d.error, "");
  EXPECT_EQ(d.channels, 3);
  ASSERT_EQ(d.curves.size(), 2u);
  EXPECT_EQ(d.curves[0].max, (std::vector<double>{1, 2, 30}));
  EXPECT_EQ(d.curves[1].min, (std::vector<double>{-0.5, -1, -1}));
  EXPECT_NE(d.curves[1].label.find("#7"), std::string::npos) << d.curves[1].label;
  EXPECT_EQ(d.title, "layer 2 · fc1 (input)");

  runs::SiteStat c = stat(2, "fc1", "input", 4);
  c.arrays["min"] = {0, 0, 0, 0};
  c.arrays["max"] = {1, 1, 1, 1};
  const auto bad = channelOverlay({run(4, "fp"), run(9, "other model")}, key, {a, c});
  EXPECT_TRUE(bad.curves.empty());
  EXPECT_NE(bad.error.find("run #9 has 4 channels"), std::string::npos) << bad.error;
  const auto missing = channelOverlay({run(4, "fp"), run(5, "quantize")}, key, {a, stat(2, "fc1", "input", 3)});
  EXPECT_TRUE(missing.curves.empty());
  EXPECT_NE(missing.error.find("run #5 has no per-channel min/max"), std::string::npos) << missing.error;
}

}  // namespace
}  // namespace qs::plot
