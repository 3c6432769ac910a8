// quantscope: the GUI. `quantscope [MODEL_PATH]` opens the window (and the model);
// `quantscope --screenshot out.png [MODEL_PATH]` opens the model, waits until it is loaded,
// saves a grab of the window and exits (for the README and for looking at layout changes);
// `quantscope --screenshots DIR [--project P]` runs a real session on a scratch copy of project P
// (default projects/stories260k) and saves every main view as DIR/*.png (docs/screenshots).
#include <QApplication>
#include <QCommandLineParser>
#include <QSettings>
#include <QTemporaryDir>
#include <QTimer>

#include <cstdio>

#include "ui/main_window.h"
#include "ui/model_tree_panel.h"
#include "ui/screenshot_tour.h"
#include "ui/theme.h"

namespace {

int saveScreenshot(QWidget& window, const QString& file) {
  const QPixmap pixmap = window.grab();
  if (!pixmap.save(file)) {
    std::fprintf(stderr, "quantscope: could not write %s\n", qPrintable(file));
    return 1;
  }
  std::fprintf(stderr, "quantscope: wrote %s (%dx%d)\n", qPrintable(file), pixmap.width(), pixmap.height());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QCoreApplication::setOrganizationName(QStringLiteral("QuantScope"));
  QCoreApplication::setApplicationName(QStringLiteral("QuantScope"));
  QCoreApplication::setApplicationVersion(QStringLiteral("0.1.0"));

  QCommandLineParser parser;
  parser.setApplicationDescription(QStringLiteral("QuantScope: post-training quantization workbench for LLMs"));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument(QStringLiteral("MODEL_PATH"),
                               QStringLiteral("Hugging Face model folder or .gguf file to open"), QStringLiteral("[MODEL_PATH]"));
  QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                QStringLiteral("Open MODEL_PATH, save a PNG of the window to FILE and exit."),
                                QStringLiteral("FILE"));
  QCommandLineOption theme(QStringLiteral("theme"), QStringLiteral("Palette: light or dark."), QStringLiteral("NAME"));
  QCommandLineOption filter(QStringLiteral("filter"), QStringLiteral("Initial model tree filter text."),
                            QStringLiteral("TEXT"));
  QCommandLineOption screenshots(QStringLiteral("screenshots"),
                                 QStringLiteral("Run analyse, quantize and compare on a scratch copy of --project and "
                                                "save a PNG of every main view into DIR, then exit."),
                                 QStringLiteral("DIR"));
  QCommandLineOption project(QStringLiteral("project"),
                             QStringLiteral("Project folder to open (with --screenshots: whose model and data to use)."),
                             QStringLiteral("DIR"));
  parser.addOptions({screenshot, screenshots, project, theme, filter});
  parser.process(app);

  const QString modelPath = parser.positionalArguments().value(0);
  const QString shotFile = parser.value(screenshot);
  const QString tourDir = parser.value(screenshots);

  // A screenshot must not depend on (or change) the user's saved layout, recent list or theme.
  QTemporaryDir scratchSettings;
  if (!shotFile.isEmpty() || !tourDir.isEmpty()) {
    QSettings::setDefaultFormat(QSettings::IniFormat);
    QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, scratchSettings.path());
  }

  qs::ui::MainWindow window;
  if (parser.isSet(theme)) window.setTheme(qs::ui::themeFromName(parser.value(theme)));
  if (!shotFile.isEmpty() || !tourDir.isEmpty()) {
    window.setErrorDialogsEnabled(false);
    window.resize(1400, 900);
  }
  window.show();

  if (!tourDir.isEmpty()) {
    QTemporaryDir scratch;
    const QString source = parser.isSet(project) ? parser.value(project) : QStringLiteral("projects/stories260k");
    qs::ui::ScreenshotTour tour(&window, tourDir, source, scratch.path());
    QObject::connect(&tour, &qs::ui::ScreenshotTour::finished, &app, [&](int code) { QCoreApplication::exit(code); });
    QTimer::singleShot(0, &tour, &qs::ui::ScreenshotTour::start);
    return app.exec();
  }
  if (parser.isSet(project)) window.openProject(parser.value(project));

  if (!shotFile.isEmpty()) {
    QObject::connect(&window, &qs::ui::MainWindow::modelLoaded, &app, [&] {
      if (parser.isSet(filter)) window.treePanel()->setFilterText(parser.value(filter));
      // One turn of the event loop so layouts settle before the grab.
      QTimer::singleShot(100, &app, [&] { QCoreApplication::exit(saveScreenshot(window, shotFile)); });
    });
    QObject::connect(&window, &qs::ui::MainWindow::modelLoadFailed, &app, [&](const QString&, const QString& message) {
      std::fprintf(stderr, "quantscope: %s\n", qPrintable(message));
      QTimer::singleShot(100, &app, [&] { saveScreenshot(window, shotFile); QCoreApplication::exit(1); });
    });
    if (modelPath.isEmpty())
      QTimer::singleShot(100, &app, [&] { QCoreApplication::exit(saveScreenshot(window, shotFile)); });
  }
  if (!modelPath.isEmpty()) window.openModel(modelPath);
  return app.exec();
}
