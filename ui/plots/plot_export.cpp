// plot_export: see plot_export.h.
#include "ui/plots/plot_export.h"

#include <QApplication>
#include <QFileInfo>
#include <QSvgGenerator>

#include "core/util/error.h"
#include "ui/qcustomplot_include.h"

namespace qs::plot {

bool isPlotFileName(const QString& path) {
  const QString ext = QFileInfo(path).suffix().toLower();
  return ext == QLatin1String("png") || ext == QLatin1String("svg") || ext == QLatin1String("pdf");
}

QString savePlot(QCustomPlot* plot, const QString& path, int width, int height, double scale) {
  if (width <= 0) width = plot->width();
  if (height <= 0) height = plot->height();
  const QString ext = QFileInfo(path).suffix().toLower();
  bool ok = false;
  if (ext == QLatin1String("png")) {
    ok = plot->savePng(path, width, height, scale);
  } else if (ext == QLatin1String("pdf")) {
    ok = plot->savePdf(path, width, height);
  } else if (ext == QLatin1String("svg")) {
    QSvgGenerator svg;
    svg.setFileName(path);
    svg.setSize(QSize(width, height));
    svg.setViewBox(QRect(0, 0, width, height));
    svg.setTitle(QStringLiteral("QuantScope plot"));
    QCPPainter painter;
    if (painter.begin(&svg)) {
      plot->toPainter(&painter, width, height);
      ok = painter.end();
    }
  } else {
    return QStringLiteral("%1: unsupported plot format '.%2' (use .png, .svg or .pdf)").arg(path, ext);
  }
  if (!ok) return QStringLiteral("%1: could not write the plot (is the folder writable?)").arg(path);
  return QString();
}

namespace {

QtMessageHandler previousHandler = nullptr;

// Offscreen Qt chatter that says nothing about the plot ("XDG_RUNTIME_DIR not set") stays off
// the CLI's stderr; everything else goes through.
void quietQtMessages(QtMsgType type, const QMessageLogContext& context, const QString& message) {
  if (type < QtCriticalMsg && (message.startsWith(QLatin1String("QStandardPaths:")) ||
                               message.contains(QLatin1String("propagateSizeHints"))))
    return;
  if (previousHandler) previousHandler(type, context, message);
}

void ensureApplication() {
  if (QCoreApplication::instance()) return;
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  previousHandler = qInstallMessageHandler(quietQtMessages);
  static int argc = 1;
  static char name[] = "qscope";
  static char* argv[] = {name, nullptr};
  static QApplication* app = new QApplication(argc, argv);
  (void)app;
}

}  // namespace

QString prepareFilePlot(const std::string& output, int width, int height) {
  const QString out = QString::fromStdString(output);
  if (!isPlotFileName(out)) throw Error(output + ": the output must end in .png, .svg or .pdf");
  if (width < 200 || height < 150 || width > 10000 || height > 10000)
    throw Error("plot size " + std::to_string(width) + "x" + std::to_string(height) +
                " is out of range (200x150 to 10000x10000)");
  ensureApplication();
  return out;
}

}  // namespace qs::plot
