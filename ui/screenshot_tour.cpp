// ScreenshotTour: see screenshot_tour.h.
#include "ui/screenshot_tour.h"

#include <QDir>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QFile>
#include <QPixmap>
#include <QPushButton>
#include <QTabWidget>
#include <QTimer>

#include <cstdio>

#include "core/runs/project.h"
#include "ui/compare_view.h"
#include "ui/export_dialog.h"
#include "ui/job_queue.h"
#include "ui/jobs_panel.h"
#include "ui/main_window.h"
#include "ui/outlier_explorer_panel.h"
#include "ui/preview_runner.h"
#include "ui/runs_panel.h"
#include "ui/tuning_panel.h"

namespace qs::ui {

ScreenshotTour::ScreenshotTour(MainWindow* window, QString outDir, QString project, QString scratchDir, QObject* parent)
    : QObject(parent), w_(window), out_(std::move(outDir)), project_(std::move(project)), scratch_(std::move(scratchDir)) {}

void ScreenshotTour::tall(QDockWidget* dock) {
  // The bottom docks get most of the window's height, as a user looking at them would drag it.
  if (dock) w_->resizeDocks({dock}, {w_->height() * 2 / 3}, Qt::Vertical);
}

void ScreenshotTour::fail(const QString& message) {
  std::fprintf(stderr, "quantscope --screenshots: %s\n", qPrintable(message));
  shoot(QStringLiteral("failed"));
  Q_EMIT finished(1);
}

bool ScreenshotTour::shoot(const QString& name) { return shootWidget(w_, name); }

bool ScreenshotTour::shootWidget(QWidget* widget, const QString& name) {
  const QString file = QDir(out_).filePath(name + ".png");
  const QPixmap pixmap = widget->grab();
  if (!pixmap.save(file)) {
    std::fprintf(stderr, "quantscope --screenshots: could not write %s\n", qPrintable(file));
    return false;
  }
  written_ << file;
  std::fprintf(stderr, "quantscope: wrote %s (%dx%d)\n", qPrintable(file), pixmap.width(), pixmap.height());
  return true;
}

void ScreenshotTour::when(std::function<bool()> done, const QString& what, int timeoutMs, std::function<void()> next) {
  auto* timer = new QTimer(this);
  auto* clock = new QElapsedTimer;
  clock->start();
  connect(timer, &QTimer::timeout, this, [=] {
    if (done()) {
      timer->stop();
      timer->deleteLater();
      delete clock;
      // Let layouts and plots settle before the grab.
      QTimer::singleShot(250, this, next);
    } else if (clock->elapsed() > timeoutMs) {
      timer->stop();
      timer->deleteLater();
      delete clock;
      fail(QStringLiteral("timed out waiting for %1").arg(what));
    }
  });
  timer->start(50);
}

QString ScreenshotTour::quantizeYaml(const QString& migrate) const {
  // W4A6 GPTQ, with or without OS+: small enough for seconds on a CPU.
  return QStringLiteral("quantize:\n  method: gptq\n  wbits: 4\n  groupsize: 32\n  act_order: true\n"
                        "  a_bits: 6\n  a_quantizer: per_tensor\n  migrate: %1\n"
                        "  nsamples: 32\n  seqlen: 256\n  batch_size: 8\n  dataset: wikitext2\n"
                        "  eval: [wikitext2]\n  eval_seqlen: 256\n  eval_limit_windows: 64\n")
      .arg(migrate);
}

void ScreenshotTour::start() {
  QDir().mkpath(out_);
  // A scratch copy of the project: same model and data, empty run store.
  try {
    const runs::Project src = runs::Project::open(project_.toStdString());
    copy_ = QDir(scratch_).filePath(QStringLiteral("project"));
    runs::Project::init(copy_.toStdString(), src.modelPath(), src.name());
    // The source's data folder and datasets, with absolute paths (init writes its defaults).
    QFile yaml(QDir(copy_).filePath(QStringLiteral("project.yaml")));
    if (!yaml.open(QIODevice::WriteOnly | QIODevice::Truncate))
      throw std::runtime_error("cannot write " + yaml.fileName().toStdString());
    QString text = QStringLiteral("name: %1\nmodel: %2\n").arg(QString::fromStdString(src.name()), QString::fromStdString(src.modelPath()));
    if (!src.dataDir().empty()) text += QStringLiteral("data_dir: %1\n").arg(QString::fromStdString(src.dataDir()));
    text += QStringLiteral("datasets: [wikitext2]\n");
    yaml.write(text.toUtf8());
  } catch (const std::exception& e) {
    fail(QString::fromUtf8(e.what()));
    return;
  }
  const QString error = w_->openProject(copy_);
  if (!error.isEmpty()) {
    fail(error);
    return;
  }
  when([this] { return w_->summary() != nullptr; }, QStringLiteral("the model to open"), 60000, [this] { stepAnalyse(); });
}

void ScreenshotTour::stepAnalyse() {
  const int id = w_->startAnalyse(32, 256);
  when([this, id] { return !w_->jobQueue()->busy() && w_->explorerPanel()->currentRun() > 0 && !w_->explorerPanel()->loading(); },
       QStringLiteral("the analysis job"), 300000, [this, id] {
         if (w_->jobQueue()->job(id)->state != JobQueue::State::Finished) {
           fail(QStringLiteral("analysis: %1").arg(w_->jobQueue()->job(id)->result));
           return;
         }
         stepQuantize();
       });
}

void ScreenshotTour::stepQuantize() {
  w_->tuningPanel()->setYaml(quantizeYaml(QStringLiteral("none")));
  q1_ = w_->startQuantize();
  w_->tuningPanel()->setYaml(quantizeYaml(QStringLiteral("osplus")));
  q2_ = w_->startQuantize();
  if (q1_ == 0 || q2_ == 0) {
    fail(QStringLiteral("quantize job not started: %1").arg(w_->tuningPanel()->error()));
    return;
  }
  w_->showDockOf(w_->jobsPanel());
  // The Jobs dock mid-run: the first job done, the second past its first block.
  when([this] {
         const auto* j = w_->jobQueue()->job(q2_);
         return !w_->jobQueue()->busy() || (j->state == JobQueue::State::Running && j->stage.contains("quantize: block 2/"));
       },
       QStringLiteral("the second quantize job to run"), 300000, [this] {
         shoot(QStringLiteral("jobs"));
         when([this] { return !w_->jobQueue()->busy(); }, QStringLiteral("the quantize jobs"), 300000, [this] {
           for (int id : {q1_, q2_})
             if (w_->jobQueue()->job(id)->state != JobQueue::State::Finished) {
               fail(QStringLiteral("quantize: %1").arg(w_->jobQueue()->job(id)->result));
               return;
             }
           stepExplorer();
         });
       });
}

void ScreenshotTour::stepExplorer() {
  OutlierExplorerPanel* e = w_->explorerPanel();
  tall(w_->showDockOf(e));
  e->setView(OutlierExplorerPanel::View::Layers);
  QTimer::singleShot(300, this, [this, e] {
    shoot(QStringLiteral("main_window"));
    // The channel view of layer 3's attention input with its ranges after OS+ beside them.
    e->showSite(3, QStringLiteral("q_proj"), QStringLiteral("input"));
    e->setSort(plot::ChannelSort::Range);
    e->setView(OutlierExplorerPanel::View::Channels);
    e->setAfterOsPlus(true);
    when([e] { return e->afterRangesDrawn() > 0; }, QStringLiteral("the after-OS+ ranges"), 60000, [this, e] {
      shoot(QStringLiteral("explorer_channels"));
      e->setAfterOsPlus(false);
      e->showSite(0, QStringLiteral("down_proj"), QStringLiteral("input"));
      e->setView(OutlierExplorerPanel::View::Tokens);
      QTimer::singleShot(300, this, [this] {
        shoot(QStringLiteral("explorer_tokens"));
        stepRunsAndCompare();
      });
    });
  });
}

void ScreenshotTour::stepRunsAndCompare() {
  RunsPanel* runs = w_->runsPanel();
  tall(w_->showDockOf(runs));
  const std::vector<qint64> all = [&] {
    std::vector<qint64> ids;
    for (const auto& r : runs::RunStore(runs->runsPath().toStdString()).listRuns())
      if (r.kind == runs::RunKind::Quantize) ids.push_back(r.id);
    return ids;
  }();
  runs->selectRuns(all);
  QTimer::singleShot(300, this, [this, runs] {
    shoot(QStringLiteral("runs"));
    runs->compareButton()->click();
    when([this] { return !w_->compareView()->loading() && w_->compareView()->comparison().runs.size() >= 2; },
         QStringLiteral("the comparison"), 60000, [this] {
           tall(w_->showDockOf(w_->compareView()));
           w_->compareView()->setSeries(QStringLiteral("rel_error"));
           QTimer::singleShot(300, this, [this] {
             shoot(QStringLiteral("compare"));
             stepTuning();
           });
         });
  });
}

void ScreenshotTour::stepTuning() {
  TuningPanel* t = w_->tuningPanel();
  tall(w_->showDockOf(t));
  t->loadPreset(QStringLiteral("quantease-w3-outlier1pct.yaml"));
  t->loadPreset(QStringLiteral("osplus_int6.yaml"));
  QTimer::singleShot(300, this, [this, t] {
    shoot(QStringLiteral("tuning"));
    // The live preview of one block's attention input under these settings.
    const int before = t->previewsShown();
    t->showPreview();
    t->setPreviewPair(0);
    t->setPreviewLayer(3);
    when([t, before] { return t->previewsShown() > before && !t->previewRunner()->busy() && t->previewResult().pair.find("layers.3.") == 0; },
         QStringLiteral("the live preview"), 60000, [this] {
           shoot(QStringLiteral("preview"));
           stepChannels();
         });
  });
}

void ScreenshotTour::stepChannels() {
  // A second analysis on a smaller calibration set (8 windows, another seed's offsets): the
  // channel view across runs shows how much the ranges depend on the calibration sample.
  const int id = w_->startAnalyse(8, 256);
  when([this] { return !w_->jobQueue()->busy(); }, QStringLiteral("the second analysis"), 300000, [this, id] {
    if (w_->jobQueue()->job(id)->state != JobQueue::State::Finished) {
      fail(QStringLiteral("analysis: %1").arg(w_->jobQueue()->job(id)->result));
      return;
    }
    std::vector<qint64> analyses;
    for (const auto& r : runs::RunStore(w_->runsPanel()->runsPath().toStdString()).listRuns())
      if (r.kind == runs::RunKind::Analysis) analyses.insert(analyses.begin(), r.id);  // oldest first
    w_->runsPanel()->refresh();
    w_->runsPanel()->selectRuns(analyses);
    w_->runsPanel()->compareButton()->click();
    when([this] { return !w_->compareView()->loading() && w_->compareView()->comparison().runs.size() >= 2; },
         QStringLiteral("the comparison of the analyses"), 60000, [this] {
           CompareView* c = w_->compareView();
           tall(w_->showDockOf(c));
           c->plotTabs()->setCurrentIndex(1);
           int pick = 0;
           for (size_t i = 0; i < c->channelSites().size(); ++i)
             if (c->channelSites()[i].layer == 3 && c->channelSites()[i].site == "q_proj" && c->channelSites()[i].kind == "input")
               pick = static_cast<int>(i);
           if (c->showChannelSite(pick) < 2) {
             fail(QStringLiteral("the channel view across runs drew nothing"));
             return;
           }
           QTimer::singleShot(300, this, [this] {
             shoot(QStringLiteral("compare_channels"));
             stepExport();
           });
         });
  });
}

void ScreenshotTour::stepExport() {
  // The Export dialog on the OS+ run as GPTQ: what will be written, before anything is.
  qint64 osplusRun = 0;
  for (const auto& r : runs::RunStore(w_->runsPanel()->runsPath().toStdString()).listRuns())
    if (r.kind == runs::RunKind::Quantize && r.configYaml.find("migrate: osplus") != std::string::npos) osplusRun = r.id;
  auto* dialog = new ExportDialog(copy_, osplusRun, w_);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  dialog->selectFormat(QStringLiteral("gptq"));
  dialog->show();
  when([dialog] { return !dialog->planning(); }, QStringLiteral("the export plan"), 60000, [this, dialog] {
    if (!dialog->planError().isEmpty()) {
      fail(QStringLiteral("export plan: %1").arg(dialog->planError()));
      return;
    }
    shootWidget(dialog, QStringLiteral("export_dialog"));
    const int id = w_->startExport(dialog->options());
    dialog->close();
    w_->showDockOf(w_->jobsPanel());
    when([this] { return !w_->jobQueue()->busy(); }, QStringLiteral("the export job"), 300000, [this, id] {
      if (w_->jobQueue()->job(id)->state != JobQueue::State::Finished) {
        fail(QStringLiteral("export: %1").arg(w_->jobQueue()->job(id)->result));
        return;
      }
      Q_EMIT finished(0);
    });
  });
}

}  // namespace qs::ui
