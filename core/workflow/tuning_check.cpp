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
    const std::string q = doc.section("quantize");
    const std::string a = doc.section("quant");
    if (q.empty() && a.empty()) throw Error(name + ": needs a 'quantize:' or 'quant:' section");
    std::string resolved;
    if (!q.empty()) resolved += algo::toYaml(algo::parseQuantizeConfig(q, name));
    if (!a.empty()) {
      quant::parseQConfig(a, name);
      resolved += a;
    }
    TuningDocument r;
    r.setYaml(resolved);
    out.resolvedYaml = r.yaml();
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

std::string defaultTuningYaml() {
  return algo::toYaml(algo::QuantizeConfig()) +
         "quant:\n"
         "  a_qconfig:\n"
         "    quantizer: FixedFakeQuantize\n"
         "    observer: EMAMinMaxObserver\n"
         "    bit: 8\n"
         "    symmetric: false\n"
         "    ch_axis: -1\n"
         "  w_qconfig:\n"
         "    quantizer: FixedFakeQuantize\n"
         "    observer: MinMaxObserver\n"
         "    bit: 8\n"
         "    symmetric: true\n"
         "    ch_axis: 0\n"
         "  migrate: true\n";
}

}  // namespace qs::workflow
