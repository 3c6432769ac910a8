// renderCompareSeries: see compare_plot.h.
#include "ui/plots/compare_plot.h"

#include "ui/plots/plot_style.h"
#include "ui/qcustomplot_include.h"

namespace qs::plot {

int renderCompareSeries(QCustomPlot* plot, const CompareSeriesData& data, bool dark) {
  const PlotPalette p = plotPalette(dark);
  resetPlot(plot, p);
  QCPAxisRect* rect = plot->axisRect();
  QCPAxis* x = rect->axis(QCPAxis::atBottom);
  QCPAxis* y = rect->axis(QCPAxis::atLeft);
  int drawn = 0;
  const QVector<Qt::PenStyle> dashes = {Qt::SolidLine, Qt::DashLine, Qt::DotLine, Qt::DashDotLine};
  for (size_t i = 0; i < data.curves.size(); ++i) {
    const CompareCurve& c = data.curves[i];
    if (c.x.empty()) continue;
    auto* g = plot->addGraph(x, y);
    g->setName(QString::fromStdString(c.label));
    QPen pen(p.seriesColor(i), 2.0);
    pen.setStyle(dashes[static_cast<int>(i) % dashes.size()]);
    g->setPen(pen);
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, p.seriesColor(i), p.background, 5));
    g->setData(QVector<double>(c.x.begin(), c.x.end()), QVector<double>(c.y.begin(), c.y.end()), true);
    ++drawn;
  }
  if (data.logScale) {
    y->setScaleType(QCPAxis::stLogarithmic);
    y->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
    y->setNumberFormat(QStringLiteral("eb"));
    y->setNumberPrecision(0);
  }
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  // Every layer label when they fit, else every k-th.
  const int step = std::max<int>(1, static_cast<int>(data.ticks.size()) / 24 + 1);
  for (size_t i = 0; i < data.ticks.size(); i += step)
    ticker->addTick(data.ticks[i].first, QString::fromStdString(data.ticks[i].second));
  x->setTicker(ticker);
  x->setLabel(QString::fromStdString(data.xLabel));
  y->setLabel(QString::fromStdString(data.title));
  plot->rescaleAxes();
  const QCPRange xr = x->range();
  x->setRange(xr.lower - 0.5, xr.upper + 0.5);
  if (!data.logScale) {
    const QCPRange yr = y->range();
    const double pad = (yr.upper - yr.lower) * 0.08 + (yr.upper == yr.lower ? std::abs(yr.upper) * 0.1 + 1e-12 : 0);
    y->setRange(std::min(0.0, yr.lower - pad), yr.upper + pad);
  } else {
    y->setRange(y->range().lower / 1.5, y->range().upper * 1.5);
  }
  // The legend goes under the plot: the curves use the whole width of the axis rect.
  if (drawn > 0) legendBelowPlot(plot, rect);
  plot->legend->setVisible(drawn > 0);
  if (drawn == 0)
    addAxisRectMessage(plot, rect, QObject::tr("None of the selected runs has %1").arg(QString::fromStdString(data.title)), p);
  return drawn;
}

int renderChannelOverlay(QCustomPlot* plot, const ChannelOverlayData& data, bool dark) {
  const PlotPalette p = plotPalette(dark);
  resetPlot(plot, p);
  QCPAxisRect* rect = plot->axisRect();
  QCPAxis* x = rect->axis(QCPAxis::atBottom);
  QCPAxis* y = rect->axis(QCPAxis::atLeft);
  int drawn = 0;
  QVector<double> xs(static_cast<int>(data.channels));
  for (int c = 0; c < xs.size(); ++c) xs[c] = c;
  for (size_t i = 0; i < data.curves.size(); ++i) {
    const ChannelRangeCurve& c = data.curves[i];
    const QColor col = p.seriesColor(i);
    QColor fill = col;
    fill.setAlpha(data.curves.size() > 1 ? 70 : 110);
    auto* lo = plot->addGraph(x, y);
    lo->setPen(QPen(col, 1.0));
    lo->setLineStyle(QCPGraph::lsStepCenter);
    lo->setData(xs, QVector<double>(c.min.begin(), c.min.end()), true);
    lo->removeFromLegend();
    auto* hi = plot->addGraph(x, y);
    hi->setName(QString::fromStdString(c.label));
    hi->setPen(QPen(col, 1.0));
    hi->setLineStyle(QCPGraph::lsStepCenter);
    hi->setBrush(QBrush(fill));
    hi->setChannelFillGraph(lo);
    hi->setData(xs, QVector<double>(c.max.begin(), c.max.end()), true);
    ++drawn;
  }
  x->setLabel(QObject::tr("channel"));
  y->setLabel(QObject::tr("per-channel min … max"));
  if (drawn > 0) {
    plot->rescaleAxes();
    x->setRange(-0.5, static_cast<double>(data.channels) - 0.5);
    const QCPRange yr = y->range();
    const double pad = (yr.upper - yr.lower) * 0.06 + 1e-12;
    y->setRange(yr.lower - pad, yr.upper + pad);
    auto* zero = new QCPItemStraightLine(plot);
    zero->point1->setCoords(0, 0);
    zero->point2->setCoords(1, 0);
    zero->setPen(QPen(p.zeroLine, 1.0));
    legendBelowPlot(plot, rect);
  }
  plot->legend->setVisible(drawn > 0);
  if (drawn == 0)
    addAxisRectMessage(plot, rect,
                       data.error.empty() ? QObject::tr("Select 2–4 analysis runs to overlay their channel ranges")
                                          : QString::fromStdString(data.error),
                       p);
  return drawn;
}

}  // namespace qs::plot
