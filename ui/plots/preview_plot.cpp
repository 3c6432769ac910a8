// renderPreviewRanges: see preview_plot.h.
#include "ui/plots/preview_plot.h"

#include <algorithm>
#include <cmath>

#include "ui/plots/plot_style.h"
#include "ui/qcustomplot_include.h"

namespace qs::plot {
namespace {

// One range series: a dot at the center and error bars to min and max.
void addRanges(QCustomPlot* plot, const std::vector<float>& lo, const std::vector<float>& hi, double offset,
               const QColor& color, double width, const QString& name) {
  QVector<double> x, c, minus, plus;
  for (size_t i = 0; i < lo.size() && i < hi.size(); ++i) {
    const double center = (static_cast<double>(lo[i]) + hi[i]) / 2;
    x << static_cast<double>(i) + offset;
    c << center;
    minus << center - lo[i];
    plus << hi[i] - center;
  }
  QCPGraph* g = plot->addGraph();
  g->setName(name);
  g->setLineStyle(QCPGraph::lsNone);
  g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, color.darker(140), 3));
  g->setData(x, c, true);
  auto* bars = new QCPErrorBars(plot->xAxis, plot->yAxis);
  bars->removeFromLegend();
  bars->setDataPlottable(g);
  bars->setData(minus, plus);
  bars->setWhiskerWidth(0);
  bars->setPen(QPen(color, width));
}

}  // namespace

void renderPreviewRanges(QCustomPlot* plot, const workflow::LayerPreviewResult& r, bool dark) {
  const PlotPalette p = plotPalette(dark);
  resetPlot(plot, p);
  if (r.minBefore.empty()) return;
  const size_t n = r.minBefore.size();
  // Two bars per channel with a gap: about a third of a channel's width each.
  const double px = std::max(1.0, std::min(6.0, 0.3 * std::max(300, plot->width() - 80) / static_cast<double>(n)));
  addRanges(plot, r.minBefore, r.maxBefore, -0.2, QColor(150, 150, 150), px, QObject::tr("before"));
  addRanges(plot, r.minAfter, r.maxAfter, 0.2, p.range, px, QObject::tr("after OS+"));
  if (r.threshold > 0) {
    for (double sign : {1.0, -1.0}) {
      auto* line = new QCPItemStraightLine(plot);
      line->point1->setCoords(0, sign * r.threshold);
      line->point2->setCoords(1, sign * r.threshold);
      line->setPen(QPen(p.threshold, 1.2, Qt::DashLine));
    }
  }
  plot->xAxis->setLabel(QObject::tr("input channel of %1").arg(QString::fromStdString(r.pair)));
  plot->yAxis->setLabel(QObject::tr("activation value"));
  plot->rescaleAxes();
  plot->xAxis->setRange(-1, static_cast<double>(n));
  const double m = std::max(r.maxAbsBefore, r.threshold) * 1.08 + 1e-9;
  plot->yAxis->setRange(-m, m);
  plot->legend->setVisible(true);
}

}  // namespace qs::plot
