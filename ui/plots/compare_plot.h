// Draws a CompareSeriesData (compare_data.h): one line per run over the layers, the runs'
// colours from the shared palette, a legend naming the runs, a log axis when values span
// decades; and the per-channel ranges of one site across runs. Used by the GUI's Compare view.
#pragma once
#include "ui/plots/compare_channels.h"
#include "ui/plots/compare_data.h"

class QCustomPlot;

namespace qs::plot {

// Returns the number of curves with at least one point.
int renderCompareSeries(QCustomPlot* plot, const CompareSeriesData& data, bool dark);

// The channel view across runs: each run's per-channel [min, max] as a translucent band in its
// colour over the shared channel axis, outlined at min and max, a legend naming the runs.
// Returns the number of runs drawn (0 shows data.error in the plot).
int renderChannelOverlay(QCustomPlot* plot, const ChannelOverlayData& data, bool dark);

}  // namespace qs::plot
