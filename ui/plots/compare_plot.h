// Draws a CompareSeriesData (compare_data.h): one line per run over the layers, the runs'
// colours from the shared palette, a legend naming the runs, a log axis when values span
// decades. Used by the GUI's Compare view.
#pragma once
#include "ui/plots/compare_data.h"

class QCustomPlot;

namespace qs::plot {

// Returns the number of curves with at least one point.
int renderCompareSeries(QCustomPlot* plot, const CompareSeriesData& data, bool dark);

}  // namespace qs::plot
