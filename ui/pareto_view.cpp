#include "ui/pareto_view.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QPushButton>
#include <QVBoxLayout>

#include <cmath>
#include <exception>

#include "ui/plots/pareto_plot.h"
#include "ui/plots/plot_style.h"
#include "ui/qcustomplot_include.h"

namespace qs::ui {

ParetoView::ParetoView(QWidget* parent)
    : QWidget(parent), plot_(new QCustomPlot(this)), details_(new QLabel(this)), export_(new QPushButton(tr("Export config…"), this)) {
  setObjectName(QStringLiteral("paretoView"));
  plot_->setObjectName(QStringLiteral("paretoPlot"));
  details_->setObjectName(QStringLiteral("paretoDetails"));
  details_->setWordWrap(true);
  details_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  export_->setObjectName(QStringLiteral("paretoExportButton"));
  export_->setToolTip(tr("Write the selected trial's per-layer precision config (YAML for qscope eval --precision)"));
  export_->setEnabled(false);
  plot_->setMinimumSize(320, 220);
  auto* bottom = new QHBoxLayout;
  bottom->addWidget(details_, 1);
  bottom->addWidget(export_);
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(4, 4, 4, 4);
  v->addWidget(plot_, 1);
  v->addLayout(bottom);
  details_->setText(tr("Select a search run in the Runs dock and press Pareto."));
  connect(plot_, &QCustomPlot::mousePress, this, &ParetoView::onPress);
  connect(export_, &QPushButton::clicked, this, &ParetoView::onExportClicked);
}

QString ParetoView::showSearch(const QString& runsPath, qint64 runId) {
  try {
    search_ = plot::loadSearchPareto(runsPath.toStdString(), runId);
  } catch (const std::exception& e) {
    search_ = {};
    selected_ = -1;
    redraw();
    details_->setText(QString::fromUtf8(e.what()));
    export_->setEnabled(false);
    return QString::fromUtf8(e.what());
  }
  selected_ = -1;
  redraw();
  // Opened from a trial: that trial is the selection.
  const int own = search_.indexOfRun(runId);
  if (own >= 0) selectPoint(own);
  else details_->setText(tr("%1 trials, %2 on the front. Click a point to select its run.")
                             .arg(search_.points.size())
                             .arg(search_.frontCount()));
  return QString();
}

void ParetoView::setDark(bool dark) {
  dark_ = dark;
  redraw();
}

void ParetoView::redraw() {
  plot::ParetoPlotOptions o;
  o.dark = dark_;
  o.yLabel = QString::fromStdString(search_.yLabel());
  if (!search_.searchId.empty()) {
    o.title = tr("Pareto front · search %1 (%2)").arg(QString::fromStdString(search_.searchId), QString::fromStdString(search_.algo));
    o.subtitle = tr("%1 trials, %2 on the front").arg(search_.points.size()).arg(search_.frontCount());
  }
  plot::renderPareto(plot_, search_.points, o);
  // Accuracy rises to the top right, where the legend would cover the best points.
  if (!search_.accTask.empty())
    plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignBottom | Qt::AlignRight);
  highlight_ = plot_->addGraph();
  highlight_->setLineStyle(QCPGraph::lsNone);
  highlight_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(plot::plotPalette(dark_).outlier, 2.5), Qt::NoBrush, 18));
  highlight_->setName(tr("selected"));
  highlight_->removeFromLegend();
  if (selected_ >= 0) {
    const auto& p = search_.points[static_cast<size_t>(selected_)];
    highlight_->setData(QVector<double>{p.bits}, QVector<double>{p.ppl});
  }
  plot_->replot();
}

void ParetoView::selectPoint(int index) {
  if (index >= static_cast<int>(search_.points.size())) index = -1;
  selected_ = index;
  if (highlight_) {
    if (index < 0) highlight_->data()->clear();
    else {
      const auto& p = search_.points[static_cast<size_t>(index)];
      highlight_->setData(QVector<double>{p.bits}, QVector<double>{p.ppl});
    }
    plot_->replot();
  }
  export_->setEnabled(index >= 0);
  if (index < 0) return;
  details_->setText(QString::fromStdString(search_.describe(index)));
  const qint64 run = search_.points[static_cast<size_t>(index)].runId;
  if (run > 0) Q_EMIT runSelected(run);
}

int ParetoView::pointAt(const QPoint& pos) const {
  const QCPAxis* x = plot_->xAxis;
  const QCPAxis* y = plot_->yAxis;
  const double xScale = std::abs(x->coordToPixel(1.0) - x->coordToPixel(0.0));
  const double yScale = std::abs(y->coordToPixel(1.0) - y->coordToPixel(0.0));
  return plot::nearestPoint(search_, x->pixelToCoord(pos.x()), y->pixelToCoord(pos.y()), xScale, yScale, 12.0);
}

void ParetoView::onPress(QMouseEvent* event) {
  if (event->button() != Qt::LeftButton || search_.points.empty()) return;
  const int i = pointAt(event->pos());
  if (i >= 0) selectPoint(i);
}

QString ParetoView::exportConfig(const QString& path) {
  try {
    plot::exportTrialConfig(search_, selected_, path.toStdString());
  } catch (const std::exception& e) {
    Q_EMIT statusMessage(QString::fromUtf8(e.what()));
    return QString::fromUtf8(e.what());
  }
  Q_EMIT statusMessage(tr("Wrote %1").arg(path));
  return QString();
}

void ParetoView::onExportClicked() {
  if (selected_ < 0) return;
  const auto& p = search_.points[static_cast<size_t>(selected_)];
  const QString suggested = QStringLiteral("%1-trial%2.yaml").arg(QString::fromStdString(search_.searchId)).arg(p.trial);
  const QString path = QFileDialog::getSaveFileName(this, tr("Export trial config"), suggested, tr("YAML (*.yaml *.yml)"));
  if (path.isEmpty()) return;
  const QString err = exportConfig(path);
  if (!err.isEmpty()) details_->setText(err);
}

}  // namespace qs::ui
