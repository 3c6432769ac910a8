// MainWindow: see main_window.h.
#include "ui/main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCloseEvent>
#include <QDesktopServices>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QSettings>
#include <QStackedWidget>
#include <QToolBar>
#include <QUrl>
#include <QTimer>
#include <QTreeView>

#include <algorithm>

#include "core/runs/project.h"
#include "core/workflow/cluster_jobs.h"
#include "core/workflow/export_job.h"
#include "core/workflow/search_job.h"
#include "core/workflow/project_jobs.h"
#include "ui/display_format.h"
#include "ui/export_dialog.h"
#include "ui/compare_view.h"
#include "ui/pareto_view.h"
#include "ui/remote_jobs_view.h"
#include "ui/search_dialog.h"
#include "ui/job_queue.h"
#include "ui/jobs_panel.h"
#include "ui/log_panel.h"
#include "ui/model_info_panel.h"
#include "ui/model_loader.h"
#include "ui/model_tree_panel.h"
#include "ui/outlier_explorer_panel.h"
#include "ui/plots/plot_style.h"
#include "ui/runs_panel.h"
#include "ui/status_bar.h"
#include "ui/tuning_panel.h"

// Resources live in the static qs_ui library; they must be registered explicitly, and
// Q_INIT_RESOURCE cannot be used inside a namespace.
static void initQuantScopeResources() { Q_INIT_RESOURCE(quantscope); }

namespace qs::ui {

namespace {
const char* const kGeometryKey = "mainWindow/geometry";
const char* const kStateKey = "mainWindow/state";
const char* const kThemeKey = "view/theme";
constexpr int kStateVersion = 3;  // 2: Jobs, Runs, Compare and Tuning docks; 3: Jobs toolbar

QString welcomeText() {
  return QObject::tr(
      "<div style='font-size:15pt; font-weight:600'>No model open</div>"
      "<p>Open a Hugging Face model folder with <b>File › Open Model Folder…</b> (Ctrl+O),<br>"
      "a GGUF file with <b>File › Open GGUF File…</b>, or drop either onto this window.</p>");
}
}  // namespace

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent),
      loader_(new ModelLoader(this)),
      central_(new QStackedWidget(this)),
      treePanel_(new ModelTreePanel(this)),
      infoPanel_(new ModelInfoPanel(this)),
      logPanel_(new LogPanel(this)),
      infoDock_(new QDockWidget(tr("Model"), this)),
      logDock_(new QDockWidget(tr("Log"), this)),
      explorer_(new OutlierExplorerPanel(this)),
      explorerDock_(new QDockWidget(tr("Outlier Explorer"), this)),
      statusBar_(new StatusBar(this)),
      jobs_(new JobQueue(this)),
      jobsPanel_(new JobsPanel(jobs_, this)),
      jobsDock_(new QDockWidget(tr("Jobs"), this)),
      runsPanel_(new RunsPanel(this)),
      runsDock_(new QDockWidget(tr("Runs"), this)),
      compareView_(new CompareView(this)),
      compareDock_(new QDockWidget(tr("Compare"), this)),
      tuning_(new TuningPanel(this)),
      tuningDock_(new QDockWidget(tr("Tuning"), this)) {
  initQuantScopeResources();
  setObjectName(QStringLiteral("mainWindow"));
  setWindowTitle(QStringLiteral("QuantScope"));
  setWindowIcon(QIcon(QStringLiteral(":/icons/quantscope.svg")));
  setAcceptDrops(true);
  setDockOptions(QMainWindow::AnimatedDocks | QMainWindow::AllowTabbedDocks);

  auto* welcome = new QLabel(welcomeText(), this);
  welcome->setObjectName(QStringLiteral("welcome"));
  welcome->setAlignment(Qt::AlignCenter);
  welcome->setTextFormat(Qt::RichText);
  central_->addWidget(welcome);
  central_->addWidget(treePanel_);
  setCentralWidget(central_);

  infoDock_->setObjectName(QStringLiteral("modelDock"));
  infoDock_->setWidget(infoPanel_);
  infoDock_->setAllowedAreas(Qt::LeftDockWidgetArea | Qt::RightDockWidgetArea);
  addDockWidget(Qt::RightDockWidgetArea, infoDock_);
  logDock_->setObjectName(QStringLiteral("logDock"));
  logDock_->setWidget(logPanel_);
  addDockWidget(Qt::BottomDockWidgetArea, logDock_);
  logDock_->hide();
  explorerDock_->setObjectName(QStringLiteral("outlierExplorerDock"));
  explorerDock_->setWidget(explorer_);
  addDockWidget(Qt::BottomDockWidgetArea, explorerDock_);
  explorerDock_->hide();  // shown when a project is opened
  jobsDock_->setObjectName(QStringLiteral("jobsDock"));
  jobsDock_->setWidget(jobsPanel_);
  addDockWidget(Qt::RightDockWidgetArea, jobsDock_);
  tabifyDockWidget(infoDock_, jobsDock_);  // the right edge's full height for the job rows
  jobsDock_->hide();  // shown when a project is opened or a job starts
  runsDock_->setObjectName(QStringLiteral("runsDock"));
  runsDock_->setWidget(runsPanel_);
  addDockWidget(Qt::BottomDockWidgetArea, runsDock_);
  tabifyDockWidget(explorerDock_, runsDock_);
  runsDock_->hide();
  compareDock_->setObjectName(QStringLiteral("compareDock"));
  compareDock_->setWidget(compareView_);
  addDockWidget(Qt::BottomDockWidgetArea, compareDock_);
  tabifyDockWidget(explorerDock_, compareDock_);
  compareDock_->hide();
  paretoView_ = new ParetoView(this);
  paretoDock_ = new QDockWidget(tr("Pareto"), this);
  paretoDock_->setObjectName(QStringLiteral("paretoDock"));
  paretoDock_->setWidget(paretoView_);
  addDockWidget(Qt::BottomDockWidgetArea, paretoDock_);
  tabifyDockWidget(compareDock_, paretoDock_);
  paretoDock_->hide();
  tuningDock_->setObjectName(QStringLiteral("tuningDock"));
  tuningDock_->setWidget(tuning_);
  addDockWidget(Qt::BottomDockWidgetArea, tuningDock_);
  tabifyDockWidget(explorerDock_, tuningDock_);
  tuningDock_->hide();
  // "After OS+" in the explorer's channel view: the Tuning panel's preview computes the site's
  // migrated ranges under the current settings; the explorer draws them next to the run's.
  auto requestAfter = [this] {
    if (!explorer_->afterOsPlus() || explorer_->currentLayer() < 0) return;
    explorer_->setAfterStatus(tr("computing…"));
    tuning_->setPreviewSite(explorer_->currentLayer(), explorer_->currentSite());
  };
  connect(explorer_, &OutlierExplorerPanel::afterOsPlusToggled, this, requestAfter);
  connect(explorer_, &OutlierExplorerPanel::siteShown, this, requestAfter);
  connect(tuning_, &TuningPanel::previewUpdated, this, [this] {
    if (!explorer_->afterOsPlus()) return;
    const auto& r = tuning_->previewResult();
    const QString site = explorer_->currentSite();
    bool reads = false;
    for (const auto& c : r.consumers) reads |= QString::fromStdString(c).endsWith(QLatin1Char('.') + site);
    if (!reads || QString::fromStdString(r.pair).section('.', 1, 1).toInt() != explorer_->currentLayer()) return;
    const double change = r.errorBefore > 0 ? (r.errorAfter - r.errorBefore) / r.errorBefore : 0.0;
    explorer_->setAfterRanges(explorer_->currentLayer(), site, r.minAfter, r.maxAfter,
                              tr("max |x| %1 → %2, error %3%4%")
                                  .arg(plot::formatValue(r.maxAbsBefore), plot::formatValue(r.maxAbsAfter))
                                  .arg(change >= 0 ? "+" : "")
                                  .arg(change * 100, 0, 'f', 0));
  });
  connect(tuning_, &TuningPanel::previewFailed, this, [this](const QString& m) {
    if (explorer_->afterOsPlus()) explorer_->setAfterStatus(m.section(QStringLiteral(" ("), 0, 0));
  });
  folderOpener_ = [](const QString& dir) { QDesktopServices::openUrl(QUrl::fromLocalFile(dir)); };
  connect(runsPanel_, &RunsPanel::runsChanged, this, &MainWindow::updateExportAction);
  connect(runsPanel_, &RunsPanel::statusMessage, statusBar_, [this](const QString& m) { statusBar_->showMessage(m, 5000); });
  connect(runsPanel_, &RunsPanel::compareRequested, this, [this](const std::vector<qint64>& ids) {
    compareView_->compare(runsPanel_->runsPath(), ids);
    showDockOf(compareView_);
  });
  connect(runsPanel_, &RunsPanel::paretoRequested, this, [this](qint64 id) {
    const QString err = paretoView_->showSearch(runsPanel_->runsPath(), id);
    if (!err.isEmpty()) statusBar_->showMessage(err, 8000);
    showDockOf(paretoView_);
  });
  // A clicked point selects its trial's run in the Runs dock (a filter hiding it is cleared).
  connect(paretoView_, &ParetoView::runSelected, this, [this](qint64 id) {
    runsPanel_->selectRuns({id});
    if (runsPanel_->selectedRuns() != std::vector<qint64>{id}) {
      runsPanel_->setFilterText(QString());
      runsPanel_->setKindFilter(QString());
      runsPanel_->selectRuns({id});
    }
  });
  connect(paretoView_, &ParetoView::statusMessage, statusBar_, [this](const QString& m) { statusBar_->showMessage(m, 5000); });
  // The Model dock keeps the full right edge, so the explorer under the tree can grow taller
  // than the Model dock's summary table would otherwise allow.
  setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);
  connect(explorer_, &OutlierExplorerPanel::statusMessage, statusBar_, [this](const QString& m) { statusBar_->showMessage(m, 5000); });
  resizeDocks({infoDock_}, {440}, Qt::Horizontal);

  setStatusBar(statusBar_);
  buildMenus();

  connect(loader_, &ModelLoader::started, this,
          [this](const QString& path) { statusBar_->beginJob(tr("Opening %1…").arg(modelDisplayName(path))); });
  connect(loader_, &ModelLoader::loaded, this, &MainWindow::onLoaded);
  connect(jobs_, &JobQueue::logLine, logPanel_, &LogPanel::append);
  connect(jobs_, &JobQueue::jobFinished, this, [this](int id, JobQueue::State) { onJobFinished(id); });
  connect(jobs_, &JobQueue::jobChanged, this, [this](int id) {
    const JobQueue::Job* j = jobs_->job(id);
    if (j && j->state == JobQueue::State::Running) {
      if (statusJob_ != id) statusBar_->beginJob(j->title);
      statusJob_ = id;
      statusBar_->setJobProgress(j->fraction);
    }
  });
  connect(jobsPanel_, &JobsPanel::analyseRequested, this,
          [this] { startAnalyse(jobsPanel_->analyseSamples(), jobsPanel_->analyseSeqlen()); });
  connect(jobsPanel_, &JobsPanel::quantizeRequested, this, [this] { startQuantize(); });
  connect(jobs_, &JobQueue::jobFinished, jobsPanel_->remoteJobs(), [this] { jobsPanel_->remoteJobs()->reload(); });
  connect(jobsPanel_->remoteJobs(), &RemoteJobsView::runsImported, runsPanel_, [this] { runsPanel_->refresh(); });
  connect(jobsPanel_->remoteJobs(), &RemoteJobsView::statusMessage, statusBar_,
          [this](const QString& m) { statusBar_->showMessage(m, 8000); });
  connect(loader_, &ModelLoader::failed, this, &MainWindow::onFailed);

  resize(1400, 900);
  restoreLayout();
}

MainWindow::~MainWindow() = default;

bool MainWindow::loading() const { return loader_->busy(); }

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* openFolder = file->addAction(tr("&Open Model Folder…"), this, &MainWindow::openFolderDialog);
  openFolder->setShortcut(QKeySequence::Open);
  openFolder->setObjectName(QStringLiteral("actionOpenFolder"));
  file->addAction(tr("Open &GGUF File…"), this, &MainWindow::openGgufDialog)
      ->setObjectName(QStringLiteral("actionOpenGguf"));
  QAction* openProject = file->addAction(tr("Open &Project…"), this, &MainWindow::openProjectDialog);
  openProject->setShortcut(QKeySequence(tr("Ctrl+Shift+O")));
  openProject->setObjectName(QStringLiteral("actionOpenProject"));
  recentMenu_ = file->addMenu(tr("Open &Recent"));
  recentMenu_->setObjectName(QStringLiteral("menuRecent"));
  file->addSeparator();
  exportAction_ = file->addAction(tr("&Export Quantized Run…"), this, &MainWindow::openExportDialog);
  exportAction_->setShortcut(QKeySequence(tr("Ctrl+E")));
  exportAction_->setObjectName(QStringLiteral("actionExport"));
  exportAction_->setToolTip(tr("Export a stored quantize run (HF folder, GPTQ, fake-quantized FP16, scales/shifts)"));
  exportAction_->setEnabled(false);
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence::Quit);
  quit->setMenuRole(QAction::QuitRole);

  QMenu* jobsMenu = menuBar()->addMenu(tr("&Jobs"));
  QAction* analyse = jobsMenu->addAction(tr("&Analyse"), this,
                                         [this] { startAnalyse(jobsPanel_->analyseSamples(), jobsPanel_->analyseSeqlen()); });
  analyse->setShortcut(QKeySequence(tr("Ctrl+Shift+A")));
  QAction* quantize = jobsMenu->addAction(tr("&Quantize && Evaluate"), this, [this] { startQuantize(); });
  quantize->setShortcut(QKeySequence(tr("Ctrl+Shift+Q")));
  QAction* search = jobsMenu->addAction(tr("Mixed-Precision &Search…"), this, &MainWindow::openSearchDialog);
  search->setObjectName(QStringLiteral("actionSearch"));
  jobsMenu->addAction(exportAction_);
  jobsMenu->addSeparator();
  jobsMenu->addAction(tr("&Cancel All"), jobs_, &JobQueue::cancelAll);

  viewMenu_ = menuBar()->addMenu(tr("&View"));
  viewMenu_->addAction(infoDock_->toggleViewAction());
  viewMenu_->addAction(logDock_->toggleViewAction());
  viewMenu_->addAction(explorerDock_->toggleViewAction());
  viewMenu_->addAction(jobsDock_->toggleViewAction());
  viewMenu_->addAction(runsDock_->toggleViewAction());
  viewMenu_->addAction(compareDock_->toggleViewAction());
  viewMenu_->addAction(paretoDock_->toggleViewAction());
  viewMenu_->addAction(tuningDock_->toggleViewAction());
  viewMenu_->addSeparator();
  themeGroup_ = new QActionGroup(this);
  for (Theme t : {Theme::Light, Theme::Dark}) {
    QAction* a = viewMenu_->addAction(t == Theme::Light ? tr("&Light Palette") : tr("&Dark Palette"));
    a->setCheckable(true);
    a->setData(themeName(t));
    themeGroup_->addAction(a);
    connect(a, &QAction::triggered, this, [this, t] { setTheme(t); });
  }

  QToolBar* bar = addToolBar(tr("Jobs"));
  bar->setObjectName(QStringLiteral("jobsToolBar"));
  bar->setToolButtonStyle(Qt::ToolButtonTextOnly);
  bar->addAction(analyse);
  bar->addAction(quantize);
  bar->addAction(exportAction_);
  viewMenu_->addAction(bar->toggleViewAction());

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About QuantScope"), this, &MainWindow::showAbout)->setMenuRole(QAction::AboutRole);

  rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
  recentMenu_->clear();
  for (const QString& path : recent_.paths()) {
    QAction* a = recentMenu_->addAction(path);
    connect(a, &QAction::triggered, this, [this, path] { openModel(path); });
  }
  if (recent_.paths().isEmpty()) {
    recentMenu_->addAction(tr("(none)"))->setEnabled(false);
    return;
  }
  recentMenu_->addSeparator();
  recentMenu_->addAction(tr("Clear List"), this, [this] {
    recent_.clear();
    QSettings settings;
    recent_.save(settings);
    rebuildRecentMenu();
  });
}

void MainWindow::restoreLayout() {
  QSettings settings;
  recent_ = RecentModels::load(settings);
  rebuildRecentMenu();
  if (settings.contains(kGeometryKey)) restoreGeometry(settings.value(kGeometryKey).toByteArray());
  if (settings.contains(kStateKey)) restoreState(settings.value(kStateKey).toByteArray(), kStateVersion);
  setTheme(themeFromName(settings.value(kThemeKey).toString()));
}

void MainWindow::saveLayout() {
  QSettings settings;
  settings.setValue(kGeometryKey, saveGeometry());
  settings.setValue(kStateKey, saveState(kStateVersion));
  recent_.save(settings);
}

void MainWindow::setTheme(Theme theme) {
  applyTheme(theme);
  explorer_->setDark(theme == Theme::Dark);
  compareView_->setDark(theme == Theme::Dark);
  paretoView_->setDark(theme == Theme::Dark);
  tuning_->setDark(theme == Theme::Dark);
  for (QAction* a : themeGroup_->actions()) a->setChecked(a->data().toString() == themeName(theme));
  QSettings().setValue(kThemeKey, themeName(theme));
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (!confirmCloseWithJobs()) {
    event->ignore();
    return;
  }
  saveLayout();
  event->accept();
}

bool MainWindow::confirmCloseWithJobs() {
  if (!jobs_->busy()) return true;
  if (errorDialogs_) {
    const JobQueue::Job* running = jobs_->job(jobs_->runningId());
    QMessageBox box(QMessageBox::Question, tr("Jobs are running"),
                    tr("A job is still running (%1) and %2 more are queued.")
                        .arg(running ? running->title : tr("none"))
                        .arg(jobs_->queuedCount()),
                    QMessageBox::NoButton, this);
    box.setInformativeText(tr("Quit and cancel them? A cancelled run is kept as 'cancelled' without results."));
    QPushButton* quit = box.addButton(tr("Cancel Jobs and Quit"), QMessageBox::DestructiveRole);
    box.addButton(tr("Keep Running"), QMessageBox::RejectRole);
    box.exec();
    if (box.clickedButton() != quit) return false;
  }
  jobs_->cancelAll();
  jobs_->waitForIdle(30000);
  return true;
}

int MainWindow::startAnalyse(int samples, int seqlen) {
  if (projectDir_.isEmpty()) {
    statusBar_->showMessage(tr("Open a project first (File › Open Project…)"), 5000);
    return 0;
  }
  qs::workflow::AnalyzeJobOptions o;
  o.projectDir = projectDir_.toStdString();
  o.samples = samples;
  o.seqlen = seqlen;
  jobsDock_->show();
  jobsDock_->raise();
  const int id = jobs_->enqueue(tr("Analyse %1 × %2").arg(samples).arg(seqlen), [o](jobs::Progress& p) {
    return QString::fromStdString(qs::workflow::runAnalyzeJob(o, p).summary);
  });
  analyseJobs_.insert(id);
  return id;
}

int MainWindow::startQuantize() {
  if (projectDir_.isEmpty()) {
    statusBar_->showMessage(tr("Open a project first (File › Open Project…)"), 5000);
    return 0;
  }
  if (!tuning_->error().isEmpty()) {
    showDockOf(tuning_);
    statusBar_->showMessage(tr("The tuning config is invalid: %1").arg(tuning_->error()), 8000);
    return 0;
  }
  qs::workflow::QuantizeJobOptions o;
  o.projectDir = projectDir_.toStdString();
  o.configYaml = quantizeConfigYaml().toStdString();
  o.configName = "tuning panel";
  jobsDock_->show();
  jobsDock_->raise();
  if (const QString profile = jobsPanel_->runOnProfile(); !profile.isEmpty()) {
    // A one-task job array on the cluster; its run is imported when it ends (Slurm jobs below).
    qs::workflow::SweepConfig c{tuning_->configLabel().toStdString(), "tuning panel", o.configYaml};
    qs::workflow::ClusterOptions cluster;
    cluster.backend = "slurm";
    cluster.profile = profile.toStdString();
    const std::string dir = o.projectDir;
    return jobs_->enqueue(tr("Submit to Slurm (%1): %2").arg(profile, tuning_->configLabel()), [dir, c, cluster](jobs::Progress&) {
      const auto g = qs::workflow::submitSweep(dir, {c}, cluster);
      return QStringLiteral("submitted as Slurm job %1 (%2); its run is imported when it ends")
          .arg(QString::fromStdString(g.schedulerId), QString::fromStdString(g.group));
    });
  }
  return jobs_->enqueue(tr("Quantize & evaluate: %1").arg(tuning_->configLabel()), [o](jobs::Progress& p) {
    return QString::fromStdString(qs::workflow::runQuantizeJob(o, p).summary);
  });
}

int MainWindow::startSearch(const qs::workflow::SearchJobOptions& options) {
  if (projectDir_.isEmpty()) {
    statusBar_->showMessage(tr("Open a project first (File › Open Project…)"), 5000);
    return 0;
  }
  qs::workflow::SearchJobOptions o = options;
  o.projectDir = projectDir_.toStdString();
  jobsDock_->show();
  jobsDock_->raise();
  const QString where = o.cluster.backend == "slurm" ? tr(" on Slurm (%1)").arg(QString::fromStdString(o.cluster.profile))
                                                     : QString();
  return jobs_->enqueue(tr("Search %1 trials%2: %3").arg(o.trials).arg(where, QFileInfo(QString::fromStdString(o.spaceFile)).fileName()),
                        [o](jobs::Progress& p) { return QString::fromStdString(qs::workflow::runSearchJob(o, p).summary); });
}

void MainWindow::openSearchDialog() {
  if (projectDir_.isEmpty()) {
    statusBar_->showMessage(tr("Open a project first (File › Open Project…)"), 5000);
    return;
  }
  SearchDialog dialog(projectDir_, slurmProfiles_, this);
  if (dialog.exec() == QDialog::Accepted) startSearch(dialog.options());
}

int MainWindow::startExport(const qs::workflow::ExportJobOptions& options) {
  if (projectDir_.isEmpty()) {
    statusBar_->showMessage(tr("Open a project first (File › Open Project…)"), 5000);
    return 0;
  }
  qs::workflow::ExportJobOptions o = options;
  o.projectDir = projectDir_.toStdString();
  auto result = std::make_shared<qs::workflow::ExportJobResult>();
  jobsDock_->show();
  jobsDock_->raise();
  const int id = jobs_->enqueue(tr("Export run %1 as %2").arg(o.runId).arg(QString::fromStdString(o.format)),
                                [o, result](jobs::Progress& p) {
                                  *result = qs::workflow::runExportJob(o, p);
                                  return QString::fromStdString(result->summary());
                                });
  exportJobs_[id] = result;
  return id;
}

void MainWindow::openExportDialog() {
  if (projectDir_.isEmpty()) {
    statusBar_->showMessage(tr("Open a project first (File › Open Project…)"), 5000);
    return;
  }
  const std::vector<qint64> selected = runsPanel_->selectedRuns();
  ExportDialog dialog(projectDir_, selected.empty() ? 0 : selected.front(), this);
  if (dialog.exec() == QDialog::Accepted) startExport(dialog.options());
}

void MainWindow::updateExportAction() {
  bool any = false;
  if (!projectDir_.isEmpty()) {
    try {
      any = !qs::workflow::exportableRuns(projectDir_.toStdString()).empty();
    } catch (const std::exception&) {
    }
  }
  exportAction_->setEnabled(any);
}

QString MainWindow::quantizeConfigYaml() const { return tuning_->quantizeSection(); }

QDockWidget* MainWindow::showDockOf(QWidget* panel) {
  for (QDockWidget* d : findChildren<QDockWidget*>())
    if (d->widget() == panel) {
      d->show();
      d->raise();
      return d;
    }
  return nullptr;
}

void MainWindow::onJobFinished(int id) {
  const JobQueue::Job* j = jobs_->job(id);
  if (!j) return;
  if (!jobs_->busy()) {
    statusBar_->endJob(tr("%1: %2").arg(j->title, stateName(j->state)));
    statusJob_ = 0;
  }
  runsPanel_->refresh();
  updateExportAction();
  auto ex = exportJobs_.find(id);
  if (ex != exportJobs_.end()) {
    const auto result = ex->second;
    exportJobs_.erase(ex);
    if (j->state == JobQueue::State::Finished) {
      const QString dir = QString::fromStdString(result->dir);
      lastExportDir_ = dir;
      logPanel_->append(QStringLiteral("info"), tr("Export written to %1 (%2 files, %3)")
                                                    .arg(dir)
                                                    .arg(result->files.size())
                                                    .arg(QString::fromStdString(qs::workflow::formatFileSize(result->totalBytes))));
      for (const auto& n : result->notes) logPanel_->append(QStringLiteral("warning"), QString::fromStdString(n));
      statusBar_->showMessage(tr("Exported to %1").arg(dir), 10000);
      if (errorDialogs_) {
        // The load-back check says whether the file holds what QuantScope evaluated.
        const QString parity = QString::fromStdString(result->parity.describe());
        QMessageBox box(QMessageBox::Information, tr("Export finished"),
                        tr("The export is written to %1.\n\n%2").arg(dir, parity), QMessageBox::NoButton, this);
        QPushButton* open = box.addButton(tr("Open Folder"), QMessageBox::AcceptRole);
        box.addButton(QMessageBox::Close);
        box.exec();
        // A GGUF export is one file: its folder is opened.
        if (box.clickedButton() == open) folderOpener_(QFileInfo(dir).isDir() ? dir : QFileInfo(dir).absolutePath());
      }
      Q_EMIT exportDone(dir);
    }
  }
  // A new analysis run opens in the explorer.
  if (j->state == JobQueue::State::Finished && analyseJobs_.count(id) && !projectDir_.isEmpty())
    explorer_->openProject(projectDir_);
  Q_EMIT jobDone(id);
}

void MainWindow::openModel(const QString& path) {
  loader_->open(normaliseModelPath(path));
}

void MainWindow::onLoaded(std::shared_ptr<const qs::model::ModelSummary> summary, qint64 elapsedMs) {
  summary_ = std::move(summary);
  const QString path = QString::fromStdString(summary_->path);
  treePanel_->setSummary(summary_);
  infoPanel_->setSummary(summary_.get());
  central_->setCurrentWidget(treePanel_);
  treePanel_->view()->setFocus();
  const QString name = modelDisplayName(path);
  setWindowTitle(QStringLiteral("QuantScope — %1").arg(name));
  recent_.add(path);
  {
    QSettings settings;
    recent_.save(settings);
  }
  rebuildRecentMenu();
  statusBar_->endJob(tr("Opened %1: %2 parameters, %3 in %4 ms")
                         .arg(name,
                              QString::fromStdString(qs::model::formatCount(summary_->totalParams)),
                              QString::fromStdString(qs::model::formatBytes(summary_->totalBytes)))
                         .arg(elapsedMs));
  Q_EMIT modelLoaded(path);
}

void MainWindow::onFailed(const QString& path, const QString& message) {
  statusBar_->endJob(tr("Could not open %1").arg(modelDisplayName(path)));
  if (errorDialogs_) {
    QMessageBox box(QMessageBox::Warning, tr("Could not open model"), tr("QuantScope could not open this model."),
                    QMessageBox::Ok, this);
    box.setInformativeText(message);
    box.exec();
  }
  Q_EMIT modelLoadFailed(path, message);
}

void MainWindow::openFolderDialog() {
  const QString start = recent_.paths().isEmpty() ? QString() : QFileInfo(recent_.paths().first()).absolutePath();
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Model Folder"), start);
  if (!dir.isEmpty()) openModel(dir);
}

void MainWindow::openGgufDialog() {
  const QString start = recent_.paths().isEmpty() ? QString() : QFileInfo(recent_.paths().first()).absolutePath();
  const QString file =
      QFileDialog::getOpenFileName(this, tr("Open GGUF File"), start, tr("GGUF models (*.gguf);;All files (*)"));
  if (!file.isEmpty()) openModel(file);
}

QString MainWindow::openProject(const QString& dir) {
  const QString error = explorer_->openProject(dir);
  if (!explorerDock_->isVisible()) {
    explorerDock_->show();
    // Plots need the room; once the dock is laid out, give it most of the height.
    QTimer::singleShot(0, this, [this] { resizeDocks({explorerDock_}, {height() * 3 / 5}, Qt::Vertical); });
  }
  explorerDock_->raise();
  if (!error.isEmpty()) {
    statusBar_->showMessage(tr("Could not open project %1").arg(dir), 5000);
    if (errorDialogs_) {
      QMessageBox box(QMessageBox::Warning, tr("Could not open project"), tr("QuantScope could not open this project."),
                      QMessageBox::Ok, this);
      box.setInformativeText(error);
      box.exec();
    }
    return error;
  }
  projectDir_ = explorer_->projectDir();
  jobsPanel_->setProjectOpen(true);
  jobsPanel_->remoteJobs()->setProject(projectDir_);
  runsPanel_->openProject(projectDir_);
  updateExportAction();
  if (!jobsDock_->isVisible()) jobsDock_->show();
  if (!runsDock_->isVisible()) runsDock_->show();
  // The project's model fills the model tree when nothing is open yet, and is what the Tuning
  // panel's live preview runs on (with the project's first dataset).
  try {
    const auto project = qs::runs::Project::open(dir.toStdString());
    const QString model = QString::fromStdString(project.modelPath());
    if (!summary_ && !loading() && QFileInfo::exists(model)) openModel(model);
    const std::string dataset = qs::workflow::projectDataset(project);
    tuning_->setPreviewSource(model, QString::fromStdString(dataset), QString::fromStdString(project.dataDir()));
    tuning_->setResourceProject(dir);
    QStringList profiles;
    for (const auto& [name, profile] : project.config().slurm) profiles << QString::fromStdString(name);
    jobsPanel_->setSlurmProfiles(profiles);
    slurmProfiles_ = profiles;
  } catch (const std::exception&) {
  }
  return QString();
}

void MainWindow::openProjectDialog() {
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Project"), explorer_->projectDir());
  if (!dir.isEmpty()) openProject(dir);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  const QList<QUrl> urls = event->mimeData()->urls();
  if (urls.size() == 1 && urls.first().isLocalFile() && isOpenableModelPath(urls.first().toLocalFile()))
    event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
  const QList<QUrl> urls = event->mimeData()->urls();
  if (urls.isEmpty() || !urls.first().isLocalFile()) return;
  openModel(urls.first().toLocalFile());
  event->acceptProposedAction();
}

void MainWindow::showAbout() {
  QMessageBox::about(
      this, tr("About QuantScope"),
      tr("<h3>QuantScope %1</h3>"
         "<p>A workbench for post-training quantization of large language models: find activation "
         "outliers, tune outlier suppression and weight quantization (OS+, QuantEase, GPTQ, "
         "SmoothQuant, block formats), run calibration and evaluation, and compare runs.</p>"
         "<p>Qt %2 · LibTorch CPU</p>")
          .arg(QApplication::applicationVersion(), QString::fromLatin1(qVersion())));
}

}  // namespace qs::ui
