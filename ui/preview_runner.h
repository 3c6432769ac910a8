// Runs LayerPreviewer requests (core/workflow/layer_preview.h) on its own worker thread for the
// Tuning panel's live preview. Only the newest request matters: a new one cancels the running
// one (its progress reports cancelled at the next check) and replaces any waiting one, and a
// result that is no longer the newest is dropped, so typing never queues up work.
#pragma once
#include <QObject>
#include <QString>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>

#include "core/workflow/layer_preview.h"

class QThread;

namespace qs::jobs {
class CancellableProgress;
}

namespace qs::ui {

class PreviewRunner : public QObject {
  Q_OBJECT

 public:
  explicit PreviewRunner(QObject* parent = nullptr);
  ~PreviewRunner() override;  // cancels and joins the worker

  void request(const workflow::LayerPreviewOptions& options);
  bool busy() const { return busy_.load(); }
  quint64 latest() const { return generation_.load(); }

 Q_SIGNALS:
  void ready(const qs::workflow::LayerPreviewResult& result);
  void failed(const QString& message);

 private:
  void drain();  // worker thread

  QThread* thread_;
  QObject* worker_;
  workflow::LayerPreviewer previewer_;  // used on the worker thread only
  std::mutex mutex_;
  std::optional<workflow::LayerPreviewOptions> pending_;
  std::shared_ptr<jobs::CancellableProgress> current_;
  bool scheduled_ = false;
  std::atomic<quint64> generation_{0};
  std::atomic<bool> busy_{false};
};

}  // namespace qs::ui

Q_DECLARE_METATYPE(qs::workflow::LayerPreviewResult)
