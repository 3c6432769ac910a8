// The "Runs" dock: every run of the open project from its runs.sqlite, newest first, sortable
// by any column and filtered by a text box (any column) and a kind. The Name column is editable
// (renames the run in the store); Delete asks first, then removes the run's rows and export
// files; Compare opens the Compare view for 2–4 selected runs; Pareto opens the Pareto view of the
// selected search run (summary or trial). refresh() re-reads the store (the
// main window calls it when a job ends).
#pragma once
#include <QWidget>

#include <vector>

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSortFilterProxyModel;
class QStandardItem;
class QStandardItemModel;
class QTableView;

namespace qs::ui {

class RunsPanel : public QWidget {
  Q_OBJECT

 public:
  enum Column { ColId = 0, ColName, ColKind, ColStatus, ColCreated, ColDuration, ColDevice, ColCount };

  explicit RunsPanel(QWidget* parent = nullptr);

  // "" or the error message.
  QString openProject(const QString& dir);
  void refresh();
  QString runsPath() const { return runsPath_; }

  // Selection by run id (tests, screenshots); ids not in the table are ignored.
  void selectRuns(const std::vector<qint64>& ids);
  std::vector<qint64> selectedRuns() const;
  // Renames through the store, as an edit of the Name cell does; "" or the error.
  QString renameRun(qint64 id, const QString& name);
  // Deletes after asking (unless confirmations are off); "" or the error / "kept".
  QString deleteSelected();
  void setConfirmations(bool on) { confirm_ = on; }
  void setFilterText(const QString& text);
  void setKindFilter(const QString& kind);  // "" = all kinds

  QTableView* table() const { return table_; }
  int visibleRows() const;
  QPushButton* compareButton() const { return compareButton_; }
  QPushButton* paretoButton() const { return paretoButton_; }

 Q_SIGNALS:
  void compareRequested(const std::vector<qint64>& ids);
  void paretoRequested(qint64 id);
  void statusMessage(const QString& message);
  void runsChanged();

 private:
  void onItemChanged(QStandardItem* item);
  void updateButtons();

  QLineEdit* filter_;
  QComboBox* kind_;
  QTableView* table_;
  QStandardItemModel* model_;
  QSortFilterProxyModel* proxy_;
  QPushButton* compareButton_;
  QPushButton* paretoButton_;
  QPushButton* deleteButton_;
  QPushButton* refreshButton_;
  QLabel* info_;
  QString runsPath_;
  bool confirm_ = true;
  bool filling_ = false;
};

}  // namespace qs::ui
