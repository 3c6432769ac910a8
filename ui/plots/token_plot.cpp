// token_plot: see token_plot.h.
#include "ui/plots/token_plot.h"

#include <algorithm>

#include "ui/plots/channel_plot.h"
#include "ui/plots/plot_style.h"
#include "ui/qcustomplot_include.h"

namespace qs::plot {

TokenPlotResult renderTokens(QCustomPlot* plot, const runs::SiteStat& site, const TokenPlotOptions& options) {
  TokenPlotResult r;
  const std::vector<TokenRow> occurrences = tokenRows(site);
  r.occurrences = static_cast<int>(occurrences.size());
  r.rows = distinctTokens(occurrences);
  if (options.top > 0 && static_cast<int>(r.rows.size()) > options.top) r.rows.resize(options.top);
  const PlotPalette pal = plotPalette(options.dark);
  resetPlot(plot, pal);
  QCPAxisRect* rect = plot->axisRect();
  QCPAxis* valueAxis = rect->axis(QCPAxis::atBottom);
  QCPAxis* keyAxis = rect->axis(QCPAxis::atLeft);
  keyAxis->grid()->setVisible(false);
  const bool scores = site.kind == "softmax";  // tokens are queries, channels are heads
  valueAxis->setLabel(site.kind == "weight" ? QStringLiteral("max |w|")
                      : scores              ? QStringLiteral("max |attention score| of this query (over heads and keys)")
                                            : QStringLiteral("max |x| at this token (value units)"));
  keyAxis->setLabel(scores ? QStringLiteral("query token (text, rank 1 at top)") : QStringLiteral("token (text, rank 1 at top)"));

  r.bars = new QCPBars(keyAxis, valueAxis);
  r.bars->setName(QStringLiteral("max |x| per token"));
  r.bars->setWidth(0.7);
  r.bars->setPen(QPen(pal.range, 1));
  QColor fill = pal.range;
  fill.setAlpha(210);
  r.bars->setBrush(fill);

  const int n = static_cast<int>(r.rows.size());
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  QVector<double> keys, values;
  double hi = 0;
  const double threshold = outlierThreshold(site);
  for (int i = 0; i < n; ++i) {
    const TokenRow& t = r.rows[i];
    const double key = n - i;  // rank 1 at the top
    keys.push_back(key);
    values.push_back(t.value);
    hi = std::max(hi, t.value);
    QString label = QString::fromStdString(displayToken(t));
    if (t.tokenId >= 0 && !t.text.empty()) label += QStringLiteral("  #%1").arg(t.tokenId);
    if (t.count > 1) label += QStringLiteral("  ×%1").arg(t.count);
    ticker->addTick(key, label);
  }
  r.bars->setData(keys, values);  // keys descend: let QCP sort them
  keyAxis->setTicker(ticker);
  keyAxis->setTickLabelFont(QFont(QStringLiteral("DejaVu Sans Mono"), 9));
  keyAxis->setSubTicks(false);
  // Fewer tokens than rows keep their bar height and sit at the top.
  const int rowsShown = std::max(n, 8);
  keyAxis->setRange(n + 0.7 - rowsShown, n + 0.7);
  valueAxis->setRange(0, hi > 0 ? hi * 1.18 : 1);  // room for the channel labels

  // Channel (and position) at the end of each bar: which channel carries the token's outlier.
  for (int i = 0; i < n; ++i) {
    const TokenRow& t = r.rows[i];
    auto* text = new QCPItemText(plot);
    text->setClipAxisRect(rect);
    text->position->setAxes(valueAxis, keyAxis);
    text->position->setCoords(t.value, n - i);
    text->setPositionAlignment(Qt::AlignLeft | Qt::AlignVCenter);
    text->setPadding(QMargins(4, 0, 0, 0));
    QString s = formatValue(t.value);
    if (t.channel >= 0) s += (scores ? QStringLiteral("  head %1") : QStringLiteral("  ch %1")).arg(t.channel);
    text->setText(s);
    text->setFont(plotFont(8));
    text->setColor(pal.subtleText);
  }
  if (std::isfinite(threshold) && threshold < hi * 1.18 && n > 0) {
    auto* line = new QCPItemStraightLine(plot);
    line->setClipAxisRect(rect);
    line->point1->setAxes(valueAxis, keyAxis);
    line->point2->setAxes(valueAxis, keyAxis);
    line->point1->setCoords(threshold, 0);
    line->point2->setCoords(threshold, 1);
    line->setPen(QPen(pal.threshold, 1.5, Qt::DashLine));
    auto* label = new QCPItemText(plot);
    label->setClipAxisRect(rect);
    label->position->setAxes(valueAxis, keyAxis);
    label->position->setCoords(threshold, n + 1.0);
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    keyAxis->setRange(n + 1.0 - rowsShown - 0.3, n + 1.0);
    label->setText(QStringLiteral(" channel threshold t = %1").arg(formatValue(threshold)));
    label->setFont(plotFont(8));
    label->setColor(pal.threshold);
  }
  if (n == 0) addAxisRectMessage(plot, rect, QStringLiteral("no outlier tokens stored for this site"), pal);
  if (options.title)
    addTitle(plot, siteTitle(site) + QStringLiteral(" — top outlier tokens"),
             QStringLiteral("%1 distinct tokens among the %2 token positions with the largest |x| (×n: positions of that token); "
                            "bar label: max |x| and its channel")
                 .arg(n)
                 .arg(r.occurrences),
             pal);
  return r;
}

}  // namespace qs::plot
