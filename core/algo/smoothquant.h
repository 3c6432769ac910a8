// SmoothQuant (Xiao et al., 2023), the baseline OS+ is compared with: per-channel scales
// s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha) (max over every consumer's column j), migrated
// into the norm before the consumers exactly as OS+'s scaling is (model/migration.h), with no
// shift and no search. Applied to the norm -> Linear pairs, as in the paper.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "core/algo/os_plus.h"
#include "core/jobs/progress.h"

namespace qs::model {
class Model;
}

namespace qs::algo {

struct SmoothQuantOptions {
  double alpha = 0.5;            // migration strength: 0 = all difficulty stays in x, 1 = all in W
  bool valueOut = false;         // also smooth value -> output projection pairs (not in the paper)
  double minScale = 1e-5;        // floor of s and of the maxima (channels that are all zero)

  SmoothQuantOptions& withAlpha(double v) { alpha = v; return *this; }
  SmoothQuantOptions& withValueOut(bool v) { valueOut = v; return *this; }
};

struct SmoothQuantPair {
  std::string name;                  // "layers.3.ln1"
  at::Tensor scale;                  // [in] float32
  double maxAbsBefore = 0, maxAbsAfter = 0;
};

// s from activation abs-max xMax [in] and the consumers' weights ([out, in] each).
at::Tensor smoothQuantScales(const at::Tensor& xMax, const std::vector<at::Tensor>& weights,
                             const SmoothQuantOptions& options);

// Calibrates max|x| per channel on samples [N, T] and folds the scales into every pair, block by
// block in one pass as applyOsPlus does (a streamed model holds one block); `observe` and
// statTokens as there (os_plus.h).
std::vector<SmoothQuantPair> applySmoothQuant(model::Model& model, const at::Tensor& samples,
                                              const SmoothQuantOptions& options,
                                              jobs::Progress& progress = jobs::Progress::none(),
                                              const PairObserver& observe = {}, int64_t statTokens = 0);

}  // namespace qs::algo
