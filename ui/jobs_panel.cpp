// JobsPanel: see jobs_panel.h.
#include "ui/jobs_panel.h"

#include <QComboBox>
#include <QFrame>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

#include "core/jobs/eta.h"
#include "ui/remote_jobs_view.h"

namespace qs::ui {

JobsPanel::JobsPanel(JobQueue* queue, QWidget* parent)
    : QWidget(parent),
      queue_(queue),
      analyseButton_(new QPushButton(tr("Analyse"), this)),
      quantizeButton_(new QPushButton(tr("Quantize && Evaluate"), this)),
      samples_(new QSpinBox(this)),
      seqlen_(new QSpinBox(this)),
      runOn_(new QComboBox(this)),
      remote_(new RemoteJobsView(this)),
      empty_(new QLabel(this)) {
  runOn_->setObjectName(QStringLiteral("runOnCombo"));
  runOn_->setToolTip(tr("Where Quantize & Evaluate runs: in this process, or as a job on a Slurm cluster with a "
                        "profile from project.yaml (slurm:); a remote job's run is imported when it ends"));
  setObjectName(QStringLiteral("jobsPanel"));
  analyseButton_->setObjectName(QStringLiteral("analyseButton"));
  analyseButton_->setToolTip(tr("Activation and weight statistics of every site over calibration windows "
                                "(as qscope analyze); stored as an analysis run"));
  quantizeButton_->setObjectName(QStringLiteral("quantizeButton"));
  quantizeButton_->setToolTip(tr("Quantize the weights with the Tuning panel's config and compare perplexity "
                                 "before and after (as qscope quantize); stored as a quantize run"));
  samples_->setObjectName(QStringLiteral("analyseSamples"));
  samples_->setRange(1, 4096);
  samples_->setValue(32);
  samples_->setToolTip(tr("Calibration windows"));
  seqlen_->setObjectName(QStringLiteral("analyseSeqlen"));
  seqlen_->setRange(8, 32768);
  seqlen_->setValue(256);
  seqlen_->setToolTip(tr("Tokens per window"));

  auto* tools = new QHBoxLayout;
  tools->addWidget(analyseButton_);
  tools->addWidget(samples_);
  tools->addWidget(new QLabel(tr("×"), this));
  tools->addWidget(seqlen_);
  tools->addWidget(new QLabel(tr("tokens"), this));
  tools->addStretch();
  tools->addWidget(new QLabel(tr("Run on"), this));
  tools->addWidget(runOn_);
  tools->addWidget(quantizeButton_);

  empty_->setText(tr("No jobs yet. Open a project, then start <b>Analyse</b> or <b>Quantize &amp; Evaluate</b>."));
  empty_->setWordWrap(true);
  empty_->setEnabled(false);
  auto* list = new QWidget(this);
  rows_ = new QVBoxLayout(list);
  rows_->setContentsMargins(0, 0, 0, 0);
  rows_->addWidget(empty_);
  rows_->addStretch();
  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  scroll->setWidget(list);

  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(scroll);
  split->addWidget(remote_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  split->setChildrenCollapsible(false);
  auto* v = new QVBoxLayout(this);
  v->setContentsMargins(4, 4, 4, 4);
  v->addLayout(tools);
  v->addWidget(split, 1);

  connect(analyseButton_, &QPushButton::clicked, this, &JobsPanel::analyseRequested);
  connect(quantizeButton_, &QPushButton::clicked, this, &JobsPanel::quantizeRequested);
  connect(queue_, &JobQueue::jobAdded, this, &JobsPanel::addRow);
  connect(queue_, &JobQueue::jobChanged, this, &JobsPanel::updateRow);
  setSlurmProfiles({});
  setProjectOpen(false);
}

void JobsPanel::setSlurmProfiles(const QStringList& profiles) { fillRunOnCombo(runOn_, profiles); }

QString JobsPanel::runOnProfile() const { return runOn_->currentData().toString(); }

void JobsPanel::setProjectOpen(bool open) {
  for (QWidget* w : std::initializer_list<QWidget*>{analyseButton_, quantizeButton_, samples_, seqlen_, runOn_}) w->setEnabled(open);
}

int JobsPanel::analyseSamples() const { return samples_->value(); }
int JobsPanel::analyseSeqlen() const { return seqlen_->value(); }

void JobsPanel::addRow(int id) {
  const JobQueue::Job* j = queue_->job(id);
  if (!j) return;
  empty_->hide();
  Row r;
  r.box = new QFrame(this);
  static_cast<QFrame*>(r.box)->setFrameShape(QFrame::StyledPanel);
  r.box->setObjectName(QStringLiteral("job%1").arg(id));
  r.title = new QLabel(QStringLiteral("<b>%1</b>").arg(j->title.toHtmlEscaped()), r.box);
  r.title->setWordWrap(true);  // long config labels wrap instead of widening the dock
  r.title->setMinimumWidth(60);
  r.title->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  r.state = new QLabel(r.box);
  r.bar = new QProgressBar(r.box);
  r.bar->setRange(0, 1000);
  r.bar->setTextVisible(true);
  r.bar->setFormat(QStringLiteral("%p%"));
  r.bar->setMinimumWidth(120);
  r.stage = new QLabel(r.box);
  r.stage->setObjectName(QStringLiteral("stage%1").arg(id));
  r.stage->setMinimumWidth(40);
  r.stage->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);  // long stages are cut, not the dock widened
  r.time = new QLabel(r.box);
  r.result = new QLabel(r.box);
  r.result->setWordWrap(true);
  r.result->setMinimumWidth(60);
  r.result->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  r.result->setTextInteractionFlags(Qt::TextSelectableByMouse);
  r.result->hide();
  r.cancel = new QPushButton(tr("Cancel"), r.box);
  r.cancel->setObjectName(QStringLiteral("cancelJob%1").arg(id));
  connect(r.cancel, &QPushButton::clicked, this, [this, id] { queue_->cancel(id); });
  auto* head = new QHBoxLayout;
  head->addWidget(r.title, 1);
  head->addWidget(r.state);
  auto* line = new QHBoxLayout;
  line->addWidget(r.bar, 1);
  line->addWidget(r.cancel);
  auto* info = new QHBoxLayout;
  info->addWidget(r.stage, 1);
  info->addWidget(r.time);
  auto* v = new QVBoxLayout(r.box);
  v->setContentsMargins(6, 4, 6, 4);
  v->setSpacing(2);
  v->addLayout(head);
  v->addLayout(line);
  v->addLayout(info);
  v->addWidget(r.result);
  rows_->insertWidget(0, r.box);  // newest first
  rowOf_[id] = r;
  updateRow(id);
}

void JobsPanel::updateRow(int id) {
  const JobQueue::Job* j = queue_->job(id);
  auto it = rowOf_.find(id);
  if (!j || it == rowOf_.end()) return;
  Row& r = it->second;
  const bool active = j->state == JobQueue::State::Queued || j->state == JobQueue::State::Running;
  r.state->setText(stateName(j->state));
  r.bar->setValue(static_cast<int>(j->fraction * 1000));
  QString stage = j->stage;
  if (j->state == JobQueue::State::Queued) stage = tr("waiting for the running job");
  r.stage->setText(active ? stage : QString());  // a finished row shows its result instead
  r.stage->setToolTip(stage);
  if (j->state == JobQueue::State::Running)
    r.time->setText(tr("%1 elapsed · ETA %2")
                        .arg(QString::fromStdString(jobs::formatDuration(j->elapsedMs / 1000.0)),
                             QString::fromStdString(jobs::formatDuration(j->etaS))));
  else if (!active)
    r.time->setText(tr("took %1").arg(QString::fromStdString(jobs::formatDuration(j->elapsedMs / 1000.0))));
  else
    r.time->clear();
  r.cancel->setVisible(active);
  if (!active) {
    r.result->setVisible(!j->result.isEmpty());
    r.result->setText(j->result);
    r.result->setStyleSheet(j->state == JobQueue::State::Failed ? QStringLiteral("color: #d03030;") : QString());
    r.state->setStyleSheet(j->state == JobQueue::State::Failed ? QStringLiteral("color: #d03030; font-weight: 600;")
                                                               : QString());
  }
}

QProgressBar* JobsPanel::progressBar(int jobId) const {
  auto it = rowOf_.find(jobId);
  return it == rowOf_.end() ? nullptr : it->second.bar;
}

QPushButton* JobsPanel::cancelButton(int jobId) const {
  auto it = rowOf_.find(jobId);
  return it == rowOf_.end() ? nullptr : it->second.cancel;
}

QLabel* JobsPanel::resultLabel(int jobId) const {
  auto it = rowOf_.find(jobId);
  return it == rowOf_.end() ? nullptr : it->second.result;
}

QLabel* JobsPanel::stageLabel(int jobId) const {
  auto it = rowOf_.find(jobId);
  return it == rowOf_.end() ? nullptr : it->second.stage;
}

}  // namespace qs::ui
