// layer_plot: see layer_plot.h.
#include "ui/plots/layer_plot.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "ui/plots/plot_style.h"
#include "ui/qcustomplot_include.h"

namespace qs::plot {

namespace {

std::vector<std::string> defaultKinds(const std::vector<SitePoint>& points) {
  std::set<std::string> kinds;
  for (const auto& p : points) kinds.insert(p.kind);
  std::vector<std::string> out;
  for (const auto& k : kinds)
    if (k != "weight") out.push_back(k);
  if (out.empty() && kinds.count("weight")) out.push_back("weight");
  return out;
}

}  // namespace

LayerPlotResult renderLayers(QCustomPlot* plot, const std::vector<SitePoint>& points, const LayerPlotOptions& options) {
  LayerPlotResult r;
  const PlotPalette pal = plotPalette(options.dark);
  resetPlot(plot, pal);
  // Layout: [title] / [subtitle] / [grid of metric panels | legend].
  plot->plotLayout()->clear();
  auto* body = new QCPLayoutGrid;
  plot->plotLayout()->addElement(0, 0, body);
  auto* panels = new QCPLayoutGrid;
  body->addElement(0, 0, panels);
  // The legend sits at the top of its own column; an empty element below takes the rest.
  auto* side = new QCPLayoutGrid;
  body->addElement(0, 1, side);
  body->setColumnStretchFactor(1, 0.001);
  plot->legend = new QCPLegend;
  side->addElement(0, 0, plot->legend);
  side->addElement(1, 0, new QCPLayoutElement(plot));
  side->setRowStretchFactor(0, 0.001);
  side->setAutoMargins(QCP::msNone);
  side->setMargins(QMargins(0, 12, 0, 0));
  auto* gap = new QCPLayoutElement(plot);  // keeps the legend's border off the image edge
  gap->setMinimumSize(10, 0);
  gap->setMaximumSize(10, QWIDGETSIZE_MAX);
  body->addElement(0, 2, gap);
  body->setColumnStretchFactor(2, 0.001);
  plot->legend->setLayer(QStringLiteral("legend"));
  styleLegend(plot->legend, pal);
  plot->legend->setMargins(QMargins(6, 4, 6, 4));
  plot->legend->setMaximumSize(220, QWIDGETSIZE_MAX);

  const std::vector<std::string> kinds = options.kinds.empty() ? defaultKinds(points) : options.kinds;
  int minLayer = 0, maxLayer = 0;
  bool any = false;
  for (const auto& p : points) {
    if (!any) minLayer = maxLayer = p.layer;
    minLayer = std::min(minLayer, p.layer);
    maxLayer = std::max(maxLayer, p.layer);
    any = true;
  }
  // Colours follow the site, the same in every panel.
  std::map<std::pair<std::string, std::string>, QColor> colors;
  for (const auto& s : layerSeries(points, LayerMetric::MaxAbs, kinds, options.sites))
    colors.emplace(std::make_pair(s.kind, s.site), pal.seriesColor(colors.size()));

  const int cols = options.metrics.size() > 1 ? 2 : 1;
  std::set<std::pair<std::string, std::string>> inLegend;
  for (size_t mi = 0; mi < options.metrics.size(); ++mi) {
    const LayerMetric metric = options.metrics[mi];
    auto* rect = new QCPAxisRect(plot);
    panels->addElement(static_cast<int>(mi) / cols, static_cast<int>(mi) % cols, rect);
    styleAxisRect(rect, pal);
    r.rects.push_back(rect);
    QCPAxis* x = rect->axis(QCPAxis::atBottom);
    QCPAxis* y = rect->axis(QCPAxis::atLeft);
    x->setLabel(QStringLiteral("layer"));
    y->setLabel(QString::fromStdString(metricAxisLabel(metric)));
    auto title = new QCPTextElement(plot, QString::fromStdString(metricTitle(metric)), plotFont(10, true));
    title->setTextColor(pal.text);
    rect->insetLayout()->addElement(title, Qt::AlignTop | Qt::AlignLeft);
    title->setMargins(QMargins(6, 2, 6, 2));

    double lo = INFINITY, hi = -INFINITY, posLo = INFINITY;
    for (const auto& s : layerSeries(points, metric, kinds, options.sites)) {
      auto* g = plot->addGraph(x, y);
      const auto key = std::make_pair(s.kind, s.site);
      const QColor c = colors.count(key) ? colors[key] : pal.seriesColor(colors.size());
      g->setName(QString::fromStdString(s.label));
      g->setPen(QPen(c, 1.8, s.kind == "weight" ? Qt::DashLine : Qt::SolidLine));
      g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(c, 1.5), QBrush(pal.background), 6));
      g->setProperty("site", QString::fromStdString(s.site));
      g->setProperty("kind", QString::fromStdString(s.kind));
      g->setProperty("metric", QString::fromStdString(toString(metric)));
      QVector<double> xs, ys;
      for (size_t i = 0; i < s.layers.size(); ++i) {
        xs.push_back(s.layers[i]);
        ys.push_back(s.values[i]);
        lo = std::min(lo, s.values[i]);
        hi = std::max(hi, s.values[i]);
        if (s.values[i] > 0) posLo = std::min(posLo, s.values[i]);
      }
      g->setData(xs, ys, true);
      g->setSelectable(QCP::stSingleData);
      if (!inLegend.insert(key).second) g->removeFromLegend();
      r.graphs.push_back(g);
    }
    if (std::isfinite(lo)) {
      const bool log = metric != LayerMetric::OutlierChannels && lo > 0 && hi / posLo > kLogScaleRatio;
      if (log) {
        y->setScaleType(QCPAxis::stLogarithmic);
        y->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
        y->setNumberFormat(QStringLiteral("gb"));
        y->setRange(posLo / 1.6, hi * 1.6);
        y->setLabel(y->label() + QStringLiteral(", log scale"));
      } else {
        const double base = metric == LayerMetric::OutlierChannels || lo >= 0 ? 0.0 : lo;
        const double span = std::max(hi - base, metric == LayerMetric::OutlierChannels ? 4.0 : 1e-6);
        y->setRange(base - 0.05 * span, hi + 0.18 * span);  // headroom for the panel title
        if (metric == LayerMetric::OutlierChannels) {
          auto t = QSharedPointer<QCPAxisTickerFixed>::create();
          t->setTickStep(1.0);
          t->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
          y->setTicker(t);
        }
      }
    } else {
      y->setRange(0, 1);
      addAxisRectMessage(plot, rect, QStringLiteral("not stored in this run"), pal, 10);
    }
    x->setRange(minLayer - 0.4, maxLayer + 0.4);
    x->grid()->setZeroLinePen(Qt::NoPen);  // layer 0 is no reference
    if ((metric == LayerMetric::KurtosisMean || metric == LayerMetric::KurtosisMax) && std::isfinite(lo)) {
      // A Gaussian's kurtosis: the reference a heavy-tailed (outlier) channel departs from.
      auto* ref = new QCPItemStraightLine(plot);
      ref->setClipAxisRect(rect);
      ref->point1->setAxes(x, y);
      ref->point2->setAxes(x, y);
      ref->point1->setCoords(0, 3);
      ref->point2->setCoords(1, 3);
      ref->setPen(QPen(pal.subtleText, 1, Qt::DashLine));
      auto* label = new QCPItemText(plot);
      label->setClipAxisRect(rect);
      label->position->setAxes(x, y);
      label->position->setCoords(maxLayer + 0.4, 3);
      label->setPositionAlignment(Qt::AlignRight | Qt::AlignBottom);
      label->setText(QStringLiteral("Gaussian = 3"));
      label->setFont(plotFont(8));
      label->setColor(pal.subtleText);
    }
    auto lt = QSharedPointer<QCPAxisTickerFixed>::create();
    lt->setTickStep(1.0);
    lt->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    x->setTicker(lt);
    if (options.highlightLayer >= 0) {
      auto* line = new QCPItemStraightLine(plot);
      line->setClipAxisRect(rect);
      line->point1->setAxes(x, y);
      line->point2->setAxes(x, y);
      line->point1->setCoords(options.highlightLayer, 0);
      line->point2->setCoords(options.highlightLayer, 1);
      line->setPen(QPen(pal.subtleText, 1, Qt::DotLine));
    }
  }
  r.seriesCount = static_cast<int>(inLegend.size());
  plot->legend->setVisible(r.seriesCount > 0);
  // Panels share margins so their axes line up.
  auto* group = new QCPMarginGroup(plot);
  for (auto* rect : r.rects) rect->setMarginGroup(QCP::msLeft | QCP::msRight, group);

  if (options.title) {
    QString title = QStringLiteral("Outlier overview per layer");
    if (!options.runLabel.isEmpty()) title += QStringLiteral(" — ") + options.runLabel;
    QStringList kindText;
    for (const auto& k : kinds) kindText << QString::fromStdString(k);
    addTitle(plot, title,
             QStringLiteral("%1 sites · layers %2–%3 · %4").arg(r.seriesCount).arg(minLayer).arg(maxLayer).arg(kindText.join(", ")),
             pal);
  }
  return r;
}

}  // namespace qs::plot
