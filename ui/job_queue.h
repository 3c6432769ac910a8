// The GUI's background job queue (DESIGN.md seam 3): one worker QThread runs one job at a time;
// later jobs wait in order. A job is a function of jobs::Progress& that returns a one-line summary
// and reports failure by throwing (qs::Error: its message is shown as is; qs::Cancelled: the job
// was cancelled; anything else: its first line). Progress is read from the worker by a 10 Hz
// timer on the main thread, so a chatty job never floods the event loop. Every Job* signal is
// emitted on the main thread.
#pragma once
#include <QElapsedTimer>
#include <QObject>
#include <QString>

#include <functional>
#include <memory>
#include <vector>

#include "core/jobs/progress.h"

class QThread;
class QTimer;

namespace qs::ui {

class JobQueue : public QObject {
  Q_OBJECT

 public:
  enum class State { Queued, Running, Finished, Failed, Cancelled };
  using Work = std::function<QString(jobs::Progress&)>;

  struct Job {
    int id = 0;
    QString title;             // "Quantize & evaluate: gptq w4"
    State state = State::Queued;
    double fraction = 0;       // [0, 1]
    QString stage;             // latest progress message ("quantize: block 3/5")
    QString result;            // summary (finished) or error message (failed)
    qint64 elapsedMs = 0;      // running time so far / in total
    double etaS = -1;          // seconds left; < 0 = unknown
  };

  explicit JobQueue(QObject* parent = nullptr);
  // Cancels what is queued or running and waits for the worker to stop.
  ~JobQueue() override;

  int enqueue(const QString& title, Work work);
  // Queued: dropped at once. Running: cancellation is requested; the job stops at its next check.
  void cancel(int id);
  void cancelAll();
  bool busy() const;           // a job is running or queued
  int runningId() const;       // 0 when none
  int queuedCount() const;
  const Job* job(int id) const;
  const std::vector<Job>& jobs() const { return jobs_; }
  // Runs the event loop until nothing runs or is queued, or timeoutMs passes; returns !busy().
  bool waitForIdle(int timeoutMs);

  // The message a job's failure shows: qs::Error text as is, other exceptions cut to one line.
  static QString errorMessage(const std::exception& e, bool userError);

 Q_SIGNALS:
  void jobAdded(int id);
  void jobChanged(int id);
  void jobFinished(int id, qs::ui::JobQueue::State state);
  void busyChanged(bool busy);
  void logLine(const QString& level, const QString& message);

 private:
  class Progress;
  struct Entry;
  Job* find(int id);
  void startNext();
  void poll();
  void onDone(int id, State state, const QString& result);

  QThread* thread_;
  QObject* worker_;            // lives in thread_; runs the job functions
  QTimer* poll_;
  std::vector<Job> jobs_;
  std::vector<std::unique_ptr<Entry>> pending_;  // queued work, in order
  std::unique_ptr<Entry> running_;
  QElapsedTimer clock_;
  int nextId_ = 1;
};

QString stateName(JobQueue::State s);

}  // namespace qs::ui
