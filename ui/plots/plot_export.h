// Writes a QCustomPlot to a file by extension: .png (at the requested size and a pixel ratio
// for crisp text), .svg (vector, via QSvgGenerator) or .pdf.
#pragma once
#include <QString>

#include <string>

class QCustomPlot;

namespace qs::plot {

// Returns "" on success, else a message naming the file. width/height <= 0: the widget's size.
QString savePlot(QCustomPlot* plot, const QString& path, int width, int height, double scale = 1.0);
// True for the extensions savePlot understands.
bool isPlotFileName(const QString& path);

// For the CLI's file renderers (plot_file, pareto_plot): checks the output's extension and the
// size (200x150 to 10000x10000), throwing qs::Error, then makes sure a QApplication exists
// (QCustomPlot is a QWidget; without a display the offscreen platform renders into memory, and
// its start-up chatter stays off stderr). Returns the output as a QString.
QString prepareFilePlot(const std::string& output, int width, int height);

}  // namespace qs::plot
