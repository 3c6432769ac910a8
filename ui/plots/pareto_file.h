// `qscope plot pareto` without Qt in its interface: renders a mixed-precision search's trials and
// Pareto front (bits per weight against perplexity) to a PNG/SVG/PDF file, creating an offscreen
// QApplication when none exists. Plain C++ so the CLI's LibTorch translation units can include it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qs::plot {

struct ParetoPoint {
  double bits = 0;         // x: average bits per weight
  double ppl = 0;          // y: perplexity
  bool front = false;      // on the Pareto front
  bool feasible = true;    // constraints held
  int trial = 0;
  int64_t runId = 0;
};

struct ParetoFileRequest {
  std::vector<ParetoPoint> points;
  std::string output;              // .png, .svg or .pdf
  int width = 1000, height = 640;  // pixels (SVG: user units)
  double scale = 1.0;              // PNG device pixel ratio
  std::string title;               // "Pareto front · search s-1234"
  std::string subtitle;            // "24 trials, 7 on the front; perplexity on wikitext2 ..."
  std::string yLabel = "perplexity";
  bool logY = false;               // log-scale perplexity axis
  bool labels = true;              // trial numbers next to front points
  bool dark = false;
};

struct ParetoFileResult {
  std::string description;  // "24 trials, 7 on the front"
};

// Throws qs::Error with a clear message (no points, bad extension or size, unwritable file).
ParetoFileResult renderParetoFile(const ParetoFileRequest& request);

}  // namespace qs::plot
