// The Search dialog (Jobs › Mixed-Precision Search…): a search space file, the budget, objectives,
// algorithm, seed and population, and where it runs — this machine, or a Slurm profile of
// project.yaml (each NSGA-II generation's new trials as one job array). Accepting returns the
// options; the main window runs them as a Search job (core/workflow/search_job.h, as `qscope
// search`). No LibTorch header (ui/ rule).
#pragma once
#include <QDialog>

#include "core/workflow/search_job.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QSpinBox;

namespace qs::ui {

class SearchDialog : public QDialog {
  Q_OBJECT

 public:
  // `profiles`: the project's Slurm profiles (project.yaml slurm:).
  SearchDialog(const QString& projectDir, const QStringList& profiles, QWidget* parent = nullptr);

  workflow::SearchJobOptions options() const;
  void setSpaceFile(const QString& path);
  // "" or why the options cannot run (no space file, bad objectives).
  QString problem() const;

  QLineEdit* spaceEdit() const { return space_; }
  QSpinBox* trialsSpin() const { return trials_; }
  QComboBox* runOnCombo() const { return runOn_; }

 protected:
  void accept() override;

 private:
  void browse();

  QString project_;
  QLineEdit* space_;
  QSpinBox* trials_;
  QLineEdit* objectives_;
  QComboBox* algo_;
  QSpinBox* seed_;
  QSpinBox* population_;
  QComboBox* runOn_;
  QLabel* error_;
};

}  // namespace qs::ui
