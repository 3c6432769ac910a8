// RunsPanel: see runs_panel.h.
#include "ui/runs_panel.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QStandardItemModel>
#include <QTableView>
#include <QVBoxLayout>

#include <cmath>

#include "core/runs/project.h"
#include "core/runs/run_store.h"

namespace qs::ui {

namespace {

// Matches the text box against every column and the kind combo against the Kind column.
class RunsFilter : public QSortFilterProxyModel {
 public:
  using QSortFilterProxyModel::QSortFilterProxyModel;
  void setKind(const QString& k) {
    kind_ = k;
    invalidateFilter();
  }

 protected:
  bool filterAcceptsRow(int row, const QModelIndex& parent) const override {
    const QAbstractItemModel* m = sourceModel();
    if (!kind_.isEmpty() && m->index(row, RunsPanel::ColKind, parent).data().toString() != kind_) return false;
    const QString text = filterRegularExpression().pattern();
    if (text.isEmpty()) return true;
    for (int c = 0; c < m->columnCount(parent); ++c)
      if (m->index(row, c, parent).data().toString().contains(text, Qt::CaseInsensitive)) return true;
    return false;
  }

 private:
  QString kind_;
};

QString durationText(double s) {
  if (std::isnan(s)) return QString();
  if (s < 60) return QStringLiteral("%1 s").arg(s, 0, 'f', 1);
  return QStringLiteral("%1 min").arg(s / 60, 0, 'f', 1);
}

}  // namespace

RunsPanel::RunsPanel(QWidget* parent)
    : QWidget(parent),
      filter_(new QLineEdit(this)),
      kind_(new QComboBox(this)),
      table_(new QTableView(this)),
      model_(new QStandardItemModel(0, ColCount, this)),
      proxy_(new RunsFilter(this)),
      compareButton_(new QPushButton(tr("Compare"), this)),
      paretoButton_(new QPushButton(tr("Pareto"), this)),
      deleteButton_(new QPushButton(tr("Delete…"), this)),
      refreshButton_(new QPushButton(tr("Refresh"), this)),
      info_(new QLabel(this)) {
  setObjectName(QStringLiteral("runsPanel"));
  filter_->setObjectName(QStringLiteral("runsFilter"));
  filter_->setPlaceholderText(tr("Filter runs (any column)"));
  filter_->setClearButtonEnabled(true);
  kind_->setObjectName(QStringLiteral("runsKind"));
  kind_->addItem(tr("all kinds"), QString());
  for (const char* k : {"analysis", "quantize", "eval", "search", "train"}) kind_->addItem(QString::fromLatin1(k), QString::fromLatin1(k));
  compareButton_->setObjectName(QStringLiteral("compareButton"));
  compareButton_->setToolTip(tr("Compare 2–4 selected runs: config diff, metrics with deltas, per-layer series"));
  paretoButton_->setObjectName(QStringLiteral("paretoButton"));
  paretoButton_->setToolTip(tr("Pareto front of the selected search run: click a point to select its trial, export its config"));
  deleteButton_->setObjectName(QStringLiteral("deleteRunsButton"));
  deleteButton_->setToolTip(tr("Delete the selected runs with their results and export files"));

  model_->setHorizontalHeaderLabels({tr("ID"), tr("Name"), tr("Kind"), tr("Status"), tr("Created (UTC)"), tr("Duration"), tr("Device")});
  proxy_->setSourceModel(model_);
  proxy_->setSortRole(Qt::UserRole);
  table_->setObjectName(QStringLiteral("runsTable"));
  table_->setModel(proxy_);
  table_->setSortingEnabled(true);
  table_->sortByColumn(ColId, Qt::DescendingOrder);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  table_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setAlternatingRowColors(true);

  auto* top = new QHBoxLayout;
  top->addWidget(filter_, 1);
  top->addWidget(kind_);
  top->addWidget(refreshButton_);
  auto* bottom = new QHBoxLayout;
  bottom->addWidget(info_, 1);
  bottom->addWidget(deleteButton_);
  bottom->addWidget(paretoButton_);
  bottom->addWidget(compareButton_);
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(4, 4, 4, 4);
  v->addLayout(top);
  v->addWidget(table_, 1);
  v->addLayout(bottom);

  connect(filter_, &QLineEdit::textChanged, this, [this](const QString& t) {
    proxy_->setFilterRegularExpression(QRegularExpression(t));  // the pattern is read as plain text above
    updateButtons();
  });
  connect(kind_, qOverload<int>(&QComboBox::currentIndexChanged), this, [this](int i) {
    static_cast<RunsFilter*>(proxy_)->setKind(kind_->itemData(i).toString());
    updateButtons();
  });
  connect(model_, &QStandardItemModel::itemChanged, this, &RunsPanel::onItemChanged);
  connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &RunsPanel::updateButtons);
  connect(compareButton_, &QPushButton::clicked, this, [this] { Q_EMIT compareRequested(selectedRuns()); });
  connect(paretoButton_, &QPushButton::clicked, this, [this] {
    const auto ids = selectedRuns();
    if (ids.size() == 1) Q_EMIT paretoRequested(ids[0]);
  });
  connect(deleteButton_, &QPushButton::clicked, this, [this] { deleteSelected(); });
  connect(refreshButton_, &QPushButton::clicked, this, &RunsPanel::refresh);
  updateButtons();
}

QString RunsPanel::openProject(const QString& dir) {
  try {
    runsPath_ = QString::fromStdString(runs::Project::open(dir.toStdString()).runsPath());
  } catch (const std::exception& e) {
    runsPath_.clear();
    model_->removeRows(0, model_->rowCount());
    info_->setText(QString::fromUtf8(e.what()));
    return QString::fromUtf8(e.what());
  }
  refresh();
  return QString();
}

void RunsPanel::refresh() {
  if (runsPath_.isEmpty()) return;
  const std::vector<qint64> keep = selectedRuns();
  std::vector<runs::RunInfo> list;
  try {
    runs::RunStore store(runsPath_.toStdString());
    list = store.listRuns();
  } catch (const std::exception& e) {
    info_->setText(QString::fromUtf8(e.what()));
    return;
  }
  filling_ = true;
  model_->removeRows(0, model_->rowCount());
  for (const auto& r : list) {
    QList<QStandardItem*> row;
    auto cell = [&](const QString& text, const QVariant& sortKey) {
      auto* it = new QStandardItem(text);
      it->setData(sortKey, Qt::UserRole);
      it->setData(QVariant::fromValue<qlonglong>(r.id), Qt::UserRole + 1);
      it->setEditable(false);
      row.append(it);
      return it;
    };
    cell(QString::number(r.id), QVariant::fromValue<qlonglong>(r.id))->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    const QString name = QString::fromStdString(r.name);
    QStandardItem* n = cell(name, name.toLower());
    n->setEditable(true);
    n->setToolTip(tr("Double-click to rename"));
    cell(QString::fromStdString(runs::toString(r.kind)), QString::fromStdString(runs::toString(r.kind)));
    QStandardItem* st = cell(QString::fromStdString(runs::toString(r.status)), QString::fromStdString(runs::toString(r.status)));
    if (!r.statusMessage.empty()) st->setToolTip(QString::fromStdString(r.statusMessage));
    if (r.status == runs::RunStatus::Failed) st->setForeground(QColor(0xd0, 0x30, 0x30));
    QString created = QString::fromStdString(r.created);
    created.replace('T', ' ').remove('Z');
    cell(created, QString::fromStdString(r.created));
    cell(durationText(r.durationS), std::isnan(r.durationS) ? -1.0 : r.durationS)->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    cell(QString::fromStdString(r.device), QString::fromStdString(r.device));
    model_->appendRow(row);
  }
  filling_ = false;
  table_->resizeColumnsToContents();
  if (table_->columnWidth(ColName) > 260) table_->setColumnWidth(ColName, 260);
  selectRuns(keep);
  updateButtons();
  Q_EMIT runsChanged();
}

void RunsPanel::onItemChanged(QStandardItem* item) {
  if (filling_ || item->column() != ColName) return;
  const qint64 id = item->data(Qt::UserRole + 1).toLongLong();
  const QString err = renameRun(id, item->text().trimmed());
  if (!err.isEmpty()) refresh();  // puts the stored name back
}

QString RunsPanel::renameRun(qint64 id, const QString& name) {
  try {
    runs::RunStore store(runsPath_.toStdString());
    store.renameRun(id, name.toStdString());
  } catch (const std::exception& e) {
    const QString msg = QString::fromUtf8(e.what());
    Q_EMIT statusMessage(msg);
    info_->setText(msg);
    return msg;
  }
  Q_EMIT statusMessage(tr("Run %1 renamed to “%2”").arg(id).arg(name));
  filling_ = true;
  for (int r = 0; r < model_->rowCount(); ++r)
    if (model_->item(r, ColId)->data(Qt::UserRole).toLongLong() == id) {
      model_->item(r, ColName)->setText(name);
      model_->item(r, ColName)->setData(name.toLower(), Qt::UserRole);
    }
  filling_ = false;
  Q_EMIT runsChanged();
  return QString();
}

QString RunsPanel::deleteSelected() {
  const std::vector<qint64> ids = selectedRuns();
  if (ids.empty()) return tr("no run selected");
  if (confirm_) {
    QStringList names;
    for (qint64 id : ids) names << QString::number(id);
    const auto answer = QMessageBox::question(
        this, tr("Delete runs"),
        tr("Delete run(s) %1 with their metrics, statistics and export files? This cannot be undone.").arg(names.join(", ")),
        QMessageBox::Yes | QMessageBox::No, QMessageBox::No);
    if (answer != QMessageBox::Yes) return tr("kept");
  }
  QString errors;
  try {
    runs::RunStore store(runsPath_.toStdString());
    for (qint64 id : ids) {
      try {
        store.deleteRun(id);
      } catch (const std::exception& e) {
        errors += QString::fromUtf8(e.what()) + '\n';
      }
    }
  } catch (const std::exception& e) {
    errors = QString::fromUtf8(e.what());
  }
  refresh();
  Q_EMIT statusMessage(errors.isEmpty() ? tr("Deleted %1 run(s)").arg(ids.size()) : errors.trimmed());
  if (!errors.isEmpty()) info_->setText(errors.trimmed());
  return errors.trimmed();
}

void RunsPanel::selectRuns(const std::vector<qint64>& ids) {
  QItemSelection sel;
  for (int r = 0; r < proxy_->rowCount(); ++r) {
    const qint64 id = proxy_->index(r, ColId).data(Qt::UserRole).toLongLong();
    if (std::find(ids.begin(), ids.end(), id) != ids.end())
      sel.select(proxy_->index(r, 0), proxy_->index(r, ColCount - 1));
  }
  table_->selectionModel()->select(sel, QItemSelectionModel::ClearAndSelect);
}

std::vector<qint64> RunsPanel::selectedRuns() const {
  std::vector<qint64> ids;
  for (const QModelIndex& i : table_->selectionModel()->selectedRows(ColId)) ids.push_back(i.data(Qt::UserRole).toLongLong());
  std::sort(ids.begin(), ids.end());  // the oldest run is the reference of the comparison
  return ids;
}

void RunsPanel::setFilterText(const QString& text) { filter_->setText(text); }

void RunsPanel::setKindFilter(const QString& kind) { kind_->setCurrentIndex(std::max(0, kind_->findData(kind))); }

int RunsPanel::visibleRows() const { return proxy_->rowCount(); }

void RunsPanel::updateButtons() {
  const size_t n = selectedRuns().size();
  compareButton_->setEnabled(n >= 2 && n <= 4);
  const auto rows = table_->selectionModel()->selectedRows(ColKind);
  paretoButton_->setEnabled(n == 1 && rows.size() == 1 && rows[0].data().toString() == QStringLiteral("search"));
  deleteButton_->setEnabled(n >= 1);
  if (runsPath_.isEmpty()) info_->setText(tr("Open a project to see its runs."));
  else info_->setText(tr("%1 of %2 runs · %3 selected%4")
                          .arg(proxy_->rowCount())
                          .arg(model_->rowCount())
                          .arg(n)
                          .arg(n > 4 ? tr(" (compare takes 2–4)") : QString()));
}

}  // namespace qs::ui
