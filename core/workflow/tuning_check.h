// The core's verdict on a Tuning panel document (tuning_document.h), behind a torch-free header:
// each section present is parsed by the same function the CLI uses (algo::parseQuantizeConfig for
// `quantize:`, quant::parseQConfig for `quant:`), so the panel shows the very message
// `qscope quantize --config` / `qscope migrate --qconfig` would print.
#pragma once
#include <string>

namespace qs::workflow {

struct TuningCheck {
  std::string error;          // "" when every section is valid; else the core's message
  std::string resolvedYaml;   // the document with the quantize section's every key resolved (when valid)
};

// `name` labels the document in messages ("tuning panel").
TuningCheck checkTuning(const std::string& yaml, const std::string& name = "tuning panel");

// Core defaults: quantize section = toYaml(QuantizeConfig()); quant section = 8-bit per-tensor
// activations with the EMA min/max observer, 8-bit symmetric weights, migrate on.
std::string defaultTuningYaml();

}  // namespace qs::workflow
