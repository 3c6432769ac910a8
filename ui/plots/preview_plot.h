// The Tuning panel's live-preview plot: per input channel of one migration pair, the range
// min..max before OS+ (grey) and after shifting/scaling (colour), side by side, with the searched
// or given threshold ±t. Channels keep their index order so a user can follow one across settings.
#pragma once
#include "core/workflow/layer_preview.h"

class QCustomPlot;

namespace qs::plot {

void renderPreviewRanges(QCustomPlot* plot, const workflow::LayerPreviewResult& r, bool dark);

}  // namespace qs::plot
