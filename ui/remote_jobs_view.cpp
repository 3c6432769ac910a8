// RemoteJobsView: see remote_jobs_view.h.
#include "ui/remote_jobs_view.h"

#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFontDatabase>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMetaObject>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QStandardItemModel>
#include <QThread>
#include <QTimer>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <cmath>
#include <map>
#include <set>

#include "core/util/fs.h"
#include "core/workflow/cluster_jobs.h"

namespace qs::ui {
namespace {

QString elapsedText(double s) {
  if (std::isnan(s)) return QStringLiteral("–");
  const long t = static_cast<long>(s);
  return QStringLiteral("%1:%2:%3").arg(t / 3600).arg(t / 60 % 60, 2, 10, QLatin1Char('0')).arg(t % 60, 2, 10, QLatin1Char('0'));
}

enum Column { kName, kSlurmId, kState, kNode, kElapsed, kRun, kColumns };

}  // namespace

void fillRunOnCombo(QComboBox* combo, const QStringList& profiles) {
  combo->clear();
  combo->addItem(QObject::tr("This machine"), QString());
  for (const QString& p : profiles) combo->addItem(QObject::tr("Slurm (%1)").arg(p), p);
  if (profiles.isEmpty()) {
    combo->addItem(QObject::tr("Slurm (no profile in project.yaml)"), QString());
    if (auto* model = qobject_cast<QStandardItemModel*>(combo->model())) model->item(1)->setEnabled(false);
  }
}

RemoteJobsView::RemoteJobsView(QWidget* parent)
    : QWidget(parent),
      tree_(new QTreeWidget(this)),
      summary_(new QLabel(this)),
      sync_(new QPushButton(tr("Sync"), this)),
      cancel_(new QPushButton(tr("Cancel"), this)),
      log_(new QPushButton(tr("Open Log"), this)),
      timer_(new QTimer(this)) {
  setObjectName(QStringLiteral("remoteJobs"));
  tree_->setObjectName(QStringLiteral("remoteJobsTree"));
  tree_->setColumnCount(kColumns);
  tree_->setHeaderLabels({tr("Slurm job"), tr("Id"), tr("State"), tr("Node"), tr("Elapsed"), tr("Run")});
  tree_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  tree_->setRootIsDecorated(true);
  tree_->setUniformRowHeights(true);
  tree_->header()->setSectionResizeMode(kName, QHeaderView::Stretch);
  for (int c = kSlurmId; c < kColumns; ++c) tree_->header()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
  sync_->setObjectName(QStringLiteral("remoteSync"));
  sync_->setToolTip(tr("Ask Slurm for the jobs' states and import every job that has ended into the run store "
                       "(as qscope jobs sync)"));
  cancel_->setObjectName(QStringLiteral("remoteCancel"));
  cancel_->setToolTip(tr("scancel the selected jobs (a selected sweep: all its unfinished tasks)"));
  log_->setObjectName(QStringLiteral("remoteLog"));
  log_->setToolTip(tr("Show the selected job's log"));
  summary_->setObjectName(QStringLiteral("remoteSummary"));

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(new QLabel(tr("<b>Slurm jobs</b>"), this));
  buttons->addWidget(summary_, 1);
  buttons->addWidget(sync_);
  buttons->addWidget(cancel_);
  buttons->addWidget(log_);
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(0, 0, 0, 0);
  v->addLayout(buttons);
  v->addWidget(tree_, 1);

  timer_->setInterval(10000);
  connect(timer_, &QTimer::timeout, this, &RemoteJobsView::syncNow);
  connect(sync_, &QPushButton::clicked, this, &RemoteJobsView::syncNow);
  connect(cancel_, &QPushButton::clicked, this, &RemoteJobsView::cancelSelected);
  connect(log_, &QPushButton::clicked, this, &RemoteJobsView::openLog);
  connect(tree_, &QTreeWidget::itemSelectionChanged, this, [this] {
    const auto sel = selectedJobs();
    bool anyActive = false;
    for (const auto& j : sel) anyActive |= !runs::isTerminal(j.state);
    cancel_->setEnabled(anyActive);
    log_->setEnabled(sel.size() == 1);
  });
  setProject(QString());
}

RemoteJobsView::~RemoteJobsView() {
  timer_->stop();
  while (syncing_.load()) QThread::msleep(20);  // the worker posts to this object
}

void RemoteJobsView::setPollInterval(int ms) { timer_->setInterval(ms); }

void RemoteJobsView::setProject(const QString& projectDir) {
  project_ = projectDir;
  reload();
}

void RemoteJobsView::reload() {
  jobs_.clear();
  if (!project_.isEmpty()) {
    try {
      jobs_ = runs::JobLedger(project_.toStdString()).list();
    } catch (const std::exception& e) {
      Q_EMIT statusMessage(tr("Slurm jobs: %1").arg(QString::fromStdString(e.what())));
    }
  }
  // Remember what was selected and expanded.
  std::set<qint64> selected;
  for (const auto& j : selectedJobs()) selected.insert(j.id);
  std::set<QString> collapsed;
  for (int i = 0; i < tree_->topLevelItemCount(); ++i)
    if (!tree_->topLevelItem(i)->isExpanded()) collapsed.insert(tree_->topLevelItem(i)->text(kName));
  tree_->clear();

  std::map<std::string, std::vector<const runs::RemoteJob*>> groups;
  std::vector<std::string> order;
  for (const auto& j : jobs_) {
    if (!groups.count(j.group)) order.push_back(j.group);
    groups[j.group].push_back(&j);
  }
  int active = 0;
  for (const auto& g : order) {
    auto& members = groups[g];
    std::sort(members.begin(), members.end(), [](auto* a, auto* b) { return a->taskIndex < b->taskIndex; });
    int ended = 0, running = 0, failed = 0;
    for (const auto* j : members) {
      ended += runs::isTerminal(j->state);
      running += j->state == runs::JobState::Running;
      failed += runs::isTerminal(j->state) && j->state != runs::JobState::Completed;
    }
    active += static_cast<int>(members.size()) - ended;
    auto* top = new QTreeWidgetItem(tree_);
    top->setText(kName, QString::fromStdString(g));
    const std::string base = members.front()->schedulerId.substr(0, members.front()->schedulerId.find('_'));
    top->setText(kSlurmId, QString::fromStdString(base));
    QString state = tr("%1/%2 ended").arg(ended).arg(members.size());
    if (running) state += tr(", %1 running").arg(running);
    if (failed) state += tr(", %1 failed").arg(failed);
    top->setText(kState, state);
    top->setData(kName, Qt::UserRole, QString::fromStdString(g));
    for (const auto* j : members) {
      auto* item = new QTreeWidgetItem(top);
      item->setText(kName, QStringLiteral("%1  %2").arg(j->taskIndex).arg(QString::fromStdString(j->name)));
      item->setText(kSlurmId, QString::fromStdString(j->schedulerId));
      item->setText(kState, QString::fromStdString(runs::toString(j->state)) + (j->imported ? QString() : QStringLiteral("*")));
      item->setText(kNode, j->node.empty() ? QStringLiteral("–") : QString::fromStdString(j->node));
      item->setText(kElapsed, elapsedText(j->elapsedS));
      item->setText(kRun, j->runId > 0 ? QString::number(j->runId) : QStringLiteral("–"));
      item->setData(kName, Qt::UserRole + 1, static_cast<qlonglong>(j->id));
      QString tip = QString::fromStdString(j->command);
      if (!j->message.empty()) {
        tip = QString::fromStdString(j->message) + QStringLiteral("\n\n") + tip;
        item->setText(kName, item->text(kName) + QStringLiteral(" — ") + QString::fromStdString(j->message));
      }
      item->setToolTip(kName, tip);
      item->setToolTip(kState, j->imported ? tr("in the run store") : tr("* not yet imported (Sync)"));
      if (runs::isTerminal(j->state) && j->state != runs::JobState::Completed)
        for (int c = 0; c < kColumns; ++c) item->setForeground(c, palette().color(QPalette::Disabled, QPalette::Text));
      if (selected.count(j->id)) item->setSelected(true);
    }
    top->setExpanded(!collapsed.count(QString::fromStdString(g)));
  }
  summary_->setText(jobs_.empty() ? tr("none (qscope sweep --backend slurm, or Run on: Slurm)")
                                  : tr("%1 job(s), %2 unfinished").arg(jobs_.size()).arg(active));
  // Without jobs the section is its header line only, leaving the dock to the local jobs.
  tree_->setVisible(!jobs_.empty());
  setMaximumHeight(jobs_.empty() ? sync_->sizeHint().height() + 4 : QWIDGETSIZE_MAX);
  const bool open = !project_.isEmpty();
  sync_->setEnabled(open && !jobs_.empty() && !syncing_.load());
  cancel_->setEnabled(false);
  log_->setEnabled(false);
  Q_EMIT tree_->itemSelectionChanged();
  if (open && active > 0) {
    if (!timer_->isActive()) timer_->start();
  } else {
    timer_->stop();
  }
}

void RemoteJobsView::syncNow() {
  if (project_.isEmpty() || syncing_.exchange(true)) return;
  sync_->setEnabled(false);
  const std::string project = project_.toStdString();
  QThread* t = QThread::create([this, project] {
    int imported = 0, failed = 0;
    QString error;
    try {
      workflow::ClusterOptions o;
      o.backend = "slurm";
      const auto r = workflow::syncJobs(project, o);
      imported = r.imported;
      failed = r.failed;
    } catch (const std::exception& e) {
      error = QString::fromStdString(e.what());
    }
    QMetaObject::invokeMethod(this, "onSyncDone", Qt::QueuedConnection, Q_ARG(int, imported), Q_ARG(int, failed),
                              Q_ARG(QString, error));
  });
  connect(t, &QThread::finished, t, &QObject::deleteLater);
  t->start();
}

void RemoteJobsView::onSyncDone(int imported, int failed, const QString& error) {
  syncing_.store(false);
  reload();
  if (!error.isEmpty()) Q_EMIT statusMessage(tr("Slurm: %1").arg(error));
  else if (imported + failed > 0)
    Q_EMIT statusMessage(tr("Slurm: imported %1 run(s), %2 job(s) ended without a result").arg(imported).arg(failed));
  if (imported + failed > 0) Q_EMIT runsImported();
}

std::vector<runs::RemoteJob> RemoteJobsView::selectedJobs() const {
  std::vector<runs::RemoteJob> out;
  std::set<qint64> seen;
  auto add = [&](qint64 id) {
    if (!seen.insert(id).second) return;
    for (const auto& j : jobs_)
      if (j.id == id) out.push_back(j);
  };
  for (auto* item : tree_->selectedItems()) {
    if (item->parent()) {
      add(item->data(kName, Qt::UserRole + 1).toLongLong());
    } else {
      for (int i = 0; i < item->childCount(); ++i) add(item->child(i)->data(kName, Qt::UserRole + 1).toLongLong());
    }
  }
  return out;
}

void RemoteJobsView::cancelSelected() {
  std::vector<int64_t> ids;
  for (const auto& j : selectedJobs())
    if (!runs::isTerminal(j.state)) ids.push_back(j.id);
  if (ids.empty()) return;
  try {
    workflow::ClusterOptions o;
    o.backend = "slurm";
    const auto cancelled = workflow::cancelJobs(project_.toStdString(), o, ids);
    Q_EMIT statusMessage(tr("Slurm: cancelled %1 job(s); they are recorded as cancelled once Slurm stops them")
                             .arg(cancelled.size()));
  } catch (const std::exception& e) {
    Q_EMIT statusMessage(tr("Slurm: %1").arg(QString::fromStdString(e.what())));
  }
  syncNow();
}

QString RemoteJobsView::logText(qint64 jobId) const {
  for (const auto& j : jobs_) {
    if (j.id != jobId || j.logPath.empty()) continue;
    const QString path = project_ + QLatin1Char('/') + QString::fromStdString(j.logPath);
    if (!QFileInfo::exists(path)) return QString();
    try {
      return QString::fromStdString(fs::readText(path.toStdString()));
    } catch (const std::exception&) {
      return QString();
    }
  }
  return QString();
}

void RemoteJobsView::openLog() {
  const auto sel = selectedJobs();
  if (sel.size() != 1) return;
  const auto& j = sel.front();
  QString text = logText(j.id);
  if (text.isEmpty()) text = tr("(no log yet: the job has not started)");
  auto* dlg = new QDialog(this);
  dlg->setAttribute(Qt::WA_DeleteOnClose);
  dlg->setObjectName(QStringLiteral("remoteLogDialog"));
  dlg->setWindowTitle(tr("Log of %1 (Slurm %2)").arg(QString::fromStdString(j.name), QString::fromStdString(j.schedulerId)));
  auto* edit = new QPlainTextEdit(text, dlg);
  edit->setReadOnly(true);
  edit->setLineWrapMode(QPlainTextEdit::NoWrap);
  edit->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  auto* box = new QDialogButtonBox(QDialogButtonBox::Close, dlg);
  connect(box, &QDialogButtonBox::rejected, dlg, &QDialog::close);
  auto* v = new QVBoxLayout(dlg);
  v->addWidget(edit);
  v->addWidget(box);
  dlg->resize(900, 500);
  dlg->show();
}

}  // namespace qs::ui
