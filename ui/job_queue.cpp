// JobQueue: see job_queue.h.
#include "ui/job_queue.h"

#include <QCoreApplication>
#include <QEventLoop>
#include <QMetaObject>
#include <QMutex>
#include <QThread>
#include <QTimer>

#include "core/jobs/eta.h"
#include "core/util/error.h"
#include "core/util/oom.h"

namespace qs::ui {

// What the worker writes and the poll timer reads: the latest fraction and message.
class JobQueue::Progress : public jobs::CancellableProgress {
 public:
  void update(double fraction, const std::string& message) override {
    QMutexLocker lock(&mutex_);
    fraction_ = fraction;
    message_ = message;
  }
  std::pair<double, std::string> latest() const {
    QMutexLocker lock(&mutex_);
    return {fraction_, message_};
  }

 private:
  mutable QMutex mutex_;
  double fraction_ = 0;
  std::string message_;
};

struct JobQueue::Entry {
  int id = 0;
  Work work;
  Progress progress;
  jobs::EtaEstimator eta;
  qint64 startMs = 0;
};

QString stateName(JobQueue::State s) {
  switch (s) {
    case JobQueue::State::Queued: return QObject::tr("queued");
    case JobQueue::State::Running: return QObject::tr("running");
    case JobQueue::State::Finished: return QObject::tr("finished");
    case JobQueue::State::Failed: return QObject::tr("failed");
    case JobQueue::State::Cancelled: return QObject::tr("cancelled");
  }
  return QString();
}

JobQueue::JobQueue(QObject* parent)
    : QObject(parent), thread_(new QThread(this)), worker_(new QObject), poll_(new QTimer(this)) {
  qRegisterMetaType<qs::ui::JobQueue::State>("qs::ui::JobQueue::State");
  thread_->setObjectName(QStringLiteral("quantscope-jobs"));
  worker_->moveToThread(thread_);
  connect(thread_, &QThread::finished, worker_, &QObject::deleteLater);
  thread_->start();
  poll_->setInterval(100);
  connect(poll_, &QTimer::timeout, this, &JobQueue::poll);
  clock_.start();
}

JobQueue::~JobQueue() {
  pending_.clear();
  if (running_) running_->progress.requestCancel();
  thread_->quit();
  thread_->wait();  // the running job stops at its next cancellation check
}

JobQueue::Job* JobQueue::find(int id) {
  for (auto& j : jobs_)
    if (j.id == id) return &j;
  return nullptr;
}

const JobQueue::Job* JobQueue::job(int id) const {
  for (const auto& j : jobs_)
    if (j.id == id) return &j;
  return nullptr;
}

bool JobQueue::busy() const { return running_ || !pending_.empty(); }
int JobQueue::runningId() const { return running_ ? running_->id : 0; }
int JobQueue::queuedCount() const { return static_cast<int>(pending_.size()); }

int JobQueue::enqueue(const QString& title, Work work) {
  const bool wasBusy = busy();
  auto e = std::make_unique<Entry>();
  e->id = nextId_++;
  e->work = std::move(work);
  Job j;
  j.id = e->id;
  j.title = title;
  jobs_.push_back(j);
  pending_.push_back(std::move(e));
  const int id = jobs_.back().id;
  Q_EMIT jobAdded(id);
  Q_EMIT logLine(QStringLiteral("info"), tr("job %1 queued: %2").arg(id).arg(title));
  if (!wasBusy) Q_EMIT busyChanged(true);
  if (!running_) startNext();
  return id;
}

void JobQueue::startNext() {
  if (running_ || pending_.empty()) return;
  running_ = std::move(pending_.front());
  pending_.erase(pending_.begin());
  running_->startMs = clock_.elapsed();
  Job* j = find(running_->id);
  j->state = State::Running;
  Q_EMIT jobChanged(j->id);
  Q_EMIT logLine(QStringLiteral("info"), tr("job %1 started: %2").arg(j->id).arg(j->title));
  poll_->start();
  Entry* e = running_.get();
  QMetaObject::invokeMethod(worker_, [this, e] {
    State state = State::Finished;
    QString result;
    try {
      result = e->work(e->progress);
      if (e->progress.cancelRequested()) state = State::Cancelled;  // finished its last step anyway
    } catch (const qs::Cancelled&) {
      state = State::Cancelled;
    } catch (const qs::Error& ex) {
      state = State::Failed;
      result = errorMessage(ex, true);
    } catch (const std::exception& ex) {
      state = State::Failed;
      result = errorMessage(ex, false);
    } catch (...) {
      state = State::Failed;
      result = tr("the job failed with an unknown error");
    }
    const int id = e->id;
    QMetaObject::invokeMethod(this, [this, id, state, result] { onDone(id, state, result); }, Qt::QueuedConnection);
  }, Qt::QueuedConnection);
}

QString JobQueue::errorMessage(const std::exception& e, bool userError) {
  QString text = QString::fromUtf8(e.what()).trimmed();
  if (userError) return text;
  // LibTorch messages carry a C++ stack trace after the first line; the user needs the first line.
  const int nl = text.indexOf('\n');
  if (nl >= 0) text = text.left(nl).trimmed();
  if (qs::isOutOfMemoryText(text.toStdString()))
    return tr("out of memory (%1): lower the calibration samples, sequence length or batch size in the Tuning panel, "
              "or use bfloat16")
        .arg(text);
  return tr("computation failed: %1").arg(text);
}

void JobQueue::poll() {
  if (!running_) return;
  Job* j = find(running_->id);
  const auto [fraction, message] = running_->progress.latest();
  j->elapsedMs = clock_.elapsed() - running_->startMs;
  running_->eta.update(j->elapsedMs / 1000.0, fraction);
  j->fraction = running_->eta.fraction();
  j->etaS = running_->eta.remainingS();
  j->stage = QString::fromStdString(message);
  Q_EMIT jobChanged(j->id);
}

void JobQueue::onDone(int id, State state, const QString& result) {
  poll();  // the last progress message
  running_.reset();
  Job* j = find(id);
  j->state = state;
  j->result = result;
  j->etaS = -1;
  if (state == State::Finished) j->fraction = 1;
  Q_EMIT jobChanged(id);
  const QString secs = QString::number(j->elapsedMs / 1000.0, 'f', 1);
  if (state == State::Finished)
    Q_EMIT logLine(QStringLiteral("info"), tr("job %1 finished in %2 s: %3").arg(id).arg(secs, result));
  else if (state == State::Failed)
    Q_EMIT logLine(QStringLiteral("error"), tr("job %1 failed after %2 s: %3").arg(id).arg(secs, result));
  else
    Q_EMIT logLine(QStringLiteral("warn"), tr("job %1 cancelled after %2 s").arg(id).arg(secs));
  Q_EMIT jobFinished(id, state);
  if (pending_.empty()) {
    poll_->stop();
    Q_EMIT busyChanged(false);
  } else {
    startNext();
  }
}

void JobQueue::cancel(int id) {
  if (running_ && running_->id == id) {
    running_->progress.requestCancel();
    Q_EMIT logLine(QStringLiteral("info"), tr("job %1: cancelling…").arg(id));
    return;
  }
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if ((*it)->id != id) continue;
    pending_.erase(it);
    Job* j = find(id);
    j->state = State::Cancelled;
    Q_EMIT jobChanged(id);
    Q_EMIT logLine(QStringLiteral("warn"), tr("job %1 removed from the queue").arg(id));
    Q_EMIT jobFinished(id, State::Cancelled);
    if (!busy()) Q_EMIT busyChanged(false);
    return;
  }
}

void JobQueue::cancelAll() {
  while (!pending_.empty()) cancel(pending_.back()->id);
  if (running_) cancel(running_->id);
}

bool JobQueue::waitForIdle(int timeoutMs) {
  if (!busy()) return true;
  QEventLoop loop;
  auto c = connect(this, &JobQueue::busyChanged, &loop, [&](bool b) { if (!b) loop.quit(); });
  QTimer::singleShot(timeoutMs, &loop, &QEventLoop::quit);
  loop.exec();
  disconnect(c);
  return !busy();
}

}  // namespace qs::ui
