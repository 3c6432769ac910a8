// channel_plot: see channel_plot.h.
#include "ui/plots/channel_plot.h"

#include <algorithm>

#include "ui/plots/plot_style.h"
#include "ui/qcustomplot_include.h"

namespace qs::plot {

namespace {

QString kindWord(const std::string& kind) {
  if (kind == "weight") return QStringLiteral("weight");
  if (kind == "block_output" || kind == "residual") return QStringLiteral("residual stream");
  if (kind == "softmax") return QStringLiteral("softmax input");
  if (kind.empty()) return QString();
  return QString::fromStdString(kind == "input" ? "activation" : kind);
}

QCPFinancial* makeBars(QCPAxisRect* rect, const QColor& color, const QString& name, double width) {
  auto* f = new QCPFinancial(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  f->setName(name);
  f->setChartStyle(QCPFinancial::csCandlestick);
  f->setTwoColored(false);
  f->setWidthType(QCPFinancial::wtPlotCoords);
  f->setWidth(width);
  f->setPen(QPen(color, 1));
  QColor fill = color;
  fill.setAlpha(200);
  f->setBrush(fill);
  return f;
}

}  // namespace

QString siteTitle(const runs::SiteStat& s) {
  QString t = QStringLiteral("layer %1 · %2").arg(s.layer).arg(QString::fromStdString(s.site));
  const QString k = kindWord(s.kind);
  return k.isEmpty() ? t : t + QStringLiteral(" · ") + k;
}

ChannelPlotResult renderChannels(QCustomPlot* plot, const runs::SiteStat& site, const ChannelPlotOptions& options) {
  ChannelPlotResult r;
  r.rows = channelRows(site);
  sortChannels(r.rows, options.sort);
  r.threshold = std::isnan(options.threshold) ? outlierThreshold(site) : options.threshold;
  r.outliers = countAbove(r.rows, r.threshold);

  const PlotPalette pal = plotPalette(options.dark);
  resetPlot(plot, pal);
  QCPAxisRect* rect = plot->axisRect();
  QCPAxis* x = rect->axis(QCPAxis::atBottom);
  QCPAxis* y = rect->axis(QCPAxis::atLeft);

  const int n = static_cast<int>(r.rows.size());
  // Bars touch when there are more channels than pixels; a gap only helps when they are wide.
  const double width = n > 256 ? 1.0 : 0.75;
  r.ranges = makeBars(rect, pal.range, QStringLiteral("range min … max"), width);
  r.outlierRanges = makeBars(rect, pal.outlier, QStringLiteral("outlier channel (|x| > t)"), width);
  r.centers = plot->addGraph(x, y);
  r.centers->setName(QStringLiteral("center (max+min)/2"));
  r.centers->setLineStyle(QCPGraph::lsNone);
  const double markerSize = n <= 128 ? 5 : n <= 1024 ? 3 : 2;
  r.centers->setScatterStyle(QCPScatterStyle(n <= 128 ? QCPScatterStyle::ssCircle : QCPScatterStyle::ssDisc,
                                             QPen(pal.center, 1), QBrush(pal.center), markerSize));

  QVector<QCPFinancialData> normal, outl;
  QVector<double> cx, cy;
  double lo = 0, hi = 0;
  for (int i = 0; i < n; ++i) {
    const ChannelRow& c = r.rows[i];
    QCPFinancialData d(i, c.min, c.max, c.min, c.max);
    (c.absMax > r.threshold ? outl : normal).push_back(d);
    cx.push_back(i);
    cy.push_back(c.center);
    lo = std::min<double>(lo, c.min);
    hi = std::max<double>(hi, c.max);
  }
  r.ranges->data()->set(normal, true);
  r.outlierRanges->data()->set(outl, true);
  r.centers->setData(cx, cy, true);

  const double dataMaxAbs = std::max(hi, -lo);
  if (std::isfinite(r.threshold)) {
    r.thresholdLine = plot->addGraph(x, y);
    r.thresholdLine->setName(QStringLiteral("threshold ±t, t = %1").arg(formatValue(r.threshold)));
    r.thresholdLine->setPen(QPen(pal.threshold, 1.5, Qt::DashLine));
    // A graph's data is sorted by key: -t is a line of its own so the two never join.
    r.thresholdLine->setData({-1.0, double(n)}, {r.threshold, r.threshold}, true);
    auto* minus = plot->addGraph(x, y);
    minus->setPen(r.thresholdLine->pen());
    minus->setData({-1.0, double(n)}, {-r.threshold, -r.threshold}, true);
    minus->removeFromLegend();
    minus->setSelectable(QCP::stNone);
    if (r.threshold < 4 * std::max(hi, -lo)) {  // keep the axis on the data when t is far off
      lo = std::min(lo, -r.threshold);
      hi = std::max(hi, r.threshold);
    }
  }

  // The softmax input has a channel per head (values: its unmasked attention scores).
  const bool scores = site.kind == "softmax";
  QString xLabel = QString::fromStdString(sortDescription(options.sort));
  if (scores) xLabel.replace(QStringLiteral("channel"), QStringLiteral("head"));
  x->setLabel(xLabel);
  y->setLabel(site.kind == "weight" ? QStringLiteral("weight value")
              : scores              ? QStringLiteral("attention score (scaled, mask excluded)")
                                    : QStringLiteral("activation value"));
  x->setRange(-0.5 - n * 0.01, n - 0.5 + n * 0.01);
  const double span = std::max(hi - lo, 1e-6);
  y->setRange(lo - 0.06 * span, hi + 0.16 * span);  // headroom for the legend row
  x->grid()->setZeroLinePen(Qt::NoPen);  // channel 0 is no reference
  if (options.sort != ChannelSort::Index) {
    // Sorted views have rank on x; the channel index is in the tooltip and CSV.
    x->setLabel(x->label() + QStringLiteral(" — rank"));
  }
  auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
  ticker->setTickStep(1.0);
  ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  x->setTicker(ticker);

  plot->legend->setVisible(true);
  plot->legend->setFillOrder(QCPLegend::foColumnsFirst);
  plot->legend->setWrap(4);
  if (outl.isEmpty()) plot->legend->removeItem(plot->legend->itemWithPlottable(r.outlierRanges));

  if (options.title) {
    const QString title = siteTitle(site) + QStringLiteral(" — per-channel ranges");
    QString sub = QStringLiteral("%1 channels · max |x| %2 · %3 over threshold t = %4")
                      .arg(n)
                      .arg(formatValue(dataMaxAbs))
                      .arg(r.outliers)
                      .arg(formatValue(r.threshold));
    if (std::isfinite(site.kurtosisMean)) sub += QStringLiteral(" · kurtosis mean %1").arg(formatValue(site.kurtosisMean));
    addTitle(plot, title, sub, pal);
  }
  return r;
}

}  // namespace qs::plot
