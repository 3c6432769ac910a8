// The Compare view of 2–4 runs: which config keys differ (only those), every metric side by side
// with its delta against the first run (the reference), and a per-layer series (reconstruction
// error, max |x|, kurtosis, ...) overlaid across the runs, one site or all. The comparison itself
// is core/runs/run_compare (the same as `qscope runs compare`), loaded on a worker thread; what
// to draw is ui/plots/compare_data. A "Channels" tab overlays one site's per-channel min/max of
// every run that has it (analysis runs), on the same channel axis (ui/plots/compare_channels).
#pragma once
#include <QFutureWatcher>
#include <QWidget>

#include <memory>
#include <vector>

#include "core/runs/run_compare.h"
#include "ui/plots/compare_channels.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QTableWidget;
class QTabWidget;

namespace qs::ui {

class CompareView : public QWidget {
  Q_OBJECT

 public:
  explicit CompareView(QWidget* parent = nullptr);
  ~CompareView() override;

  // Loads the comparison in the background; compared() or failed() follows.
  void compare(const QString& runsPath, const std::vector<qint64>& ids);
  // Shows a comparison already loaded (tests).
  void setComparison(runs::Comparison c);
  void setSeries(const QString& name, const QString& site = QString());
  void setDark(bool dark);
  bool loading() const;

  const runs::Comparison& comparison() const { return comparison_; }
  QTableWidget* configTable() const { return config_; }
  QTableWidget* metricTable() const { return metrics_; }
  QCustomPlot* seriesPlot() const { return plot_; }
  QComboBox* seriesCombo() const { return series_; }
  // The channel view: sites every compared run has per-channel statistics for, and the overlay.
  const std::vector<plot::ChannelSiteKey>& channelSites() const { return channelSites_; }
  // Shows channelSites()[index] in the Channels tab; returns the runs drawn (0: see the plot's text).
  int showChannelSite(int index);
  QCustomPlot* channelPlot() const { return channelPlot_; }
  QTabWidget* plotTabs() const { return tabs_; }

 Q_SIGNALS:
  void compared();
  void failed(const QString& message);

 private:
  struct Loaded;
  void fillTables();
  void fillSeriesChoices();
  void redrawSeries();
  void redrawChannels();

  QLabel* header_;
  QTableWidget* config_;
  QTableWidget* metrics_;
  QComboBox* series_;
  QComboBox* site_;
  QCustomPlot* plot_;
  QTabWidget* tabs_;
  QComboBox* channelSite_;
  QCustomPlot* channelPlot_;
  QLabel* channelNote_;
  QString runsPath_;
  std::vector<plot::ChannelSiteKey> channelSites_;
  QFutureWatcher<std::shared_ptr<Loaded>>* watcher_;
  runs::Comparison comparison_;
  bool dark_ = false;
  bool updating_ = false;
};

}  // namespace qs::ui
