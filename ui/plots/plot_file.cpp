// plot_file: see plot_file.h.
#include "ui/plots/plot_file.h"

#include "core/util/error.h"
#include "ui/plots/channel_plot.h"
#include "ui/plots/layer_plot.h"
#include "ui/plots/plot_export.h"
#include "ui/plots/token_plot.h"
#include "ui/qcustomplot_include.h"

namespace qs::plot {

PlotKind parsePlotKind(const std::string& s) {
  if (s == "channels") return PlotKind::Channels;
  if (s == "layers") return PlotKind::Layers;
  if (s == "tokens") return PlotKind::Tokens;
  throw Error("unknown plot kind '" + s + "' (use channels, layers or tokens)");
}

PlotFileResult renderPlotFile(const PlotFileRequest& request) {
  const QString out = prepareFilePlot(request.output, request.width, request.height);
  if (request.stats.empty()) throw Error("no site statistics to plot");
  QCustomPlot plot;
  plot.resize(request.width, request.height);
  PlotFileResult result;
  const runs::SiteStat& site = request.stats.front();
  const std::string where = "layer " + std::to_string(site.layer) + " " + site.site;
  switch (request.kind) {
    case PlotKind::Channels: {
      ChannelPlotOptions o;
      o.sort = parseChannelSort(request.sort);
      o.threshold = request.threshold;
      o.dark = request.dark;
      auto r = renderChannels(&plot, site, o);
      result.items = static_cast<int>(r.rows.size());
      result.description = "per-channel ranges of " + where + ": " + std::to_string(r.rows.size()) + " channels, " +
                           std::to_string(r.outliers) + " over the threshold";
      break;
    }
    case PlotKind::Layers: {
      LayerPlotOptions o;
      o.sites = request.sites;
      o.highlightLayer = request.highlightLayer;
      o.dark = request.dark;
      o.runLabel = QString::fromStdString(request.runLabel);
      auto r = renderLayers(&plot, summarize(request.stats), o);
      if (r.graphs.empty()) throw Error("none of the requested sites has statistics in this run");
      result.items = r.seriesCount;
      result.description = "layer overview: " + std::to_string(r.seriesCount) + " sites, " +
                           std::to_string(r.rects.size()) + " metrics";
      break;
    }
    case PlotKind::Tokens: {
      TokenPlotOptions o;
      o.top = request.top;
      o.dark = request.dark;
      auto r = renderTokens(&plot, site, o);
      if (r.rows.empty())
        throw Error(where + " has no top outlier tokens stored (the analysis run recorded none for this site)");
      result.items = static_cast<int>(r.rows.size());
      result.description = "top outlier tokens of " + where + ": " + std::to_string(r.rows.size()) + " tokens";
      break;
    }
  }
  const QString err = savePlot(&plot, out, request.width, request.height, request.scale);
  if (!err.isEmpty()) throw Error(err.toStdString());
  return result;
}

}  // namespace qs::plot
