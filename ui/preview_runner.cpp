// PreviewRunner: see preview_runner.h.
#include "ui/preview_runner.h"

#include <QMetaObject>
#include <QThread>

#include "core/jobs/progress.h"
#include "core/util/error.h"

namespace qs::ui {

PreviewRunner::PreviewRunner(QObject* parent) : QObject(parent), thread_(new QThread(this)), worker_(new QObject) {
  qRegisterMetaType<qs::workflow::LayerPreviewResult>();
  thread_->setObjectName(QStringLiteral("quantscope-preview"));
  worker_->moveToThread(thread_);
  connect(thread_, &QThread::finished, worker_, &QObject::deleteLater);
  thread_->start();
}

PreviewRunner::~PreviewRunner() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.reset();
    if (current_) current_->requestCancel();
  }
  thread_->quit();
  thread_->wait();
}

void PreviewRunner::request(const workflow::LayerPreviewOptions& options) {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_ = options;
  ++generation_;
  if (current_) current_->requestCancel();  // stale: the newest request wins
  busy_ = true;
  if (!scheduled_) {
    scheduled_ = true;
    QMetaObject::invokeMethod(worker_, [this] { drain(); }, Qt::QueuedConnection);
  }
}

void PreviewRunner::drain() {
  for (;;) {
    workflow::LayerPreviewOptions options;
    quint64 generation = 0;
    std::shared_ptr<jobs::CancellableProgress> progress;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!pending_) {
        scheduled_ = false;
        current_.reset();
        busy_ = false;
        return;
      }
      options = *pending_;
      pending_.reset();
      generation = generation_.load();
      current_ = progress = std::make_shared<jobs::CancellableProgress>();
    }
    try {
      workflow::LayerPreviewResult r = previewer_.preview(options, *progress);
      QMetaObject::invokeMethod(this, [this, r, generation] {
        if (generation == generation_.load()) Q_EMIT ready(r);
      }, Qt::QueuedConnection);
    } catch (const qs::Cancelled&) {
      // superseded by a newer request
    } catch (const std::exception& e) {
      const QString msg = QString::fromUtf8(e.what()).section('\n', 0, 0);
      QMetaObject::invokeMethod(this, [this, msg, generation] {
        if (generation == generation_.load()) Q_EMIT failed(msg);
      }, Qt::QueuedConnection);
    }
  }
}

}  // namespace qs::ui
