// checkTuning / defaultTuningYaml: see tuning_check.h.
#include "core/workflow/tuning_check.h"

#include "core/algo/quantize_config.h"
#include "core/quant/qconfig_yaml.h"
#include "core/util/error.h"
#include "core/workflow/tuning_document.h"

namespace qs::workflow {

TuningCheck checkTuning(const std::string& yaml, const std::string& name) {
  TuningCheck out;
  TuningDocument doc;
  out.error = doc.setYaml(yaml);
  if (!out.error.empty()) return out;
  try {
    if (doc.section("quantize").empty()) throw Error(name + ": needs a 'quantize:' section");
    if (!doc.section("quant").empty())
      throw Error(name + ": key 'quant': an OS+ q-config is not part of a quantize config; load it as a preset "
                         "(its a_qconfig/w_qconfig/migrate become quantize keys)");
    // The whole document, so a stray top-level key is reported as the CLI would.
    const algo::QuantizeConfig c = algo::parseQuantizeConfig(doc.yaml(), name);
    out.resolvedYaml = algo::toYaml(c);
    out.label = c.label();
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

std::string defaultTuningYaml() { return algo::toYaml(algo::QuantizeConfig()); }

std::string applyTuningPreset(const std::string& yaml, const std::string& presetText, const std::string& file) {
  TuningDocument preset;
  const std::string parseError = preset.setYaml(presetText);
  if (!parseError.empty()) throw Error(file + ": " + parseError);
  TuningDocument doc;
  doc.setYaml(yaml);
  const std::string current = doc.section("quantize");
  algo::QuantizeConfig c = current.empty() ? algo::QuantizeConfig() : algo::parseQuantizeConfig(current, "tuning panel");
  if (!preset.section("quantize").empty()) {
    c = algo::parseQuantizeConfig(preset.section("quantize"), file);
  } else if (!preset.section("quant").empty()) {
    // As `qscope quantize --qconfig`.
    algo::applyQConfig(c, quant::parseQConfig(presetText, file));
    c.validate();
  } else {
    throw Error(file + ": a preset needs a 'quantize:' or 'quant:' section");
  }
  return algo::toYaml(c);
}

}  // namespace qs::workflow
