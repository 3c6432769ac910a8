// plot_style: see plot_style.h.
#include "ui/plots/plot_style.h"

#include <cmath>

#include "ui/qcustomplot_include.h"

namespace qs::plot {

PlotPalette lightPalette() {
  PlotPalette p;
  p.background = Qt::white;
  p.text = QColor(0x1F, 0x23, 0x28);
  p.subtleText = QColor(0x5F, 0x66, 0x6D);
  p.grid = QColor(0xE3, 0xE6, 0xEA);
  p.zeroLine = QColor(0xA0, 0xA6, 0xAD);
  p.axis = QColor(0x6B, 0x72, 0x79);
  p.range = QColor(0x3B, 0x75, 0xAF);
  p.outlier = QColor(0xD6, 0x4B, 0x2A);
  p.center = QColor(0x1F, 0x23, 0x28);
  p.threshold = QColor(0xB2, 0x3A, 0x48);
  // Okabe-Ito / Tableau-like categorical colours, distinguishable with common colour blindness.
  p.series = {QColor(0x1F, 0x77, 0xB4), QColor(0xFF, 0x7F, 0x0E), QColor(0x2C, 0xA0, 0x2C), QColor(0xD6, 0x27, 0x28),
              QColor(0x94, 0x67, 0xBD), QColor(0x8C, 0x56, 0x4B), QColor(0xE3, 0x77, 0xC2), QColor(0x7F, 0x7F, 0x7F),
              QColor(0xBC, 0xBD, 0x22), QColor(0x17, 0xBE, 0xCF)};
  return p;
}

PlotPalette darkPalette() {
  PlotPalette p;
  p.background = QColor(0x1F, 0x21, 0x24);
  p.text = QColor(0xE3, 0xE5, 0xE8);
  p.subtleText = QColor(0xA0, 0xA6, 0xAD);
  p.grid = QColor(0x33, 0x36, 0x3B);
  p.zeroLine = QColor(0x70, 0x75, 0x7C);
  p.axis = QColor(0x90, 0x96, 0x9D);
  p.range = QColor(0x6C, 0xA8, 0xE8);
  p.outlier = QColor(0xFF, 0x8A, 0x65);
  p.center = QColor(0xF5, 0xF5, 0xF5);
  p.threshold = QColor(0xFF, 0x6B, 0x7A);
  p.series = {QColor(0x6C, 0xA8, 0xE8), QColor(0xFF, 0xA5, 0x4C), QColor(0x5C, 0xD0, 0x6A), QColor(0xFF, 0x6B, 0x6B),
              QColor(0xC3, 0x9B, 0xE8), QColor(0xC8, 0x9A, 0x85), QColor(0xF2, 0x9C, 0xD8), QColor(0xB8, 0xB8, 0xB8),
              QColor(0xDB, 0xDB, 0x5A), QColor(0x4F, 0xD8, 0xE6)};
  return p;
}

QFont plotFont(int pointSize, bool bold) {
  QFont f(QStringLiteral("DejaVu Sans"));
  f.setStyleHint(QFont::SansSerif);
  f.setPointSize(pointSize);
  f.setBold(bold);
  return f;
}

void styleAxisRect(QCPAxisRect* rect, const PlotPalette& p) {
  for (QCPAxis* axis : rect->axes()) {
    axis->setBasePen(QPen(p.axis, 1));
    axis->setTickPen(QPen(p.axis, 1));
    axis->setSubTickPen(QPen(p.axis, 1));
    axis->setTickLabelColor(p.text);
    axis->setLabelColor(p.text);
    axis->setTickLabelFont(plotFont(9));
    axis->setLabelFont(plotFont(10));
    axis->grid()->setPen(QPen(p.grid, 1, Qt::SolidLine));
    axis->grid()->setSubGridVisible(false);
    axis->grid()->setZeroLinePen(QPen(p.zeroLine, 1));
  }
  rect->axis(QCPAxis::atLeft)->grid()->setVisible(true);
  rect->axis(QCPAxis::atBottom)->grid()->setVisible(true);
  rect->setBackground(p.background);
}

void styleLegend(QCPLegend* legend, const PlotPalette& p) {
  legend->setFont(plotFont(9));
  legend->setTextColor(p.text);
  legend->setBrush(QColor(p.background.red(), p.background.green(), p.background.blue(), 225));
  legend->setBorderPen(QPen(p.grid, 1));
  legend->setIconSize(22, 16);  // >= the text height, or descenders ("q_proj") are clipped
  legend->setRowSpacing(1);
}

void resetPlot(QCustomPlot* plot, const PlotPalette& p) {
  plot->clearItems();
  plot->clearPlottables();
  plot->plotLayout()->clear();
  auto* rect = new QCPAxisRect(plot);
  plot->plotLayout()->addElement(0, 0, rect);
  plot->legend = new QCPLegend;
  rect->insetLayout()->addElement(plot->legend, Qt::AlignTop | Qt::AlignRight);
  plot->legend->setLayer(QStringLiteral("legend"));
  plot->legend->setVisible(false);
  plot->setBackground(p.background);
  plot->setAntialiasedElements(QCP::aeNone);
  styleAxisRect(rect, p);
  styleLegend(plot->legend, p);
}

QCPTextElement* addTitle(QCustomPlot* plot, const QString& title, const QString& subtitle, const PlotPalette& p) {
  plot->plotLayout()->insertRow(0);
  auto* t = new QCPTextElement(plot, title, plotFont(12, true));
  t->setTextColor(p.text);
  t->setMargins(QMargins(8, 6, 8, subtitle.isEmpty() ? 2 : 0));
  plot->plotLayout()->addElement(0, 0, t);
  if (!subtitle.isEmpty()) {
    plot->plotLayout()->insertRow(1);
    auto* s = new QCPTextElement(plot, subtitle, plotFont(9));
    s->setTextColor(p.subtleText);
    s->setMargins(QMargins(8, 0, 8, 2));
    plot->plotLayout()->addElement(1, 0, s);
  }
  return t;
}

void addAxisRectMessage(QCustomPlot* plot, QCPAxisRect* rect, const QString& text, const PlotPalette& p,
                        int pointSize) {
  auto* item = new QCPItemText(plot);
  item->setClipAxisRect(rect);
  item->position->setAxisRect(rect);
  item->position->setType(QCPItemPosition::ptAxisRectRatio);
  item->position->setCoords(0.5, 0.5);
  item->setText(text);
  item->setColor(p.subtleText);
  item->setFont(plotFont(pointSize));
}

void legendBelowPlot(QCustomPlot* plot, QCPAxisRect* rect) {
  rect->insetLayout()->take(plot->legend);
  plot->plotLayout()->addElement(1, 0, plot->legend);
  plot->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  plot->legend->setWrap(4);
  plot->plotLayout()->setRowStretchFactor(1, 0.001);
}

QString formatValue(double v) {
  if (std::isnan(v)) return QStringLiteral("–");
  const double a = std::fabs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3)) return QString::number(v, 'e', 2);
  return QString::number(v, 'g', a >= 100 ? 4 : 3);
}

}  // namespace qs::plot
