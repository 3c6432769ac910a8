// The remote (Slurm) part of the Jobs dock: one row per job of the project's ledger, grouped by
// sweep (the group row shows the array's progress, "3/12 ended, 2 running"), with state, node,
// elapsed, the run it became and the reason a job failed. Sync asks Slurm and imports what has
// ended (core/workflow/cluster_jobs.h syncJobs, off the GUI thread; a timer repeats it while jobs
// are pending or running); Cancel runs scancel on the selected jobs or groups; Open Log shows a
// job's log. No LibTorch header (ui/ rule).
#pragma once
#include <QString>
#include <QStringList>
#include <QWidget>

#include <atomic>
#include <vector>

#include "core/runs/remote_jobs.h"

class QComboBox;
class QLabel;
class QPushButton;
class QTimer;
class QTreeWidget;

namespace qs::ui {

// "Run on": This machine (data ""), then "Slurm (PROFILE)" (data PROFILE) for each project.yaml
// profile, or a disabled "Slurm (no profile in project.yaml)" when there is none.
void fillRunOnCombo(QComboBox* combo, const QStringList& profiles);

class RemoteJobsView : public QWidget {
  Q_OBJECT

 public:
  explicit RemoteJobsView(QWidget* parent = nullptr);
  ~RemoteJobsView() override;

  // Shows the project's jobs ("" = none open) and starts polling when some are unfinished.
  void setProject(const QString& projectDir);
  // Re-reads the ledger (cheap; no scheduler call).
  void reload();
  // Asks Slurm and imports, in a worker thread; `runsImported` follows when runs were added.
  void syncNow();
  bool syncing() const { return syncing_.load(); }
  // Milliseconds between automatic syncs while jobs are unfinished (default 10 s).
  void setPollInterval(int ms);

  QTreeWidget* tree() const { return tree_; }
  QPushButton* syncButton() const { return sync_; }
  QPushButton* cancelButton() const { return cancel_; }
  QPushButton* logButton() const { return log_; }
  // The log text of a job (what Open Log shows); "" when it has none yet.
  QString logText(qint64 jobId) const;

 Q_SIGNALS:
  void runsImported();
  void statusMessage(const QString& message);

 private Q_SLOTS:
  void onSyncDone(int imported, int failed, const QString& error);

 private:
  void cancelSelected();
  void openLog();
  std::vector<runs::RemoteJob> selectedJobs() const;

  QString project_;
  QTreeWidget* tree_;
  QLabel* summary_;
  QPushButton* sync_;
  QPushButton* cancel_;
  QPushButton* log_;
  QTimer* timer_;
  std::atomic<bool> syncing_{false};
  std::vector<runs::RemoteJob> jobs_;
};

}  // namespace qs::ui
