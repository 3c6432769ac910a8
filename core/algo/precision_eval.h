// Emulating a per-layer precision config (core/quant/layer_precision.h) on a model of any
// family: each site's weight is replaced by its quantize-dequantized copy and each site's input
// goes through its input format right before the Linear (Model::setInputTransform). Nothing is
// calibrated: every format here takes its scale from the tensor itself (a block's shared
// exponent, the int kind's observed range), so a config evaluates in one pass.
//
// PrecisionEmulator keeps a float copy of every weight it changes, so one model can evaluate
// config after config (the search) and be restored exactly; peak memory is about two copies of
// the quantized sites' weights.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/jobs/progress.h"
#include "core/quant/layer_precision.h"

namespace qs::model {
class Model;
struct SiteInfo;
}  // namespace qs::model

namespace qs::algo {

// Cost of a config on a model's sites. "none" counts as float32 (32 bits), the baseline of
// formatDensity(); an int format's float32 scale is amortised over a row (per_channel/per_token).
struct PrecisionSummary {
  struct Site {
    std::string name;
    quant::NumberFormat weight, input;
    int rule = -1;                 // the rule that matched; -1 = the default
    int64_t weightElements = 0;    // out * in
    double weightBits = 32;        // bits per weight element
    double inputBits = 32;         // bits per input element
  };
  std::vector<Site> sites;
  double weightBits = 32;          // average bits per weight, weighted by element count
  double inputBits = 32;           // average bits per input element, weighted by in-features
  double weightArithmeticDensity = 1;  // element-weighted mean of formatDensity().arithmeticDensity
  int64_t weightElements = 0;
  std::vector<int> unusedRules;    // rules no site matches (typos)

  // "weights 6.50 bits (4.9x), inputs 6.50 bits over 12 sites"
  std::string describe() const;
};

PrecisionSummary summarizePrecision(const std::vector<model::SiteInfo>& sites, const quant::LayerPrecision& lp);

class PrecisionEmulator {
 public:
  explicit PrecisionEmulator(model::Model& model) : model_(model) {}
  ~PrecisionEmulator();  // restore()
  PrecisionEmulator(const PrecisionEmulator&) = delete;
  PrecisionEmulator& operator=(const PrecisionEmulator&) = delete;

  // Quantizes every site's weight by its format (sites whose format is none get their original
  // back) and installs the input transform. Reports progress per site; throws qs::Cancelled.
  PrecisionSummary apply(const quant::LayerPrecision& lp, jobs::Progress& progress = jobs::Progress::none());
  // Original weights back, input transform removed.
  void restore();

 private:
  model::Model& model_;
};

}  // namespace qs::algo
