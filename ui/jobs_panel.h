// The "Jobs" dock: buttons that start the project jobs (Analyse with its sample count and
// length; Quantize & evaluate with the Tuning panel's config) and one row per job, newest first:
// title, state, a progress bar, the job's stage ("quantize: block 3/5"), elapsed time and ETA, a Cancel button while it is queued or running, and the summary or the core's
// error message when it ends. The queue itself is JobQueue; this widget only shows it.
#pragma once
#include <QWidget>

#include <map>

#include "ui/job_queue.h"

class QComboBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QVBoxLayout;

namespace qs::ui {

class RemoteJobsView;

class JobsPanel : public QWidget {
  Q_OBJECT

 public:
  explicit JobsPanel(JobQueue* queue, QWidget* parent = nullptr);

  // Enables the job buttons (a project must be open).
  void setProjectOpen(bool open);
  int analyseSamples() const;
  int analyseSeqlen() const;
  QPushButton* analyseButton() const { return analyseButton_; }
  QPushButton* quantizeButton() const { return quantizeButton_; }
  QSpinBox* samplesSpin() const { return samples_; }
  QSpinBox* seqlenSpin() const { return seqlen_; }
  // "Run on": this machine, or a Slurm profile of project.yaml (Quantize & Evaluate submits a job).
  void setSlurmProfiles(const QStringList& profiles);
  QString runOnProfile() const;  // "" = this machine
  QComboBox* runOnCombo() const { return runOn_; }
  // The project's Slurm jobs, under the local ones.
  RemoteJobsView* remoteJobs() const { return remote_; }
  // The widgets of one job's row (tests and screenshots).
  QProgressBar* progressBar(int jobId) const;
  QPushButton* cancelButton(int jobId) const;
  QLabel* resultLabel(int jobId) const;
  QLabel* stageLabel(int jobId) const;

 Q_SIGNALS:
  void analyseRequested();
  void quantizeRequested();

 private:
  struct Row {
    QWidget* box;
    QLabel* title;
    QLabel* state;
    QProgressBar* bar;
    QLabel* stage;
    QLabel* time;
    QLabel* result;
    QPushButton* cancel;
  };
  void addRow(int id);
  void updateRow(int id);

  JobQueue* queue_;
  QPushButton* analyseButton_;
  QPushButton* quantizeButton_;
  QSpinBox* samples_;
  QSpinBox* seqlen_;
  QComboBox* runOn_;
  RemoteJobsView* remote_;
  QLabel* empty_;
  QVBoxLayout* rows_;
  std::map<int, Row> rowOf_;
};

}  // namespace qs::ui
