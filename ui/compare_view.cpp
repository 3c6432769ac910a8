// CompareView: see compare_view.h.
#include "ui/compare_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <cmath>

#include "core/runs/run_store.h"
#include "ui/plots/compare_data.h"
#include "ui/plots/compare_plot.h"
#include "ui/plots/plot_style.h"
#include "ui/qcustomplot_include.h"

namespace qs::ui {

struct CompareView::Loaded {
  runs::Comparison comparison;
  std::vector<plot::ChannelSiteKey> channelSites;
  QString error;
};

namespace {

QTableWidget* makeTable(QWidget* parent, const QString& name) {
  auto* t = new QTableWidget(parent);
  t->setObjectName(name);
  t->setEditTriggers(QAbstractItemView::NoEditTriggers);
  t->verticalHeader()->hide();
  t->setAlternatingRowColors(true);
  t->setWordWrap(false);
  t->horizontalHeader()->setStretchLastSection(true);
  return t;
}

QString signedPercent(double rel) {
  if (std::isnan(rel)) return QString();
  return QStringLiteral("%1%2%").arg(rel >= 0 ? "+" : "").arg(rel * 100, 0, 'f', std::fabs(rel) < 0.1 ? 2 : 1);
}

}  // namespace

CompareView::CompareView(QWidget* parent)
    : QWidget(parent),
      header_(new QLabel(this)),
      config_(makeTable(this, QStringLiteral("compareConfig"))),
      metrics_(makeTable(this, QStringLiteral("compareMetrics"))),
      series_(new QComboBox(this)),
      site_(new QComboBox(this)),
      plot_(new QCustomPlot(this)),
      tabs_(new QTabWidget(this)),
      channelSite_(new QComboBox(this)),
      channelPlot_(new QCustomPlot(this)),
      channelNote_(new QLabel(this)),
      watcher_(new QFutureWatcher<std::shared_ptr<Loaded>>(this)) {
  setObjectName(QStringLiteral("compareView"));
  header_->setWordWrap(true);
  header_->setText(tr("Select 2–4 runs in the Runs dock and press <b>Compare</b>."));
  series_->setObjectName(QStringLiteral("compareSeries"));
  series_->setMinimumContentsLength(28);
  site_->setObjectName(QStringLiteral("compareSite"));
  site_->setMinimumContentsLength(16);
  plot_->setObjectName(QStringLiteral("comparePlot"));
  plot_->setMinimumSize(360, 220);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);

  auto* configBox = new QWidget(this);
  auto* cv = new QVBoxLayout(configBox);
  cv->setContentsMargins(0, 0, 0, 0);
  cv->addWidget(new QLabel(tr("<b>Config</b> (keys that differ)"), this));
  cv->addWidget(config_);
  auto* metricBox = new QWidget(this);
  auto* mv = new QVBoxLayout(metricBox);
  mv->setContentsMargins(0, 0, 0, 0);
  mv->addWidget(new QLabel(tr("<b>Metrics</b> (Δ against the first run)"), this));
  mv->addWidget(metrics_);
  auto* tables = new QSplitter(Qt::Horizontal, this);
  tables->addWidget(configBox);
  tables->addWidget(metricBox);
  tables->setStretchFactor(0, 2);
  tables->setStretchFactor(1, 3);

  auto* plotBox = new QWidget(this);
  auto* pv = new QVBoxLayout(plotBox);
  pv->setContentsMargins(0, 0, 0, 0);
  auto* tools = new QHBoxLayout;
  tools->addWidget(new QLabel(tr("<b>Per layer</b>"), this));
  tools->addWidget(series_, 1);
  tools->addWidget(new QLabel(tr("Site"), this));
  tools->addWidget(site_);
  tools->addStretch();
  pv->addLayout(tools);
  pv->addWidget(plot_, 1);

  channelSite_->setObjectName(QStringLiteral("compareChannelSite"));
  channelSite_->setMinimumContentsLength(28);
  channelPlot_->setObjectName(QStringLiteral("compareChannelPlot"));
  channelPlot_->setMinimumSize(360, 220);
  channelPlot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  channelNote_->setWordWrap(true);
  auto* channelBox = new QWidget(this);
  auto* chv = new QVBoxLayout(channelBox);
  chv->setContentsMargins(0, 0, 0, 0);
  auto* chTools = new QHBoxLayout;
  chTools->addWidget(new QLabel(tr("<b>Site</b>"), this));
  chTools->addWidget(channelSite_, 1);
  chTools->addWidget(channelNote_, 2);
  chv->addLayout(chTools);
  chv->addWidget(channelPlot_, 1);
  tabs_->setObjectName(QStringLiteral("comparePlotTabs"));
  tabs_->addTab(plotBox, tr("Per layer"));
  tabs_->addTab(channelBox, tr("Channels"));

  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(tables);
  split->addWidget(tabs_);
  split->setStretchFactor(0, 2);
  split->setStretchFactor(1, 3);
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(4, 4, 4, 4);
  v->addWidget(header_);
  v->addWidget(split, 1);

  connect(series_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
    if (updating_) return;
    fillSeriesChoices();
    redrawSeries();
  });
  connect(site_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
    if (!updating_) redrawSeries();
  });
  connect(channelSite_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
    if (!updating_) redrawChannels();
  });
  connect(watcher_, &QFutureWatcher<std::shared_ptr<Loaded>>::finished, this, [this] {
    auto r = watcher_->result();
    if (!r->error.isEmpty()) {
      header_->setText(r->error.toHtmlEscaped());
      Q_EMIT failed(r->error);
      return;
    }
    channelSites_ = std::move(r->channelSites);
    setComparison(std::move(r->comparison));
    Q_EMIT compared();
  });
  setDark(false);
}

CompareView::~CompareView() { watcher_->waitForFinished(); }

bool CompareView::loading() const { return watcher_->isRunning(); }

void CompareView::compare(const QString& runsPath, const std::vector<qint64>& ids) {
  if (watcher_->isRunning()) watcher_->waitForFinished();
  header_->setText(tr("Comparing runs…"));
  runsPath_ = runsPath;
  const std::string path = runsPath.toStdString();
  std::vector<int64_t> list(ids.begin(), ids.end());
  watcher_->setFuture(QtConcurrent::run([path, list] {
    auto out = std::make_shared<Loaded>();
    try {
      runs::RunStore store(path);  // this thread's connection
      out->comparison = store.compareRuns(list);
      std::vector<std::vector<runs::SiteStat>> stats;
      for (int64_t id : list) stats.push_back(store.loadSiteStats(id, -1, "", /*withArrays=*/false));
      out->channelSites = plot::commonChannelSites(stats);
    } catch (const std::exception& e) {
      out->error = QString::fromUtf8(e.what());
    }
    return out;
  }));
}

void CompareView::setComparison(runs::Comparison c) {
  comparison_ = std::move(c);
  QStringList names;
  for (const auto& r : comparison_.runs) names << QString::fromStdString(plot::runLabel(r)).toHtmlEscaped();
  header_->setText(tr("Comparing %1 runs: %2 — the first is the reference").arg(comparison_.runs.size()).arg(names.join(", ")));
  fillTables();
  updating_ = true;
  const QString keep = series_->currentData().toString();
  series_->clear();
  for (const auto& s : comparison_.series)
    series_->addItem(QString::fromStdString(plot::seriesTitle(s.name)), QString::fromStdString(s.name));
  int pick = series_->findData(keep);
  if (pick < 0) pick = series_->findData(QStringLiteral("rel_error"));
  if (pick < 0) pick = series_->findData(QStringLiteral("input.max_abs"));
  series_->setCurrentIndex(std::max(0, pick));
  updating_ = false;
  fillSeriesChoices();
  redrawSeries();

  updating_ = true;
  const QString keepSite = channelSite_->currentText();
  channelSite_->clear();
  for (const auto& k : channelSites_) channelSite_->addItem(QString::fromStdString(k.label()));
  channelSite_->setCurrentIndex(std::max(0, channelSite_->findText(keepSite)));
  updating_ = false;
  redrawChannels();
}

void CompareView::fillTables() {
  const int n = static_cast<int>(comparison_.runs.size());
  // Columns are headed "#id" (the header line above names the runs); the full label is the tooltip.
  QStringList runHeads;
  for (const auto& r : comparison_.runs) runHeads << QStringLiteral("#%1").arg(r.id);

  config_->clear();
  config_->setColumnCount(n + 1);
  config_->setHorizontalHeaderLabels(QStringList{tr("key")} + runHeads);
  for (int j = 0; j < n; ++j)
    config_->horizontalHeaderItem(j + 1)->setToolTip(QString::fromStdString(plot::runLabel(comparison_.runs[static_cast<size_t>(j)])));
  config_->setRowCount(static_cast<int>(comparison_.configDiff.size()));
  for (int i = 0; i < config_->rowCount(); ++i) {
    const auto& row = comparison_.configDiff[static_cast<size_t>(i)];
    config_->setItem(i, 0, new QTableWidgetItem(QString::fromStdString(row.key)));
    for (int j = 0; j < n && j < static_cast<int>(row.values.size()); ++j) {
      const auto& v = row.values[static_cast<size_t>(j)];
      auto* it = new QTableWidgetItem(v ? QString::fromStdString(*v) : tr("(absent)"));
      if (!v) it->setForeground(palette().color(QPalette::Disabled, QPalette::Text));
      it->setToolTip(it->text());
      config_->setItem(i, j + 1, it);
    }
  }
  if (comparison_.configDiff.empty()) {
    config_->setRowCount(1);
    config_->setItem(0, 0, new QTableWidgetItem(tr("(the configs are identical)")));
  }
  config_->resizeColumnsToContents();

  const auto deltas = plot::metricDeltas(comparison_);
  metrics_->clear();
  metrics_->setColumnCount(n + 1);
  QStringList heads{tr("metric")};
  for (int j = 0; j < n; ++j) heads << (j == 0 ? runHeads[j] : tr("%1 (Δ)").arg(runHeads[j]));
  metrics_->setHorizontalHeaderLabels(heads);
  for (int j = 0; j < n; ++j)
    metrics_->horizontalHeaderItem(j + 1)->setToolTip(QString::fromStdString(plot::runLabel(comparison_.runs[static_cast<size_t>(j)])));
  metrics_->setRowCount(static_cast<int>(deltas.size()));
  for (int i = 0; i < metrics_->rowCount(); ++i) {
    const auto& d = deltas[static_cast<size_t>(i)];
    auto* key = new QTableWidgetItem(QString::fromStdString(d.key) + (d.unit.empty() ? QString() : QStringLiteral(" [%1]").arg(QString::fromStdString(d.unit))));
    key->setToolTip(d.protocolsDiffer ? tr("the runs measured this under different protocols")
                                      : QString::fromStdString(d.protocol));
    if (d.protocolsDiffer) key->setText(key->text() + QStringLiteral(" ⚠"));
    metrics_->setItem(i, 0, key);
    for (int j = 0; j < n && j < static_cast<int>(d.values.size()); ++j) {
      const double v = d.values[static_cast<size_t>(j)];
      QString text = std::isnan(v) ? tr("—") : plot::formatValue(v);
      if (j > 0 && !std::isnan(d.delta[static_cast<size_t>(j)]))
        text += QStringLiteral("  (%1%2, %3)")
                    .arg(d.delta[static_cast<size_t>(j)] >= 0 ? "+" : "")
                    .arg(plot::formatValue(d.delta[static_cast<size_t>(j)]))
                    .arg(signedPercent(d.relDelta[static_cast<size_t>(j)]));
      auto* it = new QTableWidgetItem(text);
      it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      metrics_->setItem(i, j + 1, it);
    }
  }
  metrics_->resizeColumnsToContents();
}

void CompareView::fillSeriesChoices() {
  updating_ = true;
  const QString keep = site_->currentData().toString();
  site_->clear();
  site_->addItem(tr("all sites"), QString());
  const std::string name = series_->currentData().toString().toStdString();
  for (const auto& s : comparison_.series)
    if (s.name == name)
      for (const auto& site : plot::seriesSites(s)) site_->addItem(QString::fromStdString(site), QString::fromStdString(site));
  site_->setCurrentIndex(std::max(0, site_->findData(keep)));
  updating_ = false;
}

void CompareView::setSeries(const QString& name, const QString& site) {
  updating_ = true;
  series_->setCurrentIndex(std::max(0, series_->findData(name)));
  updating_ = false;
  fillSeriesChoices();
  updating_ = true;
  site_->setCurrentIndex(std::max(0, site_->findData(site)));
  updating_ = false;
  redrawSeries();
}

void CompareView::setDark(bool dark) {
  dark_ = dark;
  redrawSeries();
  redrawChannels();
}

void CompareView::redrawSeries() {
  const auto data = plot::compareSeries(comparison_, series_->currentData().toString().toStdString(),
                                        site_->currentData().toString().toStdString());
  plot::renderCompareSeries(plot_, data, dark_);
  plot_->replot();
}

int CompareView::showChannelSite(int index) {
  if (index < 0 || index >= channelSite_->count()) return 0;
  updating_ = true;
  channelSite_->setCurrentIndex(index);
  updating_ = false;
  redrawChannels();
  return channelPlot_->legend->itemCount();
}

void CompareView::redrawChannels() {
  plot::ChannelOverlayData data;
  const int i = channelSite_->currentIndex();
  if (channelSites_.empty()) {
    data.error = comparison_.runs.empty() ? std::string()
                                          : "The selected runs share no site with per-channel statistics (analysis runs "
                                            "of the same model have them)";
  } else if (i >= 0 && i < static_cast<int>(channelSites_.size()) && !runsPath_.isEmpty()) {
    const plot::ChannelSiteKey& key = channelSites_[static_cast<size_t>(i)];
    try {
      runs::RunStore store(runsPath_.toStdString());
      std::vector<runs::SiteStat> rows;
      for (const auto& r : comparison_.runs) {
        runs::SiteStat found;
        for (auto& s : store.loadSiteStats(r.id, key.layer, key.site, /*withArrays=*/true))
          if (s.kind == key.kind) found = std::move(s);
        rows.push_back(std::move(found));
      }
      data = plot::channelOverlay(comparison_.runs, key, rows);
    } catch (const std::exception& e) {
      data.error = e.what();
    }
  }
  channelNote_->setText(channelSites_.empty() ? QString()
                                              : tr("%n site(s) in common; one band per run over the same channels", "",
                                                   static_cast<int>(channelSites_.size())));
  plot::renderChannelOverlay(channelPlot_, data, dark_);
  channelPlot_->replot();
}

}  // namespace qs::ui
