// QuantScope's main window: menus (File, Jobs, View, Help), the model tree as central widget, the
// "Model", "Log" and "Jobs" docks, the status bar, drag and drop of model folders/.gguf files, and
// the persisted layout (QSettings). Owns the ModelLoader that opens models off the UI thread and
// the JobQueue that runs project jobs (analyse, quantize & evaluate) on a worker thread.
#pragma once
#include <QMainWindow>

#include <functional>
#include <map>
#include <memory>
#include <set>

#include "core/model/model_summary.h"
#include "ui/recent_models.h"
#include "ui/theme.h"

namespace qs::workflow {
struct ExportJobOptions;
struct SearchJobOptions;
struct ExportJobResult;
}  // namespace qs::workflow

class QAction;
class QActionGroup;
class QDockWidget;
class QMenu;
class QStackedWidget;

namespace qs::ui {

class CompareView;
class ParetoView;
class JobQueue;
class JobsPanel;
class RunsPanel;
class TuningPanel;
class LogPanel;
class ModelInfoPanel;
class ModelLoader;
class ModelTreePanel;
class OutlierExplorerPanel;
class StatusBar;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  // Starts loading on a worker thread; the window stays responsive.
  void openModel(const QString& path);
  // Opens a project folder in the Outlier Explorer (and its model, when none is open yet).
  // Returns "" or the error message (shown in a dialog when error dialogs are enabled).
  QString openProject(const QString& dir);
  // false: load errors are reported only through modelLoadFailed (screenshot mode, tests).
  void setErrorDialogsEnabled(bool enabled) { errorDialogs_ = enabled; }
  void setTheme(Theme theme);

  const qs::model::ModelSummary* summary() const { return summary_.get(); }
  ModelTreePanel* treePanel() const { return treePanel_; }
  StatusBar* statusBarWidget() const { return statusBar_; }
  OutlierExplorerPanel* explorerPanel() const { return explorer_; }
  bool loading() const;
  QString projectDir() const { return projectDir_; }
  JobQueue* jobQueue() const { return jobs_; }
  JobsPanel* jobsPanel() const { return jobsPanel_; }
  LogPanel* logPanel() const { return logPanel_; }
  RunsPanel* runsPanel() const { return runsPanel_; }
  CompareView* compareView() const { return compareView_; }
  ParetoView* paretoView() const { return paretoView_; }
  TuningPanel* tuningPanel() const { return tuning_; }
  // Shows the dock that holds `panel` (jobs, runs, compare, explorer, tuning), raises it and
  // returns it (nullptr when no dock holds it).
  QDockWidget* showDockOf(QWidget* panel);

  // Queue the project jobs (a project must be open); return the job id, 0 when none was queued.
  int startAnalyse(int samples, int seqlen);
  int startQuantize();
  // Queues an Export job (core/workflow/export_job.h); 0 when no project is open.
  int startExport(const qs::workflow::ExportJobOptions& options);
  // Queues a Search job (core/workflow/search_job.h: here or on Slurm); 0 when no project is open.
  int startSearch(const qs::workflow::SearchJobOptions& options);
  // Jobs › Mixed-Precision Search…: the Search dialog; accepted = a Search job is queued.
  void openSearchDialog();
  // File › Export…: the Export dialog for the open project; accepted = an Export job is queued.
  void openExportDialog();
  // Enabled while the open project holds a finished quantize run with its artifact.
  QAction* exportAction() const { return exportAction_; }
  // Re-reads whether the open project has an exportable run (after jobs and run deletions).
  void updateExportAction();
  // What "Open Folder" does after an export (default: QDesktopServices); tests replace it.
  void setFolderOpener(std::function<void(const QString&)> opener) { folderOpener_ = std::move(opener); }
  // The folder of the last successful export ("" when none).
  QString lastExportDir() const { return lastExportDir_; }
  // The quantize config the "Quantize & evaluate" job uses (the Tuning panel's document).
  QString quantizeConfigYaml() const;

 Q_SIGNALS:
  void modelLoaded(const QString& path);
  void modelLoadFailed(const QString& path, const QString& message);
  // A job ended (finished, failed or cancelled) and the views that show its runs were refreshed.
  void jobDone(int id);
  // An Export job wrote `dir`.
  void exportDone(const QString& dir);

 protected:
  void closeEvent(QCloseEvent* event) override;
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;

 private:
  void buildMenus();
  void rebuildRecentMenu();
  void restoreLayout();
  void saveLayout();
  void onLoaded(std::shared_ptr<const qs::model::ModelSummary> summary, qint64 elapsedMs);
  void onFailed(const QString& path, const QString& message);
  void openFolderDialog();
  void openGgufDialog();
  void openProjectDialog();
  void showAbout();
  void onJobFinished(int id);
  // Asks before closing while a job runs or waits; true = close (jobs cancelled).
  bool confirmCloseWithJobs();

  ModelLoader* loader_;
  QStackedWidget* central_;
  ModelTreePanel* treePanel_;
  ModelInfoPanel* infoPanel_;
  LogPanel* logPanel_;
  QDockWidget* infoDock_;
  QDockWidget* logDock_;
  OutlierExplorerPanel* explorer_;
  QDockWidget* explorerDock_;
  StatusBar* statusBar_;
  JobQueue* jobs_;
  JobsPanel* jobsPanel_;
  QDockWidget* jobsDock_;
  RunsPanel* runsPanel_;
  QDockWidget* runsDock_;
  CompareView* compareView_;
  ParetoView* paretoView_ = nullptr;
  QDockWidget* paretoDock_ = nullptr;
  QDockWidget* compareDock_;
  TuningPanel* tuning_;
  QDockWidget* tuningDock_;
  QString projectDir_;
  QStringList slurmProfiles_;  // the open project's Slurm profiles (project.yaml slurm:)
  std::set<int> analyseJobs_;
  std::map<int, std::shared_ptr<qs::workflow::ExportJobResult>> exportJobs_;
  QAction* exportAction_ = nullptr;
  std::function<void(const QString&)> folderOpener_;
  QString lastExportDir_;
  int statusJob_ = 0;  // the job the status bar shows
  QMenu* viewMenu_ = nullptr;
  QMenu* recentMenu_ = nullptr;
  QActionGroup* themeGroup_ = nullptr;
  RecentModels recent_;
  std::shared_ptr<const qs::model::ModelSummary> summary_;
  bool errorDialogs_ = true;
};

}  // namespace qs::ui
