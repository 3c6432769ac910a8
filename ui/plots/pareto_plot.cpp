// pareto_plot: see pareto_plot.h and pareto_file.h.
#include "ui/plots/pareto_plot.h"

#include <algorithm>
#include <cmath>

#include "core/util/error.h"
#include "ui/plots/plot_export.h"
#include "ui/plots/plot_style.h"
#include "ui/qcustomplot_include.h"

namespace qs::plot {

ParetoPlotResult renderPareto(QCustomPlot* plot, const std::vector<ParetoPoint>& points, const ParetoPlotOptions& o) {
  ParetoPlotResult r;
  const PlotPalette pal = plotPalette(o.dark);
  resetPlot(plot, pal);
  if (!o.title.isEmpty()) addTitle(plot, o.title, o.subtitle, pal);
  QCPAxis* x = plot->xAxis;
  QCPAxis* y = plot->yAxis;
  x->setLabel(QStringLiteral("average bits per weight"));
  y->setLabel(o.yLabel);
  if (o.logY) {
    y->setScaleType(QCPAxis::stLogarithmic);
    y->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  }

  QVector<double> tx, ty, ix, iy;
  std::vector<ParetoPoint> front;
  for (const auto& p : points) {
    if (!std::isfinite(p.ppl) || !std::isfinite(p.bits)) continue;
    if (p.front) front.push_back(p);
    else if (p.feasible) tx.push_back(p.bits), ty.push_back(p.ppl);
    else ix.push_back(p.bits), iy.push_back(p.ppl);
  }
  std::sort(front.begin(), front.end(), [](const ParetoPoint& a, const ParetoPoint& b) { return a.bits < b.bits; });
  r.frontCount = static_cast<int>(front.size());

  r.trials = plot->addGraph(x, y);
  r.trials->setData(tx, ty);
  r.trials->setLineStyle(QCPGraph::lsNone);
  r.trials->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(pal.axis, 1.2), QBrush(pal.background), 7));
  r.trials->setName(QStringLiteral("trials"));
  if (!ix.isEmpty()) {
    r.infeasible = plot->addGraph(x, y);
    r.infeasible->setData(ix, iy);
    r.infeasible->setLineStyle(QCPGraph::lsNone);
    r.infeasible->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCross, QPen(pal.outlier, 1.5), QBrush(Qt::NoBrush), 7));
    r.infeasible->setName(QStringLiteral("infeasible (constraints)"));
  }
  QVector<double> fx, fy;
  for (const auto& p : front) fx.push_back(p.bits), fy.push_back(p.ppl);
  r.front = plot->addGraph(x, y);
  r.front->setData(fx, fy, true);
  // Staircase: between two front points the best perplexity at <= bits is the left one's.
  r.front->setLineStyle(QCPGraph::lsStepLeft);
  r.front->setPen(QPen(pal.seriesColor(0), 2));
  r.front->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, pal.seriesColor(0), 9));
  r.front->setName(QStringLiteral("Pareto front"));
  if (o.labels) {
    for (const auto& p : front) {
      auto* t = new QCPItemText(plot);
      t->position->setType(QCPItemPosition::ptPlotCoords);
      t->position->setCoords(p.bits, p.ppl);
      t->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
      t->setPadding(QMargins(6, 0, 0, 4));
      t->setText(QStringLiteral("#%1").arg(p.trial));
      t->setFont(plotFont(8));
      t->setColor(pal.subtleText);
    }
  }
  plot->rescaleAxes();
  // Margins so the markers and labels at the edges stay inside.
  const QCPRange xr = x->range();
  const double dx = std::max(0.05, xr.size() * 0.06);
  x->setRange(xr.lower - dx, xr.upper + 3 * dx);
  const QCPRange yr = y->range();
  if (o.logY) y->setRange(yr.lower / 1.08, yr.upper * 1.12);
  else {
    const double dy = std::max(1e-3, yr.size() * 0.08);
    y->setRange(yr.lower - dy, yr.upper + dy);
  }
  plot->legend->setVisible(true);
  plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  return r;
}

ParetoFileResult renderParetoFile(const ParetoFileRequest& request) {
  const QString out = prepareFilePlot(request.output, request.width, request.height);
  int finite = 0, front = 0;
  for (const auto& p : request.points) {
    finite += std::isfinite(p.ppl) && std::isfinite(p.bits);
    front += p.front;
  }
  if (finite == 0) throw Error("the search has no evaluated trials to plot");
  QCustomPlot plot;
  plot.resize(request.width, request.height);
  ParetoPlotOptions o;
  o.title = QString::fromStdString(request.title);
  o.subtitle = QString::fromStdString(request.subtitle);
  o.yLabel = QString::fromStdString(request.yLabel);
  o.logY = request.logY;
  o.labels = request.labels;
  o.dark = request.dark;
  renderPareto(&plot, request.points, o);
  const QString err = savePlot(&plot, out, request.width, request.height, request.scale);
  if (!err.isEmpty()) throw Error(err.toStdString());
  return {std::to_string(request.points.size()) + " trials, " + std::to_string(front) + " on the front"};
}

}  // namespace qs::plot
