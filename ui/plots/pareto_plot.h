// The Pareto plot of a mixed-precision search on a QCustomPlot: every feasible trial as a point,
// infeasible ones as crosses, the front highlighted and joined as a staircase (x = bits per
// weight, y = perplexity; both minimised). Used by `qscope plot pareto` and by the GUI.
#pragma once
#include <QString>

#include <vector>

#include "ui/plots/pareto_file.h"

class QCustomPlot;
class QCPGraph;

namespace qs::plot {

struct ParetoPlotOptions {
  QString title, subtitle, yLabel = QStringLiteral("perplexity");
  bool logY = false;
  bool labels = true;
  bool dark = false;
};

struct ParetoPlotResult {
  QCPGraph* trials = nullptr;      // feasible, off the front
  QCPGraph* infeasible = nullptr;
  QCPGraph* front = nullptr;       // front points sorted by bits (the staircase)
  int frontCount = 0;
};

ParetoPlotResult renderPareto(QCustomPlot* plot, const std::vector<ParetoPoint>& points, const ParetoPlotOptions& options);

}  // namespace qs::plot
