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
    // As `qscope quantize --qconfig`: a_qconfig -> activations, w_qconfig -> the weight grid's
    // bit/symmetric/ch_axis/observer, except_quantizer, and migrate: true -> OS+.
    const quant::QConfig q = quant::parseQConfig(presetText, file);
    c.act = q.act;
    const int group = c.layer.spec.groupSize;
    const bool actOrder = c.layer.spec.actOrder, staticGroups = c.layer.spec.staticGroups;
    c.layer.spec = q.weight;
    if (q.weight.groupSize <= 0) c.layer.spec.groupSize = group;
    c.layer.spec.actOrder = actOrder;
    c.layer.spec.staticGroups = staticGroups;
    c.exceptQuantizer = q.exceptQuantizer;
    c.migrate = q.migrate ? algo::Migration::OsPlus : algo::Migration::None;
    c.validate();
  } else {
    throw Error(file + ": a preset needs a 'quantize:' or 'quant:' section");
  }
  return algo::toYaml(c);
}

}  // namespace qs::workflow
