// The Export dialog: pick a stored quantize run of the open project, a format (those of `qscope
// export`), a destination folder and the dtype/shard/GPTQ options; before anything is written it
// shows the files the export will hold and their sizes (core/workflow/export_job.h planExportJob,
// computed off the UI thread, newest request wins). An existing destination is refused unless
// "Replace" is ticked (asked on Export); the folder is then replaced only once the new one is
// complete. Accepting returns the options; the main window runs them as an Export job.
#pragma once
#include <QDialog>

#include <memory>

#include "core/workflow/export_job.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTreeWidget;
template <typename T>
class QFutureWatcher;

namespace qs::ui {

class ExportDialog : public QDialog {
  Q_OBJECT

 public:
  // Lists projectDir's exportable runs; preselects preferredRun when it is one of them.
  ExportDialog(const QString& projectDir, qint64 preferredRun = 0, QWidget* parent = nullptr);
  ~ExportDialog() override;

  workflow::ExportJobOptions options() const;
  // Programmatic control (tests, the screenshot tour).
  bool selectRun(qint64 id);
  bool selectFormat(const QString& format);
  void setDestination(const QString& dir);
  void setReplaceExisting(bool on);
  int runCount() const;

  // The latest plan (valid when planError() is empty and !planning()).
  const workflow::ExportJobResult& plan() const { return *plan_; }
  QString planError() const { return planError_; }
  bool planning() const { return planning_; }
  // The Export button's check without the question: "" or why it cannot export now.
  QString exportBlocker() const;

 Q_SIGNALS:
  void planReady();

 protected:
  void accept() override;

 private:
  void onRunChanged();
  void schedulePlan();
  void startPlan();
  void showPlan();
  void updateButtons();
  QString defaultDestination() const;

  QString projectDir_;
  std::vector<workflow::ExportableRun> runs_;
  QComboBox* run_;
  QComboBox* format_;
  QLabel* formatHelp_;
  QLineEdit* dest_;
  QPushButton* browse_;
  QComboBox* dtype_;
  QSpinBox* shardMiB_;
  QComboBox* gptqFormat_;
  QComboBox* ggufType_;
  QCheckBox* allowPadding_;
  QCheckBox* replace_;
  QTreeWidget* files_;
  QLabel* summary_;
  QPushButton* exportButton_;
  struct PlanOutcome;
  QFutureWatcher<std::shared_ptr<PlanOutcome>>* watcher_;
  class QTimer* debounce_;
  std::unique_ptr<workflow::ExportJobResult> plan_;
  QString planError_;
  QString lastAutoDest_;
  quint64 generation_ = 0;
  bool planning_ = false;
};

}  // namespace qs::ui
