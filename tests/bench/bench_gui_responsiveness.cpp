// Whether the GUI stays responsive while a job runs on a large model (issue 15): opens the main
// window (offscreen), times opening a model folder, opens a project on it, starts a job (analyse,
// or quantize with the project's/tuning panel's config) and, while it runs, ticks a 10 ms timer on
// the main thread and reports the longest gap between ticks (what a user would feel as a freeze),
// alongside the job's own time. Prints one markdown row. Not a unit test: a measurement for
// docs/BENCHMARKS.md.
//
//   bench_gui_responsiveness MODEL_FOLDER [--job analyse|quantize] [--seconds 60] [--config cfg.yaml]
#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QTemporaryDir>
#include <QTimer>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "core/runs/project.h"
#include "ui/job_queue.h"
#include "ui/main_window.h"
#include "ui/tuning_panel.h"

int main(int argc, char** argv) {
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_gui_responsiveness MODEL_FOLDER [--job analyse|quantize] [--seconds S] "
                         "[--config cfg.yaml]\n");
    return 2;
  }
  const std::string model = argv[1];
  std::string job = "analyse", config;
  int seconds = 60;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--job") && i + 1 < argc) job = argv[++i];
    else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
  }
  QApplication app(argc, argv);
  QTemporaryDir scratch;
  qs::ui::MainWindow w;
  w.setErrorDialogsEnabled(false);
  w.resize(1400, 900);
  w.show();

  // Opening the folder: the model tree and summary, from headers.
  QElapsedTimer open;
  open.start();
  w.openModel(QString::fromStdString(model));
  {
    QEventLoop loop;
    QTimer poll;
    QObject::connect(&poll, &QTimer::timeout, &loop, [&] { if (w.summary()) loop.quit(); });
    poll.start(1);
    QTimer::singleShot(60000, &loop, &QEventLoop::quit);
    loop.exec();
  }
  const qint64 openMs = open.elapsed();

  const std::string proj = scratch.path().toStdString() + "/project";
  qs::runs::Project::init(proj, model, "responsiveness");
  if (!w.openProject(QString::fromStdString(proj)).isEmpty()) {
    std::fprintf(stderr, "could not open the project\n");
    return 1;
  }
  if (!config.empty()) {
    QFile f(QString::fromStdString(config));
    if (!f.open(QIODevice::ReadOnly) || !w.tuningPanel()->setYaml(QString::fromUtf8(f.readAll())).isEmpty()) {
      std::fprintf(stderr, "could not load %s into the tuning panel\n", config.c_str());
      return 1;
    }
  }
  const int id = job == "quantize" ? w.startQuantize() : w.startAnalyse(8, 512);
  if (id <= 0) {
    std::fprintf(stderr, "the job did not start\n");
    return 1;
  }
  // The main thread's tick: the gap between 10 ms ticks while the job runs.
  QElapsedTimer clock, total;
  clock.start();
  total.start();
  qint64 worst = 0, ticks = 0;
  QEventLoop loop;
  QTimer tick;
  QObject::connect(&tick, &QTimer::timeout, &loop, [&] {
    worst = std::max(worst, clock.restart());
    ++ticks;
    if (!w.jobQueue()->busy() || total.elapsed() > seconds * 1000) loop.quit();
  });
  tick.start(10);
  loop.exec();
  const bool finished = !w.jobQueue()->busy();
  const qs::ui::JobQueue::Job* j = w.jobQueue()->job(id);
  std::printf("| %s | open %lld ms | %s job %s after %.0f s | %lld ticks, longest gap %lld ms |\n", model.c_str(),
              static_cast<long long>(openMs), job.c_str(), finished ? "finished" : "still running",
              total.elapsed() / 1000.0, static_cast<long long>(ticks), static_cast<long long>(worst));
  if (j && finished) std::printf("  job: %s\n", j->result.toStdString().c_str());
  // A running job is cancelled and joined when the window goes.
  return 0;
}
