// OutlierExplorerPanel: see outlier_explorer_panel.h.
#include "ui/outlier_explorer_panel.h"

#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QPushButton>
#include <QStackedWidget>
#include <QTabWidget>
#include <QToolTip>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <map>
#include <set>

#include "core/runs/project.h"
#include "ui/plots/layer_plot.h"
#include "ui/plots/plot_export.h"
#include "ui/plots/plot_style.h"
#include "ui/plots/token_plot.h"
#include "ui/qcustomplot_include.h"

namespace qs::ui {

struct OutlierExplorerPanel::Loaded {
  qint64 id = -1;
  std::vector<runs::SiteStat> stats;
  std::vector<plot::SitePoint> points;
  QString error;
};

namespace {

QCustomPlot* makePlot(QWidget* parent, const QString& name) {
  auto* p = new QCustomPlot(parent);
  p->setObjectName(name);
  p->setMinimumSize(360, 240);
  p->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  return p;
}

QString runLabel(const runs::RunInfo& r) {
  QString s = QStringLiteral("#%1  %2").arg(r.id).arg(QString::fromStdString(r.name.empty() ? "(unnamed)" : r.name));
  if (r.status != runs::RunStatus::Finished) s += QStringLiteral("  [%1]").arg(QString::fromStdString(runs::toString(r.status)));
  return s;
}

}  // namespace

OutlierExplorerPanel::OutlierExplorerPanel(QWidget* parent)
    : QWidget(parent),
      stack_(new QStackedWidget(this)),
      message_(new QLabel(this)),
      runCombo_(new QComboBox(this)),
      layerCombo_(new QComboBox(this)),
      siteCombo_(new QComboBox(this)),
      tabs_(new QTabWidget(this)),
      layerPlot_(makePlot(this, QStringLiteral("layerPlot"))),
      channelPlot_(makePlot(this, QStringLiteral("channelPlot"))),
      tokenPlot_(makePlot(this, QStringLiteral("tokenPlot"))),
      sortCombo_(new QComboBox(this)),
      thresholdSpin_(new QDoubleSpinBox(this)),
      channelInfo_(new QLabel(this)),
      afterCheck_(new QCheckBox(tr("after OS+"), this)),
      afterInfo_(new QLabel(this)),
      exportButton_(new QPushButton(tr("Export…"), this)),
      csvButton_(new QPushButton(tr("Copy CSV"), this)),
      watcher_(new QFutureWatcher<std::shared_ptr<Loaded>>(this)),
      threshold_(std::numeric_limits<double>::quiet_NaN()) {
  setObjectName(QStringLiteral("outlierExplorer"));
  message_->setAlignment(Qt::AlignCenter);
  message_->setWordWrap(true);
  message_->setText(tr("Open a project (<b>File › Open Project…</b>) to explore the outliers of its analysis runs.<br>"
                       "Create one with <code>qscope project init</code> and <code>qscope analyze</code>."));

  runCombo_->setObjectName(QStringLiteral("runCombo"));
  runCombo_->setMinimumContentsLength(24);
  runCombo_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  layerCombo_->setObjectName(QStringLiteral("layerCombo"));
  siteCombo_->setObjectName(QStringLiteral("siteCombo"));
  siteCombo_->setMinimumContentsLength(14);
  sortCombo_->setObjectName(QStringLiteral("sortCombo"));
  sortCombo_->addItem(tr("channel index"), int(plot::ChannelSort::Index));
  sortCombo_->addItem(tr("range (widest first)"), int(plot::ChannelSort::Range));
  sortCombo_->addItem(tr("center (max+min)/2"), int(plot::ChannelSort::Center));
  sortCombo_->addItem(tr("max |x|"), int(plot::ChannelSort::AbsMax));
  thresholdSpin_->setObjectName(QStringLiteral("thresholdSpin"));
  thresholdSpin_->setRange(0, 1e9);
  thresholdSpin_->setDecimals(3);
  thresholdSpin_->setSpecialValueText(tr("auto"));  // 0 = automatic
  thresholdSpin_->setToolTip(tr("Outlier threshold on |x| (auto: the run's own, else 6 × median |x| of the channels)"));
  thresholdSpin_->setKeyboardTracking(false);
  exportButton_->setToolTip(tr("Save the current plot as PNG, SVG or PDF"));
  csvButton_->setToolTip(tr("Copy the current plot's data to the clipboard as CSV"));

  auto* top = new QHBoxLayout;
  top->addWidget(new QLabel(tr("Run"), this));
  top->addWidget(runCombo_, 2);
  top->addSpacing(8);
  top->addWidget(new QLabel(tr("Layer"), this));
  top->addWidget(layerCombo_);
  top->addWidget(new QLabel(tr("Site"), this));
  top->addWidget(siteCombo_, 1);
  top->addStretch();
  top->addWidget(exportButton_);
  top->addWidget(csvButton_);

  // Layers tab.
  auto* layersPage = new QWidget(this);
  auto* lv = new QVBoxLayout(layersPage);
  lv->setContentsMargins(0, 0, 0, 0);
  lv->addWidget(layerPlot_);
  auto* hint = new QLabel(tr("Click a point to open that layer and site in the channel and token views."), this);
  hint->setEnabled(false);
  lv->addWidget(hint);
  // Channels tab.
  auto* channelsPage = new QWidget(this);
  auto* cv = new QVBoxLayout(channelsPage);
  cv->setContentsMargins(0, 0, 0, 0);
  auto* ctools = new QHBoxLayout;
  ctools->addWidget(new QLabel(tr("Sort by"), this));
  ctools->addWidget(sortCombo_);
  ctools->addSpacing(8);
  ctools->addWidget(new QLabel(tr("Threshold |x| >"), this));
  ctools->addWidget(thresholdSpin_);
  auto* reset = new QPushButton(tr("Reset Zoom"), this);
  reset->setToolTip(tr("Drag to pan, wheel to zoom (hold Ctrl for the value axis)"));
  ctools->addWidget(reset);
  afterCheck_->setObjectName(QStringLiteral("afterOsPlus"));
  afterCheck_->setToolTip(tr("Also draw each channel's range after OS+ shifting and scaling, computed for this layer "
                             "under the Tuning panel's settings (its Live Preview)"));
  afterInfo_->setEnabled(false);
  // Long status texts are cut, not allowed to widen the window.
  afterInfo_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  afterInfo_->setMinimumWidth(40);
  channelInfo_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  channelInfo_->setMinimumWidth(80);
  channelInfo_->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
  ctools->addWidget(afterCheck_);
  ctools->addStretch(1);
  // The site summary and the after-OS+ status get a row of their own: on the tool row they were
  // cut to a few words at the dock's usual width.
  auto* infoRow = new QHBoxLayout;
  infoRow->addWidget(afterInfo_, 1);
  infoRow->addWidget(channelInfo_, 1);
  cv->addLayout(ctools);
  cv->addLayout(infoRow);
  cv->addWidget(channelPlot_);

  tabs_->setObjectName(QStringLiteral("explorerTabs"));
  tabs_->addTab(layersPage, tr("Layers"));
  tabs_->addTab(channelsPage, tr("Channels"));
  tabs_->addTab(tokenPlot_, tr("Tokens"));

  auto* content = new QWidget(this);
  auto* v = new QVBoxLayout(content);
  v->setContentsMargins(4, 4, 4, 4);
  v->addLayout(top);
  v->addWidget(tabs_, 1);
  stack_->addWidget(message_);
  stack_->addWidget(content);
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  outer->addWidget(stack_);

  channelPlot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  channelPlot_->setMouseTracking(true);
  layerPlot_->setMouseTracking(true);
  layerPlot_->setInteractions(QCP::iSelectPlottables);

  connect(runCombo_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this](int i) {
    if (!updating_ && i >= 0) loadRun(runCombo_->itemData(i).toLongLong());
  });
  auto siteChanged = [this] {
    if (updating_ || layerCombo_->currentIndex() < 0 || siteCombo_->currentIndex() < 0) return;
    const QStringList key = siteCombo_->currentData().toStringList();
    showSite(layerCombo_->currentData().toInt(), key.value(0), key.value(1));
  };
  connect(layerCombo_, qOverload<int>(&QComboBox::currentIndexChanged), this, siteChanged);
  connect(siteCombo_, qOverload<int>(&QComboBox::currentIndexChanged), this, siteChanged);
  connect(sortCombo_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this](int i) {
    if (!updating_) setSort(static_cast<plot::ChannelSort>(sortCombo_->itemData(i).toInt()));
  });
  connect(thresholdSpin_, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [this](double v) {
    if (!updating_) setThreshold(v > 0 ? v : std::numeric_limits<double>::quiet_NaN());
  });
  connect(reset, &QPushButton::clicked, this, [this] { redrawChannels(); });
  connect(afterCheck_, &QCheckBox::toggled, this, [this](bool on) {
    if (!on) afterInfo_->clear();
    redrawChannels();
    Q_EMIT afterOsPlusToggled(on);
  });
  connect(exportButton_, &QPushButton::clicked, this, &OutlierExplorerPanel::exportDialog);
  connect(csvButton_, &QPushButton::clicked, this, &OutlierExplorerPanel::copyCsv);
  connect(channelPlot_, &QCustomPlot::mouseMove, this, &OutlierExplorerPanel::onChannelHover);
  connect(layerPlot_, &QCustomPlot::mouseMove, this, &OutlierExplorerPanel::onLayerHover);
  connect(layerPlot_, &QCustomPlot::plottableClick, this, [this](QCPAbstractPlottable* p, int index, QMouseEvent*) {
    auto* g = qobject_cast<QCPGraph*>(p);
    if (!g || !g->property("site").isValid() || index < 0 || index >= g->dataCount()) return;
    showSite(static_cast<int>(g->dataMainKey(index)), g->property("site").toString(), g->property("kind").toString());
    setView(View::Channels);
  });
  // Wheel zoom on the channel axis by default; with Ctrl on the value axis.
  connect(channelPlot_, &QCustomPlot::mouseWheel, this, [this](QWheelEvent* e) {
    if (auto* rect = channelPlot_->axisRect())
      rect->setRangeZoom(e->modifiers() & Qt::ControlModifier ? Qt::Vertical : Qt::Horizontal);
  });
  connect(watcher_, &QFutureWatcher<std::shared_ptr<Loaded>>::finished, this, &OutlierExplorerPanel::onLoaded);
  setDark(false);
}

OutlierExplorerPanel::~OutlierExplorerPanel() { watcher_->waitForFinished(); }

bool OutlierExplorerPanel::loading() const { return watcher_->isRunning(); }

void OutlierExplorerPanel::showMessage(const QString& text) {
  message_->setText(text);
  stack_->setCurrentWidget(message_);
}

QString OutlierExplorerPanel::openProject(const QString& dir) {
  std::vector<runs::RunInfo> list;
  try {
    auto project = runs::Project::open(dir.toStdString());
    runsPath_ = QString::fromStdString(project.runsPath());
    auto store = project.openStore();
    runs::RunFilter filter;
    filter.kind = "analysis";
    list = store.listRuns(filter);
    projectDir_ = QString::fromStdString(project.dir());
  } catch (const std::exception& e) {
    const QString msg = QString::fromUtf8(e.what());
    showMessage(tr("Could not open the project:<br>%1").arg(msg.toHtmlEscaped()));
    return msg;
  }
  updating_ = true;
  runCombo_->clear();
  for (const auto& r : list) runCombo_->addItem(runLabel(r), QVariant::fromValue<qlonglong>(r.id));
  updating_ = false;
  if (list.empty()) {
    showMessage(tr("This project has no analysis runs yet.<br>Run <code>qscope analyze %1</code> to create one.")
                    .arg(projectDir_.toHtmlEscaped()));
    return QString();
  }
  stack_->setCurrentIndex(1);
  // Newest finished run first; fall back to the newest of any status.
  int pick = 0;
  for (int i = 0; i < static_cast<int>(list.size()); ++i)
    if (list[i].status == runs::RunStatus::Finished) {
      pick = i;
      break;
    }
  updating_ = true;
  runCombo_->setCurrentIndex(pick);
  updating_ = false;
  loadRun(list[pick].id);
  return QString();
}

void OutlierExplorerPanel::loadRun(qint64 id) {
  if (runsPath_.isEmpty()) return;
  if (watcher_->isRunning()) {  // the newest request wins; picked up in onLoaded
    pendingRun_ = id;
    return;
  }
  pendingRun_ = -1;
  Q_EMIT statusMessage(tr("Loading statistics of run %1…").arg(id));
  const std::string path = runsPath_.toStdString();
  watcher_->setFuture(QtConcurrent::run([path, id]() {
    auto out = std::make_shared<Loaded>();
    out->id = id;
    try {
      runs::RunStore store(path);  // a connection of this thread
      out->stats = store.loadSiteStats(id, -1, "", true);
      out->points = plot::summarize(out->stats);
    } catch (const std::exception& e) {
      out->error = QString::fromUtf8(e.what());
    }
    return out;
  }));
}

void OutlierExplorerPanel::onLoaded() {
  auto loaded = watcher_->result();
  if (pendingRun_ >= 0 && pendingRun_ != loaded->id) {
    loadRun(pendingRun_);
    return;
  }
  if (!loaded->error.isEmpty()) {
    Q_EMIT statusMessage(loaded->error);
    Q_EMIT loadFailed(loaded->error);
    return;
  }
  runId_ = loaded->id;
  stats_ = std::move(loaded->stats);
  points_ = std::move(loaded->points);
  rebuildSiteChoices();
  redrawLayers();
  // Keep the drilled-down site when the new run has it, else the first site of layer 0.
  const runs::SiteStat* keep = nullptr;
  for (const auto& s : stats_)
    if (s.layer == layer_ && QString::fromStdString(s.site) == site_ && QString::fromStdString(s.kind) == kind_) keep = &s;
  if (!keep && !stats_.empty()) {
    const runs::SiteStat* first = &stats_.front();
    for (const auto& s : stats_)
      if (s.kind != "weight" && (first->kind == "weight" || s.layer < first->layer ||
                                 (s.layer == first->layer && plot::siteRank(s.site) < plot::siteRank(first->site))))
        first = &s;
    keep = first;
  }
  if (keep) showSite(keep->layer, QString::fromStdString(keep->site), QString::fromStdString(keep->kind));
  Q_EMIT statusMessage(tr("Run %1: %2 sites").arg(runId_).arg(stats_.size()));
  Q_EMIT runLoaded(runId_);
}

void OutlierExplorerPanel::rebuildSiteChoices() {
  updating_ = true;
  layerCombo_->clear();
  siteCombo_->clear();
  std::set<int> layers;
  std::set<std::pair<std::pair<bool, int>, std::pair<std::string, std::string>>> sites;  // ((weight, rank), (site, kind))
  for (const auto& s : stats_) {
    layers.insert(s.layer);
    sites.insert({{s.kind == "weight", plot::siteRank(s.site)}, {s.site, s.kind}});
  }
  for (int l : layers) layerCombo_->addItem(tr("layer %1").arg(l), l);
  for (const auto& [rank, key] : sites)
    siteCombo_->addItem(QString::fromStdString(plot::seriesLabel(key.first, key.second)),
                        QStringList{QString::fromStdString(key.first), QString::fromStdString(key.second)});
  updating_ = false;
}

const runs::SiteStat* OutlierExplorerPanel::currentStat() const {
  const runs::SiteStat* any = nullptr;
  for (const auto& s : stats_) {
    if (s.layer != layer_ || QString::fromStdString(s.site) != site_) continue;
    if (kind_.isEmpty() || QString::fromStdString(s.kind) == kind_) return &s;
    if (!any) any = &s;
  }
  return any;
}

void OutlierExplorerPanel::showSite(int layer, const QString& site, const QString& kind) {
  layer_ = layer;
  site_ = site;
  kind_ = kind;
  updating_ = true;
  layerCombo_->setCurrentIndex(layerCombo_->findData(layer));
  for (int i = 0; i < siteCombo_->count(); ++i) {
    const QStringList key = siteCombo_->itemData(i).toStringList();
    if (key.value(0) == site && (kind.isEmpty() || key.value(1) == kind)) {
      siteCombo_->setCurrentIndex(i);
      break;
    }
  }
  updating_ = false;
  redrawChannels();
  redrawTokens();
  redrawLayers();  // moves the layer marker
  Q_EMIT siteShown(layer, site, kind);
}

bool OutlierExplorerPanel::afterOsPlus() const { return afterCheck_->isChecked(); }
QString OutlierExplorerPanel::afterStatus() const { return afterInfo_->text(); }
void OutlierExplorerPanel::setAfterOsPlus(bool on) { afterCheck_->setChecked(on); }

void OutlierExplorerPanel::setAfterRanges(int layer, const QString& site, std::vector<float> minAfter,
                                          std::vector<float> maxAfter, const QString& note) {
  afterLayer_ = layer;
  afterSite_ = site;
  afterMin_ = std::move(minAfter);
  afterMax_ = std::move(maxAfter);
  afterInfo_->setText(note);
  redrawChannels();
}

void OutlierExplorerPanel::setAfterStatus(const QString& note) {
  afterLayer_ = -1;
  afterSite_.clear();
  afterMin_.clear();
  afterMax_.clear();
  afterInfo_->setText(note);
  redrawChannels();
}

void OutlierExplorerPanel::setView(View view) { tabs_->setCurrentIndex(static_cast<int>(view)); }

OutlierExplorerPanel::View OutlierExplorerPanel::view() const { return static_cast<View>(tabs_->currentIndex()); }

void OutlierExplorerPanel::setSort(plot::ChannelSort sort) {
  sort_ = sort;
  updating_ = true;
  sortCombo_->setCurrentIndex(sortCombo_->findData(int(sort)));
  updating_ = false;
  redrawChannels();
}

void OutlierExplorerPanel::setThreshold(double threshold) {
  threshold_ = threshold;
  updating_ = true;
  thresholdSpin_->setValue(std::isnan(threshold) ? 0.0 : threshold);
  updating_ = false;
  redrawChannels();
}

void OutlierExplorerPanel::setDark(bool dark) {
  dark_ = dark;
  for (QCustomPlot* p : {layerPlot_, channelPlot_, tokenPlot_}) p->setBackground(plot::plotPalette(dark).background);
  redrawLayers();
  redrawChannels();
  redrawTokens();
}

void OutlierExplorerPanel::redrawLayers() {
  plot::LayerPlotOptions o;
  o.dark = dark_;
  o.highlightLayer = layer_;
  o.runLabel = runId_ >= 0 ? tr("run %1").arg(runId_) : QString();
  o.title = false;
  if (points_.empty()) {
    plot::resetPlot(layerPlot_, plot::plotPalette(dark_));
  } else {
    plot::renderLayers(layerPlot_, points_, o);
  }
  layerPlot_->replot();
}

void OutlierExplorerPanel::redrawChannels() {
  channel_ = plot::ChannelPlotResult();
  const runs::SiteStat* s = currentStat();
  channelInfo_->clear();
  if (!s) {
    plot::resetPlot(channelPlot_, plot::plotPalette(dark_));
    channelPlot_->replot();
    return;
  }
  plot::ChannelPlotOptions o;
  o.sort = sort_;
  o.threshold = threshold_;
  o.dark = dark_;
  o.title = false;  // the toolbar says what is shown; the dock's height goes to the bars
  try {
    channel_ = plot::renderChannels(channelPlot_, *s, o);
    afterDrawn_ = 0;
    if (afterCheck_->isChecked() && afterLayer_ == layer_ && afterSite_ == site_ && s->kind != "weight")
      drawAfterRanges();
    channelInfo_->setText(tr("<b>%1</b> · %2 channels · %3 over t = %4")
                              .arg(plot::siteTitle(*s).toHtmlEscaped())
                              .arg(channel_.rows.size())
                              .arg(channel_.outliers)
                              .arg(plot::formatValue(channel_.threshold)));
  } catch (const std::exception& e) {
    plot::resetPlot(channelPlot_, plot::plotPalette(dark_));
    channelInfo_->setText(QString::fromUtf8(e.what()));
  }
  channelPlot_->replot();
}

void OutlierExplorerPanel::redrawTokens() {
  tokens_.clear();
  const runs::SiteStat* s = currentStat();
  if (!s) {
    plot::resetPlot(tokenPlot_, plot::plotPalette(dark_));
  } else {
    plot::TokenPlotOptions o;
    o.dark = dark_;
    tokens_ = plot::renderTokens(tokenPlot_, *s, o).rows;
  }
  tokenPlot_->replot();
}

void OutlierExplorerPanel::drawAfterRanges() {
  // At each bar's rank, the same channel's migrated range, narrower and in the outlier colour's
  // complement, so before and after read side by side.
  QVector<double> x, c, minus, plus;
  for (size_t i = 0; i < channel_.rows.size(); ++i) {
    const size_t ch = static_cast<size_t>(channel_.rows[i].channel);
    if (ch >= afterMin_.size() || ch >= afterMax_.size()) continue;
    const double center = (static_cast<double>(afterMin_[ch]) + afterMax_[ch]) / 2;
    x << static_cast<double>(i) + 0.3;
    c << center;
    minus << center - afterMin_[ch];
    plus << afterMax_[ch] - center;
  }
  if (x.isEmpty()) return;
  QCPAxisRect* rect = channelPlot_->axisRect();
  QCPGraph* g = channelPlot_->addGraph(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  g->setName(tr("after OS+"));
  g->setLineStyle(QCPGraph::lsNone);
  const QColor after(0xe0, 0x8a, 0x1e);
  g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, after.darker(130), 3));
  g->setData(x, c, true);
  auto* bars = new QCPErrorBars(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  bars->removeFromLegend();
  bars->setDataPlottable(g);
  bars->setData(minus, plus);
  bars->setWhiskerWidth(0);
  const double px = std::max(1.0, std::min(4.0, 0.3 * channelPlot_->width() / static_cast<double>(x.size())));
  bars->setPen(QPen(after, px));
  afterDrawn_ = x.size();
}

QString OutlierExplorerPanel::channelToolTip(double key) const {
  const long i = std::lround(key);
  if (i < 0 || i >= static_cast<long>(channel_.rows.size())) return QString();
  const plot::ChannelRow& r = channel_.rows[i];
  return tr("channel %1\nmin %2   max %3\ncenter %4   half-range %5\nmax |x| %6%7")
      .arg(r.channel)
      .arg(plot::formatValue(r.min), plot::formatValue(r.max), plot::formatValue(r.center),
           plot::formatValue(r.halfRange), plot::formatValue(r.absMax))
      .arg(r.absMax > channel_.threshold ? tr("  (outlier)") : QString());
}

void OutlierExplorerPanel::onChannelHover(QMouseEvent* event) {
  if (channel_.rows.empty() || !channelPlot_->axisRect()) return;
  QCPAxis* x = channelPlot_->axisRect()->axis(QCPAxis::atBottom);
  const QString tip = channelPlot_->axisRect()->rect().contains(event->pos())
                          ? channelToolTip(x->pixelToCoord(event->pos().x()))
                          : QString();
  if (tip.isEmpty()) QToolTip::hideText();
  else QToolTip::showText(event->globalPosition().toPoint(), tip, channelPlot_);
}

void OutlierExplorerPanel::onLayerHover(QMouseEvent* event) {
  int index = -1;
  auto* g = qobject_cast<QCPGraph*>(layerPlot_->plottableAt(event->pos(), true, &index));
  if (!g || index < 0 || index >= g->dataCount()) {
    QToolTip::hideText();
    return;
  }
  QToolTip::showText(event->globalPosition().toPoint(),
                     tr("layer %1 · %2\n%3 = %4\nclick to open its channels")
                         .arg(static_cast<int>(g->dataMainKey(index)))
                         .arg(g->name(),
                              QString::fromStdString(g->property("metric").toString().toStdString()),
                              plot::formatValue(g->dataMainValue(index))),
                     layerPlot_);
}

QString OutlierExplorerPanel::currentCsv() const {
  switch (view()) {
    case View::Layers: return QString::fromStdString(plot::layerCsv(points_));
    case View::Channels: {
      const runs::SiteStat* s = currentStat();
      return s ? QString::fromStdString(plot::channelCsv(*s, channel_.rows)) : QString();
    }
    case View::Tokens: return QString::fromStdString(plot::tokenCsv(tokens_));
  }
  return QString();
}

QString OutlierExplorerPanel::exportCurrentView(const QString& path, int width, int height) {
  QCustomPlot* p = view() == View::Layers ? layerPlot_ : view() == View::Channels ? channelPlot_ : tokenPlot_;
  return plot::savePlot(p, path, width, height);
}

void OutlierExplorerPanel::exportDialog() {
  const QString base = view() == View::Layers ? QStringLiteral("layers")
                                              : QStringLiteral("layer%1_%2_%3")
                                                    .arg(layer_)
                                                    .arg(site_, view() == View::Channels ? "channels" : "tokens");
  const QString start = QDir(projectDir_.isEmpty() ? QDir::homePath() : projectDir_).filePath(base + ".png");
  const QString file = QFileDialog::getSaveFileName(this, tr("Export Plot"), start,
                                                    tr("PNG image (*.png);;SVG vector image (*.svg);;PDF (*.pdf)"));
  if (file.isEmpty()) return;
  QCustomPlot* p = view() == View::Layers ? layerPlot_ : view() == View::Channels ? channelPlot_ : tokenPlot_;
  const QString err = plot::savePlot(p, file, p->width(), p->height(), 2.0);
  Q_EMIT statusMessage(err.isEmpty() ? tr("Saved %1").arg(QFileInfo(file).fileName()) : err);
}

void OutlierExplorerPanel::copyCsv() {
  const QString csv = currentCsv();
  QApplication::clipboard()->setText(csv);
  Q_EMIT statusMessage(tr("Copied %1 rows as CSV").arg(std::max(0, static_cast<int>(csv.count('\n')) - 1)));
}

}  // namespace qs::ui
