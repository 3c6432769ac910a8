// A QApplication for the ui tests, created on first use (not in the shared test main) with the
// offscreen platform unless QT_QPA_PLATFORM says otherwise, and with scratch QSettings so tests
// never touch the user's layout or recent list.
#pragma once
#include <QApplication>
#include <QEventLoop>
#include <QSettings>
#include <QTimer>
#include <QWidget>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <functional>

#include "tests/support/test_paths.h"

namespace qs::test {

inline QApplication& uiApp() {
  static int argc = 1;
  static char name[] = "test_ui";
  static char* argv[] = {name, nullptr};
  static QApplication* app = [] {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    QSettings::setDefaultFormat(QSettings::IniFormat);
    QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, QString::fromStdString(tempDir("ui_settings")));
    auto* a = new QApplication(argc, argv);
    QCoreApplication::setOrganizationName(QStringLiteral("QuantScopeTests"));
    QCoreApplication::setApplicationName(QStringLiteral("test_ui"));
    return a;
  }();
  return *app;
}

// Runs the event loop until done() holds or timeoutMs passes; returns done().
inline bool waitUntil(const std::function<bool()>& done, int timeoutMs = 10000) {
  QEventLoop loop;
  QTimer poll;
  QObject::connect(&poll, &QTimer::timeout, &loop, [&] { if (done()) loop.quit(); });
  poll.start(5);
  QTimer::singleShot(timeoutMs, &loop, &QEventLoop::quit);
  if (!done()) loop.exec();
  return done();
}


// Shows `w`, lets it lay out and paint, and saves it as `name` in `dir` (QS_SHOT_DIR overrides) for
// a person to look at; prints the path. Returns whether the PNG was written.
inline bool saveScreenshot(QWidget& w, const std::string& dir, const std::string& name) {
  w.show();
  waitUntil([] { return false; }, 200);
  const char* shots = std::getenv("QS_SHOT_DIR");
  const std::string png = (shots ? std::string(shots) : dir) + "/" + name;
  const bool ok = w.grab().save(QString::fromStdString(png));
  std::printf("screenshot: %s\n", png.c_str());
  return ok;
}

}  // namespace qs::test
