// TuningDocument: see tuning_document.h.
#include "core/workflow/tuning_document.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <sstream>

namespace qs::workflow {
namespace {

std::vector<std::string> splitKey(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  std::string p;
  while (std::getline(ss, p, '.')) parts.push_back(p);
  return parts;
}

YAML::Node parse(const std::string& text) {
  YAML::Node n = YAML::Load(text);
  if (n.IsNull()) return YAML::Node(YAML::NodeType::Map);
  return n;
}

std::string emit(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull() || (n.IsMap() && n.size() == 0)) return "";
  YAML::Emitter e;
  e << n;
  return std::string(e.c_str()) + "\n";
}

// Node at a path (undefined when a step is missing or not a map). Walks with reset(): assigning
// one yaml-cpp node to another copies content into the tree instead of moving the cursor.
YAML::Node lookup(const YAML::Node& root, const std::vector<std::string>& parts) {
  YAML::Node cur;
  cur.reset(root);
  for (const auto& p : parts) {
    if (!cur.IsMap()) return YAML::Node();
    const YAML::Node& c = cur;
    const YAML::Node next = c[p];
    if (!next.IsDefined()) return YAML::Node();
    cur.reset(next);
  }
  return cur;
}

std::string trimNumber(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

}  // namespace

const std::vector<TuningControl>& tuningControls() {
  using T = TuningControl::Type;
  static const std::vector<TuningControl> controls = {
      {"quantize.method", "Weights", "Method", T::Choice, {"rtn", "gptq", "quantease", "gptq_quantease"},
       {"RTN", "GPTQ", "QuantEase", "GPTQ + QuantEase"}, 0, 0,
       "Weight quantizer: round-to-nearest, GPTQ, QuantEase coordinate descent, or QuantEase started from GPTQ"},
      {"quantize.wbits", "Weights", "Bits", T::Int, {}, {}, 2, 16, "Weight bits (2..8; 16 = keep FP weights)"},
      {"quantize.groupsize", "Weights", "Group size", T::Int, {}, {}, -1, 65536,
       "Input columns sharing a scale; -1 = one scale per output channel"},
      {"quantize.sym", "Weights", "Symmetric", T::Bool, {}, {}, 0, 0, "Symmetric grid (zero point 0)"},
      {"quantize.act_order", "Weights", "Act-order", T::Bool, {}, {}, 0, 0,
       "GPTQ: quantize columns by decreasing Hessian diagonal"},
      {"quantize.num_iter", "Weights", "Iterations", T::Int, {}, {}, 1, 1000, "QuantEase coordinate-descent sweeps"},
      {"quantize.quantease_init", "Weights", "QuantEase start", T::Choice, {"best", "weights", "rtn", "gptq"},
       {"best of W and GPTQ", "W (reference)", "round to nearest", "GPTQ"}, 0, 0,
       "Where QuantEase's descent starts: best runs one from W and one from GPTQ's rounding and keeps the better "
       "(twice the sweeps); W is the reference implementation's start"},
      {"quantize.outlier", "Weights", "Outliers %", T::Percent, {}, {}, 0, 50,
       "QuantEase: share of weights kept in full precision (1 = 1%)"},
      {"quantize.structured_outlier", "Weights", "Structured", T::Bool, {}, {}, 0, 0,
       "QuantEase outliers as whole input columns"},
      {"quantize.a_bits", "Activations", "Bits", T::Int, {}, {}, 2, 16,
       "Activation fake-quant bits in the quantized evaluation and the OS+ search (16 = FP activations)"},
      {"quantize.a_quantizer", "Activations", "Granularity", T::Choice, {"per_tensor", "per_token", "per_group"},
       {"per tensor (static)", "per token (dynamic)", "per group (dynamic)"}, 0, 0,
       "One calibrated range per tensor, or dynamic ranges per token / per group of channels"},
      {"quantize.a_group_size", "Activations", "Group size", T::Int, {}, {}, 1, 65536, "Channels per group (per group)"},
      {"quantize.a_observer", "Activations", "Observer", T::Choice,
       {"ema_minmax", "minmax", "avg_minmax", "percentile", "mse"},
       {"EMA min/max", "min/max", "average min/max", "percentile", "MSE search"}, 0, 0,
       "How a static (per-tensor) range is calibrated"},
      {"quantize.a_symmetric", "Activations", "Symmetric", T::Bool, {}, {}, 0, 0, "Signed grid with zero point 0"},
      {"quantize.migrate", "Outlier migration", "Method", T::Choice, {"none", "osplus", "smoothquant"},
       {"none", "OS+ (shift + scale)", "SmoothQuant"}, 0, 0,
       "Folded into the FP model before the weight method: OS+ channel shifting and searched scaling, or SmoothQuant"},
      {"quantize.osplus_shift", "Outlier migration", "OS+ shift", T::Bool, {}, {}, 0, 0,
       "OS+ channel shifting z = (max + min) / 2 (asymmetry); off = scaling only"},
      {"quantize.osplus_scale", "Outlier migration", "OS+ scale", T::Bool, {}, {}, 0, 0,
       "OS+ channel scaling s = max(1, r / t) (concentration); off = shifting only"},
      {"quantize.osplus_threshold", "Outlier migration", "OS+ threshold", T::Double, {}, {}, 0, 1e6,
       "Fixed OS+ clipping threshold t; 0 = searched over the OS+ search steps"},
      {"quantize.osplus_search_steps", "Outlier migration", "OS+ search steps", T::Int, {}, {}, 1, 100000,
       "Threshold candidates - 1 between the smallest and largest channel range"},
      {"quantize.osplus_search", "Outlier migration", "OS+ search", T::Choice, {"refine", "grid"},
       {"coarse to fine (~20 candidates)", "every candidate"}, 0, 0,
       "How the threshold grid is searched: about ten coarse candidates then halving steps around the best "
       "(fast on 7B models), or every candidate (the paper's search)"},
      {"quantize.osplus_search_tokens", "Outlier migration", "OS+ search tokens", T::Int, {}, {}, 16, 10000000,
       "Calibration tokens per migration pair the threshold search evaluates"},
      {"quantize.osplus_value_out", "Outlier migration", "Value → output", T::Bool, {}, {}, 0, 0,
       "Also migrate the value projection into the attention output projection"},
      {"quantize.sq_alpha", "Outlier migration", "SmoothQuant α", T::Double, {}, {}, 0, 1, "SmoothQuant migration strength"},
      {"quantize.nsamples", "Calibration and evaluation", "Samples", T::Int, {}, {}, 1, 100000, "Calibration sequences"},
      {"quantize.seqlen", "Calibration and evaluation", "Length", T::Int, {}, {}, 2, 131072, "Tokens per calibration sequence"},
      {"quantize.eval_limit_windows", "Calibration and evaluation", "Eval windows", T::Int, {}, {}, 0, 1000000,
       "Score only the first N perplexity windows (0 = all)"},
  };
  return controls;
}

const TuningControl* findTuningControl(const std::string& key) {
  for (const auto& c : tuningControls())
    if (c.key == key) return &c;
  return nullptr;
}

TuningDocument::TuningDocument() = default;

std::string TuningDocument::setYaml(const std::string& text) {
  try {
    YAML::Node n = parse(text);
    if (!n.IsMap()) return "tuning YAML: the document must be a map with 'quantize:' and/or 'quant:' sections";
    text_ = emit(n);
  } catch (const YAML::Exception& e) {
    return "tuning YAML: line " + std::to_string(e.mark.line + 1) + ": " + e.msg;
  }
  return "";
}

std::string TuningDocument::yaml() const { return text_; }

bool TuningDocument::has(const std::string& key) const {
  YAML::Node n = lookup(parse(text_), splitKey(key));
  return n.IsDefined() && n.IsScalar();
}

std::string TuningDocument::get(const std::string& key) const {
  YAML::Node n = lookup(parse(text_), splitKey(key));
  return n.IsDefined() && n.IsScalar() ? n.Scalar() : "";
}

void TuningDocument::set(const std::string& key, const std::string& value) {
  YAML::Node root = parse(text_);
  const auto parts = splitKey(key);
  YAML::Node cur;
  cur.reset(root);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child;
    child.reset(cur[parts[i]]);
    if (!child.IsMap()) {
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child.reset(cur[parts[i]]);
    }
    cur.reset(child);
  }
  cur[parts.back()] = value;
  text_ = emit(root);
}

std::string TuningDocument::controlValue(const TuningControl& c) const {
  const std::string v = get(c.key);
  if (c.type != TuningControl::Type::Percent || v.empty()) return v;
  try {
    return trimNumber(std::stod(v) * 100.0);
  } catch (const std::exception&) {
    return v;  // not a number: the check reports it
  }
}

void TuningDocument::setControlValue(const TuningControl& c, const std::string& shown) {
  if (c.type == TuningControl::Type::Percent) {
    set(c.key, trimNumber(std::stod(shown) / 100.0));
    return;
  }
  set(c.key, shown);
}

std::string TuningDocument::applyPreset(const std::string& text, const std::string& file) {
  YAML::Node preset;
  try {
    preset = parse(text);
  } catch (const YAML::Exception& e) {
    return file + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg;
  }
  if (!preset.IsMap() || (!preset["quantize"] && !preset["quant"]))
    return file + ": a preset needs a 'quantize:' or 'quant:' section";
  YAML::Node root = parse(text_);
  for (const char* s : {"quantize", "quant"})
    if (preset[s]) root[s] = preset[s];
  text_ = emit(root);
  return "";
}

std::string TuningDocument::section(const std::string& name) const {
  YAML::Node root = parse(text_);
  if (!root.IsMap() || !root[name]) return "";
  YAML::Node out(YAML::NodeType::Map);
  out[name] = root[name];
  return emit(out);
}

}  // namespace qs::workflow
