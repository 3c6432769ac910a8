// The Outlier Explorer dock: pick an analysis run of the open project, see the layer overview
// (max |x|, kurtosis, variance, outlier channels per layer and site), click a point to open that
// site's channel view (per-channel min/max bars with asymmetry centers, sort, threshold, zoom/pan,
// hover tooltips) and its token view (top outlier tokens with their text). Any view exports to
// PNG/SVG/PDF or copies its data as CSV. What to plot comes from ui/plots (widget-free logic +
// renderers shared with `qscope plot`); this widget only wires controls to them. The run's
// statistics load on a worker thread.
#pragma once
#include <QFutureWatcher>
#include <QWidget>

#include <memory>
#include <vector>

#include "core/runs/run_types.h"
#include "ui/plots/channel_plot.h"
#include "ui/plots/plot_data.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QMouseEvent;
class QPushButton;
class QStackedWidget;
class QTabWidget;

namespace qs::ui {

class OutlierExplorerPanel : public QWidget {
  Q_OBJECT

 public:
  enum class View { Layers = 0, Channels = 1, Tokens = 2 };

  explicit OutlierExplorerPanel(QWidget* parent = nullptr);
  ~OutlierExplorerPanel() override;

  // Opens a project folder and lists its analysis runs (newest selected and loaded). Returns ""
  // or the error message (also shown in the panel).
  QString openProject(const QString& dir);
  QString projectDir() const { return projectDir_; }
  // Loads a run's site statistics in the background; runLoaded/loadFailed follow.
  void loadRun(qint64 id);
  qint64 currentRun() const { return runId_; }
  bool loading() const;

  // Drill down: shows the channel and token views of one site.
  void showSite(int layer, const QString& site, const QString& kind = QString());
  void setView(View view);
  View view() const;
  void setSort(plot::ChannelSort sort);
  // NaN = automatic (the run's own threshold, else 6 x median |x|).
  void setThreshold(double threshold);
  void setDark(bool dark);

  // The current view's data as CSV text, and export to a file (PNG/SVG/PDF); "" = ok.
  QString currentCsv() const;
  QString exportCurrentView(const QString& path, int width = 1400, int height = 720);

  int currentLayer() const { return layer_; }
  QString currentSite() const { return site_; }
  QCustomPlot* layerPlot() const { return layerPlot_; }
  QCustomPlot* channelPlot() const { return channelPlot_; }
  QCustomPlot* tokenPlot() const { return tokenPlot_; }
  QComboBox* runCombo() const { return runCombo_; }
  const std::vector<runs::SiteStat>& stats() const { return stats_; }
  const plot::ChannelPlotResult& channelResult() const { return channel_; }
  // Tooltip text for the channel bar at plot x (rank), "" outside the bars.
  QString channelToolTip(double key) const;

  // "After OS+": the channel view also draws each channel's range after OS+ shifting/scaling
  // (computed by the Tuning panel's preview for this layer and site, under its settings).
  bool afterOsPlus() const;
  void setAfterOsPlus(bool on);
  // The migrated ranges of (layer, site), by channel index; drawn when they match the view.
  void setAfterRanges(int layer, const QString& site, std::vector<float> minAfter, std::vector<float> maxAfter,
                      const QString& note);
  // Clears them and says why (no pair migrates this input, computing, ...).
  void setAfterStatus(const QString& note);
  int afterRangesDrawn() const { return afterDrawn_; }
  QString afterStatus() const;

 Q_SIGNALS:
  void runLoaded(qint64 id);
  // The channel view shows (layer, site, kind) now.
  void siteShown(int layer, const QString& site, const QString& kind);
  void afterOsPlusToggled(bool on);
  void loadFailed(const QString& message);
  void statusMessage(const QString& message);

 private:
  struct Loaded;
  void onLoaded();
  void redrawLayers();
  void redrawChannels();
  void drawAfterRanges();
  void redrawTokens();
  void rebuildSiteChoices();
  void showMessage(const QString& text);
  void onChannelHover(QMouseEvent* event);
  void onLayerHover(QMouseEvent* event);
  void exportDialog();
  void copyCsv();
  const runs::SiteStat* currentStat() const;

  QStackedWidget* stack_;
  QLabel* message_;
  QComboBox* runCombo_;
  QComboBox* layerCombo_;
  QComboBox* siteCombo_;
  QTabWidget* tabs_;
  QCustomPlot* layerPlot_;
  QCustomPlot* channelPlot_;
  QCustomPlot* tokenPlot_;
  QComboBox* sortCombo_;
  QDoubleSpinBox* thresholdSpin_;
  QLabel* channelInfo_;
  QCheckBox* afterCheck_;
  QLabel* afterInfo_;
  QPushButton* exportButton_;
  QPushButton* csvButton_;
  QFutureWatcher<std::shared_ptr<Loaded>>* watcher_;

  QString projectDir_, runsPath_;
  qint64 runId_ = -1;
  qint64 pendingRun_ = -1;
  std::vector<runs::SiteStat> stats_;
  std::vector<plot::SitePoint> points_;
  plot::ChannelPlotResult channel_;
  std::vector<plot::TokenRow> tokens_;
  int layer_ = -1;
  QString site_, kind_;
  plot::ChannelSort sort_ = plot::ChannelSort::Index;
  double threshold_;  // NaN = automatic
  bool dark_ = false;
  bool updating_ = false;  // programmatic combo changes do not re-trigger
  int afterLayer_ = -1;
  QString afterSite_;
  std::vector<float> afterMin_, afterMax_;
  int afterDrawn_ = 0;     // channels drawn with their after-OS+ range in the last redraw
};

}  // namespace qs::ui
