// The look shared by every QuantScope plot: colours (a colour-blind-safe categorical palette
// for sites, fixed roles for ranges/outliers/centers/thresholds), fonts and axis styling, in a
// light and a dark variant that follow the application theme.
#pragma once
#include <QColor>
#include <QFont>
#include <QString>

#include <vector>

class QCustomPlot;
class QCPAxisRect;
class QCPLegend;
class QCPTextElement;

namespace qs::plot {

struct PlotPalette {
  QColor background, text, subtleText, grid, zeroLine, axis;
  QColor range;      // per-channel min..max bars
  QColor outlier;    // channels over the threshold
  QColor center;     // asymmetry center markers
  QColor threshold;  // threshold line
  std::vector<QColor> series;  // categorical, one per site
  QColor seriesColor(size_t i) const { return series[i % series.size()]; }
};

PlotPalette lightPalette();
PlotPalette darkPalette();
inline PlotPalette plotPalette(bool dark) { return dark ? darkPalette() : lightPalette(); }

QFont plotFont(int pointSize = 10, bool bold = false);

// Background, default axis rect, legend; clears anything plotted before.
void resetPlot(QCustomPlot* plot, const PlotPalette& p);
void styleAxisRect(QCPAxisRect* rect, const PlotPalette& p);
void styleLegend(QCPLegend* legend, const PlotPalette& p);
// Puts a title row above the plot layout's first row; returns it.
QCPTextElement* addTitle(QCustomPlot* plot, const QString& title, const QString& subtitle, const PlotPalette& p);

// A message centred in `rect` (a plot with nothing to draw says why), in the subtle text colour.
void addAxisRectMessage(QCustomPlot* plot, QCPAxisRect* rect, const QString& text, const PlotPalette& p,
                        int pointSize = 11);
// Moves the legend from inside `rect` to a row under the plot (the curves keep the whole width),
// filled column by column, 4 entries a row.
void legendBelowPlot(QCustomPlot* plot, QCPAxisRect* rect);

// Compact number for labels: 3 significant digits, exponent for very large/small values.
QString formatValue(double v);

}  // namespace qs::plot
