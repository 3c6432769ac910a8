#include "core/algo/search_space.h"

#include <yaml-cpp/yaml.h>

#include "core/config/yaml_helpers.h"
#include "core/quant/format_yaml.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/strings.h"

namespace qs::algo {
namespace {

using config::joinKey;
using config::keyError;
using quant::NumberFormat;

bool isInteger(const std::string& s) {
  size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  return i < s.size() && s.find_first_not_of("0123456789", i) == std::string::npos;
}

// A grid: {format: kind, key: [values] | value, ...} with at least one list.
bool isGrid(const YAML::Node& n) {
  if (!n.IsMap()) return false;
  for (const auto& kv : n)
    if (kv.second.IsSequence()) return true;
  return false;
}

std::vector<NumberFormat> readGrid(const YAML::Node& n, const std::string& file, const std::string& path) {
  const YAML::Node kindNode = n["format"];
  if (!kindNode || !kindNode.IsScalar()) throw keyError(file, joinKey(path, "format"), "missing (the kind of the grid)");
  quant::FormatKind kind;
  try {
    kind = quant::parseFormatKind(kindNode.Scalar());
  } catch (const Error& e) {
    throw keyError(file, joinKey(path, "format"), e.what());
  }
  std::map<std::string, std::vector<int>> choices;
  std::map<std::string, std::string> extras;  // non-integer keys (specials, granularity, symmetric)
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    if (key == "format") continue;
    const std::string kp = joinKey(path, key);
    if (kv.second.IsSequence()) {
      if (kv.second.size() == 0) throw keyError(file, kp, "the list of choices is empty");
      for (size_t i = 0; i < kv.second.size(); ++i) {
        const YAML::Node v = kv.second[i];
        if (!v.IsScalar() || !isInteger(v.Scalar()))
          throw keyError(file, kp + "[" + std::to_string(i) + "]", "expected an integer, got " + config::yamlTypeName(v));
        choices[key].push_back(std::stoi(v.Scalar()));
      }
    } else if (kv.second.IsScalar()) {
      if (isInteger(kv.second.Scalar())) choices[key] = {std::stoi(kv.second.Scalar())};
      else extras[key] = str::toLower(kv.second.Scalar());
    } else {
      throw keyError(file, kp, "expected a value or a list of values, got " + config::yamlTypeName(kv.second));
    }
  }
  std::vector<NumberFormat> grid;
  try {
    grid = quant::formatGrid(kind, choices);
  } catch (const Error& e) {
    throw keyError(file, path, e.what());
  }
  std::vector<NumberFormat> out;
  for (auto f : grid) {
    for (const auto& [k, v] : extras) {
      try {
        f.set(k, v);
      } catch (const Error& e) {
        throw keyError(file, joinKey(path, k), e.what());
      }
    }
    try {
      f.validate();
      out.push_back(f);
    } catch (const Error&) {
      // an invalid combination is not part of the space
    }
  }
  if (out.empty()) throw keyError(file, path, "no valid format in this grid");
  return out;
}

// A list of formats, a grid, or one format.
std::vector<NumberFormat> readChoices(const YAML::Node& n, const std::string& file, const std::string& path) {
  std::vector<NumberFormat> out;
  if (n.IsSequence()) {
    if (n.size() == 0) throw keyError(file, path, "the list of choices is empty");
    for (size_t i = 0; i < n.size(); ++i) {
      const std::string p = path + "[" + std::to_string(i) + "]";
      if (isGrid(n[i])) {
        auto g = readGrid(n[i], file, p);
        out.insert(out.end(), g.begin(), g.end());
      } else {
        out.push_back(quant::formatFromYaml(n[i], file, p));
      }
    }
  } else if (isGrid(n)) {
    out = readGrid(n, file, path);
  } else {
    out.push_back(quant::formatFromYaml(n, file, path));
  }
  // Duplicates would only waste trials.
  std::vector<NumberFormat> unique;
  for (const auto& f : out) {
    bool seen = false;
    for (const auto& u : unique) seen = seen || u == f;
    if (!seen) unique.push_back(f);
  }
  return unique;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

SearchSpace parseSearchSpace(const std::string& yamlText, const std::string& file) {
  YAML::Node doc = config::parseYaml(yamlText, file);
  if (doc.IsNull()) throw fileError(file, "is empty (expected a 'search:' section with 'space:')");
  config::requireMap(doc, file, "", false);
  std::string prefix;
  if (doc["search"]) {
    config::rejectUnknownKeys(doc, {"search"}, file);
    doc = doc["search"];
    prefix = "search";
    config::requireMap(doc, file, prefix, false);
  }
  config::rejectUnknownKeys(doc, {"space", "default", "eval", "constraints"}, file, prefix);
  SearchSpace s;
  const YAML::Node space = doc["space"];
  const std::string spacePath = joinKey(prefix, "space");
  if (!space || !space.IsSequence() || space.size() == 0)
    throw keyError(file, spacePath, "expected a non-empty list of entries (name, weight, input, per_site)");
  for (size_t i = 0; i < space.size(); ++i) {
    const std::string path = spacePath + "[" + std::to_string(i) + "]";
    const YAML::Node e = space[i];
    config::requireMap(e, file, path, false);
    config::rejectUnknownKeys(e, {"name", "weight", "input", "per_site"}, file, path);
    SpaceEntry entry;
    entry.name = config::readString(e, "name", file, path, true);
    entry.perSite = config::readBool(e, "per_site", file, path, false);
    if (!e["weight"] || e["weight"].IsNull())
      throw keyError(file, joinKey(path, "weight"), "missing (a list of formats, a grid, or one format)");
    entry.weight = readChoices(e["weight"], file, joinKey(path, "weight"));
    const YAML::Node in = e["input"];
    if (in && in.IsScalar() && str::toLower(in.Scalar()) == "same") entry.inputSameAsWeight = true;
    else if (in && !in.IsNull()) entry.input = readChoices(in, file, joinKey(path, "input"));
    // Validate the name as a rule (empty, '***') where the file can be named.
    try {
      quant::LayerPrecision().add(entry.name, {});
    } catch (const Error& err) {
      std::string msg = err.what();
      if (auto c = msg.find(": "); c != std::string::npos) msg = msg.substr(c + 2);
      throw keyError(file, joinKey(path, "name"), msg);
    }
    s.entries.push_back(std::move(entry));
  }
  if (const YAML::Node d = doc["default"]; d && !d.IsNull()) {
    const std::string path = joinKey(prefix, "default");
    config::requireMap(d, file, path);
    config::rejectUnknownKeys(d, {"weight", "input"}, file, path);
    s.defaults.weight = quant::formatFromYaml(d["weight"], file, joinKey(path, "weight"));
    s.defaults.input = quant::formatFromYaml(d["input"], file, joinKey(path, "input"));
  }
  if (const YAML::Node ev = doc["eval"]; ev && !ev.IsNull()) {
    const std::string path = joinKey(prefix, "eval");
    config::requireMap(ev, file, path);
    config::rejectUnknownKeys(ev, {"dataset", "seqlen", "limit_windows", "batch_size", "tasks_limit"}, file, path);
    s.eval.dataset = config::readString(ev, "dataset", file, path, false, s.eval.dataset);
    s.eval.seqlen = static_cast<int>(config::readInt(ev, "seqlen", file, path, s.eval.seqlen));
    s.eval.limitWindows = config::readInt(ev, "limit_windows", file, path, s.eval.limitWindows);
    s.eval.batchSize = static_cast<int>(config::readInt(ev, "batch_size", file, path, s.eval.batchSize));
    s.eval.tasksLimit = config::readInt(ev, "tasks_limit", file, path, s.eval.tasksLimit);
    if (s.eval.tasksLimit < 0) throw keyError(file, joinKey(path, "tasks_limit"), "must be >= 0 (0 = all examples)");
    if (s.eval.seqlen < 2) throw keyError(file, joinKey(path, "seqlen"), "must be at least 2");
    if (s.eval.limitWindows < 0) throw keyError(file, joinKey(path, "limit_windows"), "must be >= 0 (0 = all)");
    if (s.eval.batchSize < 1) throw keyError(file, joinKey(path, "batch_size"), "must be >= 1");
  }
  if (const YAML::Node c = doc["constraints"]; c && !c.IsNull()) {
    const std::string path = joinKey(prefix, "constraints");
    config::requireMap(c, file, path);
    config::rejectUnknownKeys(c, {"max_bits", "max_ppl", "min_ppl", "min_acc"}, file, path);
    s.constraints.maxBits = config::readDouble(c, "max_bits", file, path, 0);
    s.constraints.maxPpl = config::readDouble(c, "max_ppl", file, path, 0);
    s.constraints.minPpl = config::readDouble(c, "min_ppl", file, path, 0);
    s.constraints.minAcc = config::readDouble(c, "min_acc", file, path, 0);
    if (!(s.constraints.minAcc >= 0 && s.constraints.minAcc <= 1))
      throw keyError(file, joinKey(path, "min_acc"), "must be an accuracy between 0 and 1 (0 = no limit)");
    for (const char* k : {"max_bits", "max_ppl", "min_ppl"})
      if (config::readDouble(c, k, file, path, 0) < 0) throw keyError(file, joinKey(path, k), "must be >= 0 (0 = no limit)");
  }
  return s;
}

SearchSpace loadSearchSpace(const std::string& path) { return parseSearchSpace(fs::readText(path), path); }

SearchSpace::Resolved SearchSpace::resolve(const std::vector<std::string>& sites, const std::string& file) const {
  Resolved r;
  for (size_t e = 0; e < entries.size(); ++e) {
    const SpaceEntry& entry = entries[e];
    std::vector<std::string> matched;
    for (const auto& s : sites)
      if (quant::globMatch(entry.name, s)) matched.push_back(s);
    if (matched.empty())
      throw fileError(file, "space entry " + std::to_string(e) + " ('" + entry.name +
                                "') matches no site of the model (sites look like '" +
                                (sites.empty() ? std::string("?") : sites.front()) + "')");
    const std::vector<std::string> rules = entry.perSite ? matched : std::vector<std::string>{entry.name};
    for (const auto& rule : rules) {
      r.ruleNames.push_back(rule);
      r.ruleEntry.push_back(static_cast<int>(e));
      r.dims.push_back({static_cast<int>(e), rule, false, static_cast<int>(entry.weight.size())});
      r.size *= static_cast<double>(entry.weight.size());
      if (!entry.input.empty()) {
        r.dims.push_back({static_cast<int>(e), rule, true, static_cast<int>(entry.input.size())});
        r.size *= static_cast<double>(entry.input.size());
      }
    }
  }
  return r;
}

quant::LayerPrecision SearchSpace::decode(const Resolved& r, const std::vector<int>& choice) const {
  if (choice.size() != r.dims.size())
    throw Error("search: a choice vector of " + std::to_string(choice.size()) + " values for a space of " +
                std::to_string(r.dims.size()) + " dimensions");
  quant::LayerPrecision lp;
  lp.withDefault(defaults);
  size_t d = 0;
  for (size_t i = 0; i < r.ruleNames.size(); ++i) {
    const SpaceEntry& entry = entries[static_cast<size_t>(r.ruleEntry[i])];
    quant::SitePrecision p;
    auto pick = [&](const std::vector<NumberFormat>& list) {
      const int c = choice[d];
      if (c < 0 || c >= r.dims[d].choices)
        throw Error("search: choice " + std::to_string(c) + " of dimension " + std::to_string(d) + " ('" +
                    r.dims[d].rule + "') is outside 0.." + std::to_string(r.dims[d].choices - 1));
      ++d;
      return list[static_cast<size_t>(c)];
    };
    p.weight = pick(entry.weight);
    if (!entry.input.empty()) p.input = pick(entry.input);
    else if (entry.inputSameAsWeight) p.input = p.weight;
    lp.add(r.ruleNames[i], p);
  }
  return lp;
}

std::string SearchSpace::toYaml() const {
  std::string y = "search:\n  space:\n";
  auto list = [](const std::vector<NumberFormat>& l) {
    std::string s = "[";
    for (size_t i = 0; i < l.size(); ++i) s += (i ? ", " : "") + quoted(l[i].toString());
    return s + "]";
  };
  for (const auto& e : entries) {
    y += "    - name: " + quoted(e.name) + "\n";
    if (e.perSite) y += "      per_site: true\n";
    y += "      weight: " + list(e.weight) + "\n";
    if (e.inputSameAsWeight) y += "      input: same\n";
    else if (!e.input.empty()) y += "      input: " + list(e.input) + "\n";
  }
  y += "  default: {weight: " + quoted(defaults.weight.toString()) + ", input: " + quoted(defaults.input.toString()) + "}\n";
  y += "  eval: {dataset: " + quoted(eval.dataset) + ", seqlen: " + std::to_string(eval.seqlen) +
       ", limit_windows: " + std::to_string(eval.limitWindows) + ", batch_size: " + std::to_string(eval.batchSize) +
       ", tasks_limit: " + std::to_string(eval.tasksLimit) + "}\n";
  char buf[200];
  std::snprintf(buf, sizeof buf, "  constraints: {max_bits: %.17g, max_ppl: %.17g, min_ppl: %.17g, min_acc: %.17g}\n",
                constraints.maxBits, constraints.maxPpl, constraints.minPpl, constraints.minAcc);
  return y + buf;
}

}  // namespace qs::algo
