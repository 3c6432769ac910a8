#include "core/algo/quantize_config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/config/yaml_helpers.h"
#include "core/eval/tasks.h"
#include "core/quant/format_yaml.h"
#include "core/quant/qconfig_yaml.h"
#include "core/util/error.h"
#include "core/util/strings.h"

namespace qs::algo {
namespace {

constexpr const char* kSection = "quantize";
std::string mixTargetList();  // "Q5_K_M, Q5_K_S, ...", below with the target tables

// Shortest text that reads back as the same double (0.01, not 0.010000000000000000208).
std::string fmt(double v) {
  char buf[32];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// Keys the run config uses, mapped onto QuantSpec's OS+-style names.
void checkKey(bool ok, const std::string& key, const std::string& message) {
  if (!ok) throw Error(key + ": " + message);
}

// "a, b,,c" -> {"a", "b", "c"}.
std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = s.find(',', start);
    const std::string item = str::trim(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (!item.empty()) out.push_back(item);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

const char* aQuantizerName(quant::Granularity g) {
  return g == quant::Granularity::PerToken ? "per_token" : g == quant::Granularity::PerGroup ? "per_group" : "per_tensor";
}

quant::Granularity parseAQuantizer(const std::string& v) {
  const std::string l = str::toLower(v);
  if (l == "per_tensor" || l == "fixedfakequantize") return quant::Granularity::PerTensor;
  if (l == "per_token" || l == "tokenfixedfakequantize") return quant::Granularity::PerToken;
  if (l == "per_group" || l == "groupfixedfakequantize") return quant::Granularity::PerGroup;
  throw Error("a_quantizer: '" + v + "' is not supported (per_tensor, per_token, per_group)");
}

}  // namespace

const char* migrationName(Migration m) {
  switch (m) {
    case Migration::None: return "none";
    case Migration::OsPlus: return "osplus";
    case Migration::SmoothQuant: return "smoothquant";
  }
  return "?";
}

Migration parseMigration(const std::string& name) {
  const std::string l = str::toLower(name);
  if (l == "none" || l.empty()) return Migration::None;
  if (l == "osplus" || l == "os+") return Migration::OsPlus;
  if (l == "smoothquant") return Migration::SmoothQuant;
  throw Error("migrate: '" + name + "' is not supported (none, osplus, smoothquant)");
}

QuantizeConfig::QuantizeConfig() {
  layer.method = Method::Gptq;
  layer.spec.bits = 4;
  layer.spec.symmetric = false;
  layer.spec.groupSize = -1;
  act.bits = 16;  // activations stay floating point unless asked
}

const std::vector<std::string>& quantizeConfigKeys() {
  static const std::vector<std::string> keys = {
      "method", "wbits", "groupsize", "sym", "act_order", "static_groups", "observer", "percdamp", "blocksize",
      "num_iter", "outlier", "structured_outlier", "alpha", "quantease_init", "relaxed_sweeps", "true_sequential", "calibrate_rtn", "batch_size", "nsamples", "seqlen",
      "seed", "dataset", "eval", "eval_seqlen", "eval_limit_windows", "eval_tasks", "eval_tasks_limit", "migrate", "a_bits", "a_quantizer",
      "a_group_size", "a_symmetric", "a_observer", "except_quantizer", "sq_alpha", "osplus_search_steps",
      "osplus_search", "osplus_search_tokens", "osplus_value_out", "osplus_shift", "osplus_scale", "osplus_threshold", "precision", "gguf_mix"};
  return keys;
}

void QuantizeConfig::validate() const {
  const auto& s = layer.spec;
  checkKey((s.bits >= 2 && s.bits <= 8) || s.bits == 16, "wbits",
           std::to_string(s.bits) + " is not supported (2..8, or 16 = not quantized)");
  checkKey(s.groupSize == -1 || s.groupSize > 0, "groupsize",
           std::to_string(s.groupSize) + " must be positive, or -1 for per output channel");
  checkKey(!s.staticGroups || s.groupSize > 0, "static_groups", "needs a groupsize");
  checkKey(layer.percdamp > 0 && layer.percdamp < 1, "percdamp", fmt(layer.percdamp) + " must lie in (0, 1)");
  checkKey(layer.blockSize > 0, "blocksize", std::to_string(layer.blockSize) + " must be positive");
  checkKey(layer.numIter >= 1, "num_iter", std::to_string(layer.numIter) + " must be at least 1");
  checkKey(layer.outlierFraction >= 0 && layer.outlierFraction < 1, "outlier",
           fmt(layer.outlierFraction) + " must lie in [0, 1) (a fraction: 0.01 = 1%)");
  checkKey(layer.outlierFraction == 0 || layer.method == Method::QuantEase || layer.method == Method::GptqQuantEase,
           "outlier", std::string("only the QuantEase methods keep outliers (method is ") + methodName(layer.method) + ")");
  checkKey(!layer.structuredOutlier || layer.outlierFraction > 0, "structured_outlier", "needs an outlier fraction");
  checkKey(layer.outlierFraction == 0 || s.observer != quant::Observer::GgmlK, "outlier",
           "a llama.cpp K-quant grid (observer ggml_k) has no place for full-precision weights");
  checkKey(layer.alpha > 0, "alpha", fmt(layer.alpha) + " must be positive");
  checkKey(batchSize >= 1, "batch_size", std::to_string(batchSize) + " must be at least 1");
  checkKey(nsamples >= 1, "nsamples", std::to_string(nsamples) + " must be at least 1");
  checkKey(seqlen >= 2, "seqlen", std::to_string(seqlen) + " must be at least 2");
  checkKey(!dataset.empty(), "dataset", "must name a calibration dataset or file");
  checkKey(evalSeqlen >= 0, "eval_seqlen", std::to_string(evalSeqlen) + " must be 0 (model default) or positive");
  checkKey(evalLimitWindows >= 0, "eval_limit_windows", std::to_string(evalLimitWindows) + " must be 0 (all) or positive");
  checkKey(evalTasksLimit >= 0, "eval_tasks_limit", std::to_string(evalTasksLimit) + " must be 0 (all) or positive");
  for (const auto& t : evalTasks) {
    const std::string name = str::trim(t.substr(0, t.find('=')));
    try {
      eval::findTask(name);
    } catch (const qs::Error& e) {
      throw Error(std::string("eval_tasks: ") + e.what());
    }
  }
  checkKey(act.bits == 16 || (act.bits >= 2 && act.bits <= 8), "a_bits",
           std::to_string(act.bits) + " is not supported (2..8, or 16 = activations not quantized)");
  checkKey(act.granularity != quant::Granularity::PerGroup || act.groupSize > 0, "a_group_size",
           std::to_string(act.groupSize) + " must be positive");
  checkKey(sqAlpha >= 0 && sqAlpha <= 1, "sq_alpha", fmt(sqAlpha) + " must lie in [0, 1]");
  checkKey(osplusSearchSteps >= 1, "osplus_search_steps", std::to_string(osplusSearchSteps) + " must be at least 1");
  checkKey(osplusSearchTokens >= 1, "osplus_search_tokens", std::to_string(osplusSearchTokens) + " must be at least 1");
  checkKey(std::isfinite(osplusThreshold) && osplusThreshold >= 0, "osplus_threshold",
           fmt(osplusThreshold) + " must be 0 (search the threshold) or positive");
  checkKey(precision.empty() || act.bits == 16, "precision",
           "quantizes every site's input itself; leave a_bits at 16 (a_bits is " + std::to_string(act.bits) + ")");
  checkKey(migrate != Migration::OsPlus || osplusShift || osplusScale, "osplus_scale",
           "osplus_shift and osplus_scale are both false, so OS+ would change nothing; turn one on or use migrate: none");
  if (!ggufMix.empty()) {
    const auto& mixes = ggufMixTargets();
    auto it = std::find_if(mixes.begin(), mixes.end(), [&](const auto& m) { return m.first == ggufMix; });
    checkKey(it != mixes.end(), "gguf_mix", "'" + ggufMix + "' is not a K mix a run can target (" + mixTargetList() + ")");
    checkKey(gridTargetType(layer.spec) == it->second, "gguf_mix",
             ggufMix + " needs the " + it->second + " grid as the main one (qscope quantize --target gguf:" + ggufMix +
                 " sets both)");
  }
  layer.validate();  // anything the quantizers reject beyond the checks above
}

std::string QuantizeConfig::label() const {
  std::string l = std::string(methodName(layer.method)) + " w" + std::to_string(layer.spec.bits) + " " +
                  (layer.spec.groupSize > 0 ? "g" + std::to_string(layer.spec.groupSize) : std::string("ch"));
  if (layer.spec.actOrder) l += " act-order";
  if (act.enabled()) l = "W" + std::to_string(layer.spec.bits) + "A" + std::to_string(act.bits) + " " + l;
  if (migrate != Migration::None) l += std::string(" +") + (migrate == Migration::OsPlus ? "OS+" : "SmoothQuant");
  if (layer.outlierFraction > 0) {
    char buf[48];
    std::snprintf(buf, sizeof buf, " +%g%% %soutliers", layer.outlierFraction * 100,
                  layer.structuredOutlier ? "structured " : "");
    l += buf;
  }
  return l;
}

QuantizeConfig parseQuantizeConfig(const std::string& yamlText, const std::string& file, const QuantizeConfig& base) {
  using namespace config;
  YAML::Node root = parseYaml(yamlText, file);
  requireMap(root, file, "");
  std::string prefix;
  YAML::Node n = root;
  if (root.IsMap() && root[kSection]) {
    // `calibration:` is the record a run appends to its stored config (quantized_run.h): not an option.
    rejectUnknownKeys(root, {kSection, "calibration"}, file);
    n = root[kSection];
    prefix = kSection;
    requireMap(n, file, prefix);
  }
  rejectUnknownKeys(n, quantizeConfigKeys(), file, prefix);

  QuantizeConfig c = base;
  auto& l = c.layer;
  auto& s = l.spec;
  const auto keyed = [&](const std::string& key, auto&& read) {
    try {
      read();
    } catch (const qs::Error& e) {
      // Parsers below throw "key: message"; re-anchor the message at the file and key path.
      std::string msg = e.what();
      const std::string lead = key + ": ";
      if (msg.rfind(lead, 0) == 0) msg = msg.substr(lead.size());
      throw keyError(file, joinKey(prefix, key), msg);
    }
  };
  if (n["method"]) keyed("method", [&] { l.method = parseMethod(readString(n, "method", file, prefix)); });
  s.bits = static_cast<int>(readInt(n, "wbits", file, prefix, s.bits));
  s.groupSize = static_cast<int>(readInt(n, "groupsize", file, prefix, s.groupSize));
  s.symmetric = readBool(n, "sym", file, prefix, s.symmetric);
  s.actOrder = readBool(n, "act_order", file, prefix, s.actOrder);
  s.staticGroups = readBool(n, "static_groups", file, prefix, s.staticGroups);
  if (n["observer"]) keyed("observer", [&] { s.set("observer", readString(n, "observer", file, prefix)); });
  l.percdamp = readDouble(n, "percdamp", file, prefix, l.percdamp);
  l.blockSize = static_cast<int>(readInt(n, "blocksize", file, prefix, l.blockSize));
  l.numIter = static_cast<int>(readInt(n, "num_iter", file, prefix, l.numIter));
  l.outlierFraction = readDouble(n, "outlier", file, prefix, l.outlierFraction);
  l.structuredOutlier = readBool(n, "structured_outlier", file, prefix, l.structuredOutlier);
  l.alpha = readDouble(n, "alpha", file, prefix, l.alpha);
  if (n["quantease_init"])
    keyed("quantease_init", [&] { l.quanteaseInit = parseQuantEaseInit(readString(n, "quantease_init", file, prefix)); });
  l.relaxedSweeps = readBool(n, "relaxed_sweeps", file, prefix, l.relaxedSweeps);
  c.trueSequential = readBool(n, "true_sequential", file, prefix, c.trueSequential);
  c.calibrateRtn = readBool(n, "calibrate_rtn", file, prefix, c.calibrateRtn);
  c.batchSize = static_cast<int>(readInt(n, "batch_size", file, prefix, c.batchSize));
  c.nsamples = static_cast<int>(readInt(n, "nsamples", file, prefix, c.nsamples));
  c.seqlen = static_cast<int>(readInt(n, "seqlen", file, prefix, c.seqlen));
  const int64_t seed = readInt(n, "seed", file, prefix, static_cast<int64_t>(c.seed));
  if (seed < 0) throw keyError(file, joinKey(prefix, "seed"), "must not be negative");
  c.seed = static_cast<uint64_t>(seed);
  c.dataset = readString(n, "dataset", file, prefix, false, c.dataset);
  if (n["eval"]) c.eval = readStringList(n, "eval", file, prefix);
  c.evalSeqlen = static_cast<int>(readInt(n, "eval_seqlen", file, prefix, c.evalSeqlen));
  c.evalLimitWindows = readInt(n, "eval_limit_windows", file, prefix, c.evalLimitWindows);
  if (n["eval_tasks"]) {  // a list, or one comma-separated string as on the command line
    c.evalTasks.clear();
    for (const auto& item : readStringList(n, "eval_tasks", file, prefix))
      for (const auto& t : splitList(item)) c.evalTasks.push_back(t);
  }
  c.evalTasksLimit = readInt(n, "eval_tasks_limit", file, prefix, c.evalTasksLimit);
  if (n["migrate"]) keyed("migrate", [&] { c.migrate = parseMigration(readString(n, "migrate", file, prefix)); });
  c.act.bits = static_cast<int>(readInt(n, "a_bits", file, prefix, c.act.bits));
  if (n["a_quantizer"])
    keyed("a_quantizer", [&] { c.act.granularity = parseAQuantizer(readString(n, "a_quantizer", file, prefix)); });
  c.act.groupSize = static_cast<int>(readInt(n, "a_group_size", file, prefix, c.act.groupSize));
  c.act.symmetric = readBool(n, "a_symmetric", file, prefix, c.act.symmetric);
  if (n["a_observer"])
    keyed("a_observer", [&] { c.act.observer = quant::parseActObserver(readString(n, "a_observer", file, prefix), "a_observer"); });
  if (n["except_quantizer"]) c.exceptQuantizer = readStringList(n, "except_quantizer", file, prefix);
  c.sqAlpha = readDouble(n, "sq_alpha", file, prefix, c.sqAlpha);
  c.osplusSearchSteps = static_cast<int>(readInt(n, "osplus_search_steps", file, prefix, c.osplusSearchSteps));
  c.osplusSearchTokens = readInt(n, "osplus_search_tokens", file, prefix, c.osplusSearchTokens);
  if (n["osplus_search"])
    keyed("osplus_search", [&] { c.osplusSearch = parseOsPlusSearch(readString(n, "osplus_search", file, prefix)); });
  c.osplusValueOut = readBool(n, "osplus_value_out", file, prefix, c.osplusValueOut);
  c.osplusShift = readBool(n, "osplus_shift", file, prefix, c.osplusShift);
  c.osplusScale = readBool(n, "osplus_scale", file, prefix, c.osplusScale);
  c.osplusThreshold = readDouble(n, "osplus_threshold", file, prefix, c.osplusThreshold);
  if (n["gguf_mix"]) {
    c.ggufMix = str::toUpper(readString(n, "gguf_mix", file, prefix));
    if (c.ggufMix == "NONE") c.ggufMix.clear();
  }
  if (n["precision"]) {
    const YAML::Node p = n["precision"];
    if (p.IsScalar()) {  // a file path (relative to the working directory), or "none"
      const std::string path = p.as<std::string>();
      c.precision = path.empty() || path == "none" ? "" : quant::precisionToYaml(quant::loadPrecisionConfig(path));
    } else if (p.IsMap()) {  // the section inline, as toYaml writes it
      YAML::Emitter doc;
      doc << YAML::BeginMap << YAML::Key << "precision" << YAML::Value << p << YAML::EndMap;
      c.precision = quant::precisionToYaml(quant::parsePrecisionConfig(doc.c_str(), file + " (key '" + joinKey(prefix, "precision") + "')"));
    } else {
      throw keyError(file, joinKey(prefix, "precision"), "must be a precision config file path or its map");
    }
  }

  try {
    c.validate();
  } catch (const qs::Error& e) {
    // validate() names the key first ("wbits: ..."); the file and section make it findable.
    std::string msg = e.what();
    const auto colon = msg.find(": ");
    if (colon != std::string::npos && msg.find(' ') > colon)
      throw keyError(file, joinKey(prefix, msg.substr(0, colon)), msg.substr(colon + 2));
    throw fileError(file, msg);
  }
  return c;
}

QuantizeConfig loadQuantizeConfig(const std::string& path, const QuantizeConfig& base) {
  if (!fs::exists(path)) throw fileError(path, "quantize config file not found");
  return parseQuantizeConfig(fs::readText(path), path, base);
}

std::string toYaml(const QuantizeConfig& c) {
  const auto& l = c.layer;
  const auto& s = l.spec;
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << kSection << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "method" << YAML::Value << methodName(l.method);
  e << YAML::Key << "wbits" << YAML::Value << s.bits;
  e << YAML::Key << "groupsize" << YAML::Value << s.groupSize;
  e << YAML::Key << "sym" << YAML::Value << s.symmetric;
  e << YAML::Key << "act_order" << YAML::Value << s.actOrder;
  e << YAML::Key << "static_groups" << YAML::Value << s.staticGroups;
  e << YAML::Key << "observer" << YAML::Value << quant::observerName(s.observer);
  e << YAML::Key << "percdamp" << YAML::Value << fmt(l.percdamp);
  e << YAML::Key << "blocksize" << YAML::Value << l.blockSize;
  e << YAML::Key << "num_iter" << YAML::Value << l.numIter;
  e << YAML::Key << "outlier" << YAML::Value << fmt(l.outlierFraction);
  e << YAML::Key << "structured_outlier" << YAML::Value << l.structuredOutlier;
  e << YAML::Key << "alpha" << YAML::Value << fmt(l.alpha);
  e << YAML::Key << "quantease_init" << YAML::Value << quantEaseInitName(l.quanteaseInit);
  e << YAML::Key << "relaxed_sweeps" << YAML::Value << l.relaxedSweeps;
  e << YAML::Key << "true_sequential" << YAML::Value << c.trueSequential;
  e << YAML::Key << "calibrate_rtn" << YAML::Value << c.calibrateRtn;
  e << YAML::Key << "batch_size" << YAML::Value << c.batchSize;
  e << YAML::Key << "nsamples" << YAML::Value << c.nsamples;
  e << YAML::Key << "seqlen" << YAML::Value << c.seqlen;
  e << YAML::Key << "seed" << YAML::Value << c.seed;
  e << YAML::Key << "dataset" << YAML::Value << YAML::DoubleQuoted << c.dataset;
  e << YAML::Key << "eval" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& d : c.eval) e << d;
  e << YAML::EndSeq;
  e << YAML::Key << "eval_seqlen" << YAML::Value << c.evalSeqlen;
  e << YAML::Key << "eval_limit_windows" << YAML::Value << c.evalLimitWindows;
  e << YAML::Key << "eval_tasks" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& t : c.evalTasks) e << t;
  e << YAML::EndSeq;
  e << YAML::Key << "eval_tasks_limit" << YAML::Value << c.evalTasksLimit;
  e << YAML::Key << "migrate" << YAML::Value << migrationName(c.migrate);
  e << YAML::Key << "a_bits" << YAML::Value << c.act.bits;
  e << YAML::Key << "a_quantizer" << YAML::Value << aQuantizerName(c.act.granularity);
  e << YAML::Key << "a_group_size" << YAML::Value << c.act.groupSize;
  e << YAML::Key << "a_symmetric" << YAML::Value << c.act.symmetric;
  e << YAML::Key << "a_observer" << YAML::Value << quant::actObserverName(c.act.observer);
  e << YAML::Key << "except_quantizer" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& x : c.exceptQuantizer) e << x;
  e << YAML::EndSeq;
  e << YAML::Key << "sq_alpha" << YAML::Value << fmt(c.sqAlpha);
  e << YAML::Key << "osplus_search_steps" << YAML::Value << c.osplusSearchSteps;
  e << YAML::Key << "osplus_search" << YAML::Value << osPlusSearchName(c.osplusSearch);
  e << YAML::Key << "osplus_search_tokens" << YAML::Value << c.osplusSearchTokens;
  e << YAML::Key << "osplus_value_out" << YAML::Value << c.osplusValueOut;
  e << YAML::Key << "osplus_shift" << YAML::Value << c.osplusShift;
  e << YAML::Key << "osplus_scale" << YAML::Value << c.osplusScale;
  e << YAML::Key << "osplus_threshold" << YAML::Value << c.osplusThreshold;
  e << YAML::Key << "precision";
  if (c.precision.empty())
    e << YAML::Value << "none";
  else
    e << YAML::Value << YAML::Load(c.precision)["precision"];
  e << YAML::Key << "gguf_mix" << YAML::Value << (c.ggufMix.empty() ? std::string("none") : c.ggufMix);
  e << YAML::EndMap << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

void applyQConfig(QuantizeConfig& c, const quant::QConfig& q) {
  c.act = q.act;
  const int group = c.layer.spec.groupSize;
  const bool actOrder = c.layer.spec.actOrder, staticGroups = c.layer.spec.staticGroups;
  c.layer.spec = q.weight;
  if (q.weight.groupSize <= 0) c.layer.spec.groupSize = group;
  c.layer.spec.actOrder = actOrder;
  c.layer.spec.staticGroups = staticGroups;
  c.exceptQuantizer = q.exceptQuantizer;
  c.migrate = q.migrate ? Migration::OsPlus : Migration::None;
}

namespace {

// The llama.cpp types whose grid a quantize run can target, with their bits (groups of 32; the
// K types in super-blocks of 256 columns).
struct GridTarget {
  const char* type;
  int bits;
  quant::Observer observer;
  int group;
};
constexpr GridTarget kGridTargets[] = {{"Q4_0", 4, quant::Observer::Ggml, 32},
                                       {"Q5_0", 5, quant::Observer::Ggml, 32},
                                       {"Q8_0", 8, quant::Observer::Ggml, 32},
                                       {"Q2_K", 2, quant::Observer::GgmlK, 16},
                                       {"Q3_K", 3, quant::Observer::GgmlK, 16},
                                       {"Q4_K", 4, quant::Observer::GgmlK, 32},
                                       {"Q5_K", 5, quant::Observer::GgmlK, 32},
                                       {"Q6_K", 6, quant::Observer::GgmlK, 16}};

// The target table's entry for "gguf:TYPE" (any case), or nullptr.
const GridTarget* findGridTarget(const std::string& target) {
  const std::string t = str::toUpper(target);
  for (const GridTarget& g : kGridTargets)
    if (t == std::string("GGUF:") + g.type) return &g;
  return nullptr;
}

// "gguf:Q4_0, gguf:Q5_0, ..." and "Q5_K_M, Q5_K_S, ...", for the messages.
std::string gridTargetList() {
  std::string s;
  for (const GridTarget& g : kGridTargets) s += (s.empty() ? "gguf:" : ", gguf:") + std::string(g.type);
  return s;
}
std::string mixTargetList() {
  std::string s;
  for (const auto& [mix, type] : ggufMixTargets()) s += (s.empty() ? "" : ", ") + mix;
  return s;
}

}  // namespace

bool isGridTargetType(const std::string& type) { return findGridTarget("gguf:" + type) != nullptr; }

void applyGridTarget(quant::QuantSpec& spec, const std::string& target) {
  const GridTarget* g = findGridTarget(target);
  if (!g) throw Error("--target: '" + target + "' is not one of " + gridTargetList());
  spec.bits = g->bits;
  spec.groupSize = g->group;
  spec.symmetric = false;
  spec.chAxis = 0;
  spec.observer = g->observer;
  // A K super-block's factors come from all its 8 groups: fixed on W before the method runs.
  if (g->observer == quant::Observer::GgmlK) spec.staticGroups = true;
}

const std::vector<std::pair<std::string, std::string>>& ggufMixTargets() {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {"Q5_K_M", "Q5_K"}, {"Q5_K_S", "Q5_K"}, {"Q4_K_M", "Q4_K"}, {"Q4_K_S", "Q4_K"},
      {"Q3_K_L", "Q3_K"}, {"Q3_K_M", "Q3_K"}, {"Q3_K_S", "Q3_K"}};
  return m;
}

void applyGridTarget(QuantizeConfig& config, const std::string& target) {
  const std::string t = str::toUpper(target);
  for (const auto& [mix, type] : ggufMixTargets())
    if (t == "GGUF:" + mix) {
      applyGridTarget(config.layer.spec, "gguf:" + type);
      config.ggufMix = mix;
      return;
    }
  if (!findGridTarget(target))
    throw Error("--target: '" + target + "' is not one of " + gridTargetList() + " or a K mix (gguf:" +
                mixTargetList() + ")");
  applyGridTarget(config.layer.spec, target);
  config.ggufMix.clear();
}

std::string gridTargetType(const quant::QuantSpec& spec) {
  if (!spec.enabled()) return "";
  for (const GridTarget& g : kGridTargets)
    if (g.observer == spec.observer && g.bits == spec.bits) return g.type;
  return "";
}

}  // namespace qs::algo
