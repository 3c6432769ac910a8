// `quantscope --screenshots DIR`: drives the main window through a real session on a scratch
// copy of a project — open it, run Analyse and two Quantize & evaluate jobs (the second captured
// while it runs), open the explorer's views, select and compare the two runs, show the Tuning
// panel and its live preview, overlay the channel ranges of a site across two analyses, open
// the Export dialog and run the export — and saves a PNG of the window (or dialog) at each step (docs/screenshots in the repository). Every
// number in the images is computed on the spot; nothing is staged.
#pragma once
#include <QObject>
#include <QString>
#include <QStringList>

#include <functional>

class QDockWidget;
class QWidget;

namespace qs::ui {

class MainWindow;

class ScreenshotTour : public QObject {
  Q_OBJECT

 public:
  // `project`: the project whose model and data the tour uses (its runs.sqlite is not touched;
  // the tour works in a scratch copy under `scratchDir`).
  ScreenshotTour(MainWindow* window, QString outDir, QString project, QString scratchDir, QObject* parent = nullptr);
  void start();
  QStringList written() const { return written_; }

 Q_SIGNALS:
  void finished(int exitCode);

 private:
  void fail(const QString& message);
  void tall(QDockWidget* dock);
  bool shoot(const QString& name);
  bool shootWidget(QWidget* widget, const QString& name);
  // Calls next() once done() holds (polled), or fails with `what` after timeoutMs.
  void when(std::function<bool()> done, const QString& what, int timeoutMs, std::function<void()> next);
  QString quantizeYaml(const QString& migrate) const;
  void stepAnalyse();
  void stepQuantize();
  void stepExplorer();
  void stepRunsAndCompare();
  void stepTuning();
  void stepChannels();
  void stepExport();

  MainWindow* w_;
  QString out_, project_, scratch_, copy_;
  QStringList written_;
  int q1_ = 0, q2_ = 0;
};

}  // namespace qs::ui
