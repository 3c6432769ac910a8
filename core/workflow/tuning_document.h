// The Tuning panel's document, without widgets or LibTorch: a quantize config as YAML
// (`quantize:` section, core/algo/quantize_config.h; what `qscope quantize --config` reads and
// what the Quantize & Evaluate job runs: weight method, activation quantization, outlier
// migration, calibration), and the table of controls the panel shows, each bound to exactly one
// key path of it ("quantize.wbits", "quantize.a_bits", "quantize.migrate"). set() and get() go through the same paths, so a
// control change edits one key and an edited YAML text round-trips into the controls. Whether
// the values are legal is the core's call: tuning_check.h parses each section with the core's
// own parser and returns its message.
#pragma once
#include <string>
#include <vector>

namespace qs::workflow {

struct TuningControl {
  enum class Type { Bool, Int, Double, Percent, Choice };
  std::string key;                   // key path in the document
  std::string group;                 // "Weights", "Activations", "Outlier migration", ...
  std::string label;                 // control label
  Type type = Type::Int;
  std::vector<std::string> choices;  // Choice: the YAML values
  std::vector<std::string> choiceLabels;  // Choice: what the combo shows (same order)
  double min = 0, max = 0;           // Int/Double/Percent range (Percent: in %, the YAML holds the fraction)
  std::string help;                  // tooltip
};

// Every control of the panel, in display order.
const std::vector<TuningControl>& tuningControls();
const TuningControl* findTuningControl(const std::string& key);

class TuningDocument {
 public:
  TuningDocument();  // empty document (every key absent)

  // Replaces the document; "" or the YAML parse error (the document is left unchanged then).
  std::string setYaml(const std::string& text);
  std::string yaml() const;
  // Scalar at a key path as written ("4", "true", "gptq"); "" when absent.
  std::string get(const std::string& key) const;
  bool has(const std::string& key) const;
  // Sets a scalar, creating the maps on the way. Values are stored as typed YAML scalars.
  void set(const std::string& key, const std::string& value);
  // A control's value as the widget shows it: Percent controls give 100 x the stored fraction.
  std::string controlValue(const TuningControl& c) const;
  void setControlValue(const TuningControl& c, const std::string& shown);

  // Merges a preset: each top-level section the preset has (quantize, quant) replaces this
  // document's section; "" or the parse error naming `file`. (OS+ q-config presets, `quant:`,
  // are turned into quantize keys by tuning_check.h's applyTuningPreset.)
  std::string applyPreset(const std::string& text, const std::string& file);
  // One top-level section as a document of its own ("" when absent), e.g. for the quantize job.
  std::string section(const std::string& name) const;

 private:
  std::string text_;  // canonical YAML (emitted), the single source of truth
};

}  // namespace qs::workflow
