#include "core/quant/format_yaml.h"

#include "core/config/yaml_helpers.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/strings.h"

namespace qs::quant {
namespace {

using config::joinKey;
using config::keyError;

std::string knownKeysOf(FormatKind k) {
  std::string keys = "format";
  for (const auto& p : formatParams(k)) keys += ", " + p.key + " (" + p.abbr + ")";
  if (k == FormatKind::Minifloat) keys += ", specials";
  if (k == FormatKind::Integer) keys += ", granularity";
  return keys;
}

SitePrecision readSite(const YAML::Node& n, const std::string& file, const std::string& path,
                       const std::vector<std::string>& known) {
  config::requireMap(n, file, path);
  config::rejectUnknownKeys(n, known, file, path);
  SitePrecision p;
  p.weight = formatFromYaml(n["weight"], file, joinKey(path, "weight"));
  p.input = formatFromYaml(n["input"], file, joinKey(path, "input"));
  return p;
}

}  // namespace

NumberFormat formatFromYaml(const YAML::Node& node, const std::string& file, const std::string& keyPath) {
  if (!node || node.IsNull()) return NumberFormat();
  if (node.IsScalar()) {
    try {
      return NumberFormat::parse(node.Scalar());
    } catch (const Error& e) {
      throw keyError(file, keyPath, e.what());
    }
  }
  if (!node.IsMap())
    throw keyError(file, keyPath,
                   "expected a format (text such as 'bfp(m=6,e=8,block=16)' or a map with 'format:'), got " +
                       config::yamlTypeName(node));
  const YAML::Node kindNode = node["format"];
  if (!kindNode || !kindNode.IsScalar())
    throw keyError(file, joinKey(keyPath, "format"),
                   "missing (one of none, int, fixed, minifloat, denorm_minifloat, log, bfp, block_minifloat, "
                   "block_log)");
  NumberFormat fmt;
  try {
    fmt = NumberFormat::ofKind(parseFormatKind(kindNode.Scalar()));
  } catch (const Error& e) {
    throw keyError(file, joinKey(keyPath, "format"), e.what());
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("<non-scalar key>");
    if (key == "format") continue;
    const std::string path = joinKey(keyPath, key);
    if (!kv.second.IsScalar()) throw keyError(file, path, "expected a number, got " + config::yamlTypeName(kv.second));
    try {
      fmt.set(key, str::toLower(kv.second.Scalar()));
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (msg.find("not a parameter") != std::string::npos)
        throw keyError(file, path, "unknown key for format " + std::string(formatKindName(fmt.kind())) +
                                       " (known keys: " + knownKeysOf(fmt.kind()) + ")");
      throw keyError(file, path, msg);
    }
  }
  try {
    fmt.validate();
  } catch (const Error& e) {
    // validate() says "mantissa_width: ..."; name the key as the file spells it (long or short).
    const std::string msg = e.what();
    const auto colon = msg.find(": ");
    if (colon != std::string::npos)
      for (const auto& p : formatParams(fmt.kind()))
        if (p.key == msg.substr(0, colon))
          for (const std::string& spelling : {p.key, p.abbr})
            if (node[spelling]) throw keyError(file, joinKey(keyPath, spelling), msg.substr(colon + 2));
    throw keyError(file, keyPath, msg);
  }
  return fmt;
}

YAML::Node formatToYaml(const NumberFormat& fmt) {
  if (!fmt.enabled()) return YAML::Node("none");
  YAML::Node n(YAML::NodeType::Map);
  const auto m = fmt.toMap();
  n["format"] = m.at("format");
  auto emit = [&](const std::string& key) {
    const auto it = m.find(key);
    if (it == m.end() || n[key]) return;
    const std::string& v = it->second;
    const bool integer = !v.empty() && v.find_first_not_of("-0123456789") == std::string::npos;
    if (integer) n[key] = std::stoi(v);
    else n[key] = v;
  };
  for (const auto& p : formatParams(fmt.kind())) emit(p.key);  // the kind's order, then the rest
  for (const char* extra : {"specials", "symmetric", "granularity"}) emit(extra);
  return n;
}

LayerPrecision parsePrecisionConfig(const std::string& yamlText, const std::string& file) {
  YAML::Node doc = config::parseYaml(yamlText, file);
  if (doc.IsNull()) throw fileError(file, "is empty (expected a 'precision:' section with 'default:' and/or 'rules:')");
  config::requireMap(doc, file, "", false);
  std::string prefix;
  if (doc["precision"]) {
    config::rejectUnknownKeys(doc, {"precision"}, file);
    doc = doc["precision"];
    prefix = "precision";
    config::requireMap(doc, file, prefix, false);
  }
  config::rejectUnknownKeys(doc, {"default", "rules"}, file, prefix);
  LayerPrecision lp;
  if (doc["default"] && !doc["default"].IsNull())
    lp.withDefault(readSite(doc["default"], file, joinKey(prefix, "default"), {"weight", "input"}));
  const YAML::Node rules = doc["rules"];
  const std::string rulesPath = joinKey(prefix, "rules");
  if (rules && !rules.IsNull()) {
    if (!rules.IsSequence()) throw keyError(file, rulesPath, "expected a list of rules, got " + config::yamlTypeName(rules));
    for (size_t i = 0; i < rules.size(); ++i) {
      const std::string path = rulesPath + "[" + std::to_string(i) + "]";
      const SitePrecision p = readSite(rules[i], file, path, {"name", "weight", "input"});
      const std::string name = config::readString(rules[i], "name", file, path, true);
      try {
        lp.add(name, p);
      } catch (const Error& e) {
        // add() says "rules[i].name: ..."; keep only the message after the key.
        std::string msg = e.what();
        if (auto colon = msg.find(": "); colon != std::string::npos) msg = msg.substr(colon + 2);
        throw keyError(file, joinKey(path, "name"), msg);
      }
    }
  }
  return lp;
}

LayerPrecision loadPrecisionConfig(const std::string& path) { return parsePrecisionConfig(fs::readText(path), path); }

std::string precisionToYaml(const LayerPrecision& lp) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "precision" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "default" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "weight" << YAML::Value << lp.defaultPrecision().weight.toString();
  out << YAML::Key << "input" << YAML::Value << lp.defaultPrecision().input.toString();
  out << YAML::EndMap;
  out << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
  for (const auto& r : lp.rules()) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << r.name;
    out << YAML::Key << "weight" << YAML::Value << r.precision.weight.toString();
    out << YAML::Key << "input" << YAML::Value << r.precision.input.toString();
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace qs::quant
