// The "Pareto" dock: a mixed-precision search (its summary run, or any of its trial runs, opened
// from the Runs dock) drawn by ui/plots/pareto_plot (bits per weight against perplexity, or
// against the accuracy objective's acc). Clicking a point selects it: its trial's details are
// shown, runSelected() asks the Runs dock to select the trial's run, and "Export config…" writes
// the trial's per-layer precision YAML (for `qscope eval --precision`). What the points are and
// which one a click hits is ui/plots/pareto_data (tested without widgets).
#pragma once
#include <QWidget>

#include "ui/plots/pareto_data.h"

class QCPGraph;
class QCustomPlot;
class QLabel;
class QMouseEvent;
class QPushButton;

namespace qs::ui {

class ParetoView : public QWidget {
  Q_OBJECT

 public:
  explicit ParetoView(QWidget* parent = nullptr);

  // Loads and draws the search of run `runId`; "" or the error (also shown in the view).
  QString showSearch(const QString& runsPath, qint64 runId);
  void setDark(bool dark);

  const plot::SearchPareto& search() const { return search_; }
  int selectedPoint() const { return selected_; }
  // Selects point `index` (-1 = none): highlight, details, runSelected(its run).
  void selectPoint(int index);
  // What a left click at widget position `pos` of the plot selects (-1 = no point near).
  int pointAt(const QPoint& pos) const;
  // Writes the selected trial's precision config to `path`; "" or the error.
  QString exportConfig(const QString& path);

  QCustomPlot* plot() const { return plot_; }
  QLabel* details() const { return details_; }
  QPushButton* exportButton() const { return export_; }

 Q_SIGNALS:
  void runSelected(qint64 runId);
  void statusMessage(const QString& message);

 private:
  void redraw();
  void onPress(QMouseEvent* event);
  void onExportClicked();

  QCustomPlot* plot_;
  QLabel* details_;
  QPushButton* export_;
  QCPGraph* highlight_ = nullptr;
  plot::SearchPareto search_;
  int selected_ = -1;
  bool dark_ = false;
};

}  // namespace qs::ui
