// The core's verdict on a Tuning panel document (tuning_document.h), behind a torch-free header:
// the quantize section is parsed by the function `qscope quantize --config` uses
// (algo::parseQuantizeConfig), so the panel shows the very message the CLI would print.
#pragma once
#include <string>

namespace qs::workflow {

struct TuningCheck {
  std::string error;          // "" when every section is valid; else the core's message
  std::string resolvedYaml;   // the document with the quantize section's every key resolved (when valid)
  std::string label;          // the config's run label ("W4A6 gptq w4 g32 +OS+"; when valid)
};

// `name` labels the document in messages ("tuning panel").
TuningCheck checkTuning(const std::string& yaml, const std::string& name = "tuning panel");

// Core defaults: toYaml(QuantizeConfig()).
std::string defaultTuningYaml();

// Applies a preset file's text to the document `yaml`: a `quantize:` preset replaces the section;
// an OS+ q-config (`quant:` with a_qconfig/w_qconfig, resources/presets/osplus_*.yaml) is mapped
// onto quantize keys as `qscope quantize --qconfig` maps it (a_qconfig -> a_*, w_qconfig -> the
// weight grid, migrate: True -> osplus). Returns the new resolved document; throws qs::Error
// naming `file` and the key.
std::string applyTuningPreset(const std::string& yaml, const std::string& presetText, const std::string& file);

}  // namespace qs::workflow
