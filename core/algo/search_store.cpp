#include "core/algo/search_store.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/quant/format_yaml.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"

namespace qs::algo {
namespace {

std::string choiceText(const std::vector<int>& c) {
  std::string s = "[";
  for (size_t i = 0; i < c.size(); ++i) s += (i ? ", " : "") + std::to_string(c[i]);
  return s + "]";
}

nlohmann::json jsonNumber(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

}  // namespace

StoreTrialBackend::StoreTrialBackend(std::string runsPath, SearchRunInfo info, std::string identity, EvaluateFn evaluate)
    : runsPath_(std::move(runsPath)), info_(std::move(info)), identity_(std::move(identity)), evaluate_(std::move(evaluate)) {
  runs::RunStore store(runsPath_);
  runs::RunFilter filter;
  filter.kind = "search";
  filter.status = "finished";
  for (const auto& run : store.listRuns(filter)) {
    try {
      const YAML::Node cfg = YAML::Load(run.configYaml);
      const YAML::Node s = cfg["search"];
      if (!s || !s["key"] || (s["role"] && s["role"].Scalar() == "pareto")) continue;
      byKey_.emplace(s["key"].Scalar(), run.id);  // listRuns is newest first: keep the newest
    } catch (const YAML::Exception&) {
      continue;  // not a trial written by this code
    }
  }
}

std::optional<StoredTrial> StoreTrialBackend::find(const std::string& key) {
  const auto it = byKey_.find(key);
  if (it == byKey_.end()) return std::nullopt;
  runs::RunStore store(runsPath_);
  const auto record = store.loadRun(it->second, false);
  StoredTrial t;
  t.runId = it->second;
  bool havePpl = false, haveAcc = info_.accTask.empty();
  for (const auto& m : record.metrics) {
    if (m.key == "ppl." + info_.dataset) {
      t.ppl = m.value;
      havePpl = true;
    } else if (!info_.accTask.empty() && m.key == info_.accTask + "/acc") {
      t.acc = m.value;
      t.accStderr = m.stdError;
      t.accN = m.n;
      haveAcc = true;
    }
  }
  if (havePpl && haveAcc) return t;
  log::warn("search: run " + std::to_string(it->second) + " has the trial's key but no ppl." + info_.dataset +
            (info_.accTask.empty() ? "" : " or " + info_.accTask + "/acc") + " metric; evaluating again");
  return std::nullopt;
}

StoredTrial StoreTrialBackend::evaluate(const TrialRequest& req, jobs::Progress& progress) {
  runs::NewRun n;
  char name[160];
  std::snprintf(name, sizeof name, "search %s trial %d (%.2f bits)", info_.searchId.c_str(), req.index,
                req.summary ? req.summary->weightBits : NAN);
  n.name = name;
  n.kind = runs::RunKind::Search;
  n.modelPath = info_.modelPath;
  n.modelFingerprint = info_.modelFingerprint;
  n.configYaml = "search:\n  id: " + info_.searchId + "\n  role: trial\n  trial: " + std::to_string(req.index) +
                 "\n  key: \"" + req.key + "\"\n  choice: " + choiceText(req.choice) + "\n  algo: " + info_.algo +
                 "\n  seed: " + std::to_string(info_.seed) + "\n" + info_.evalYaml + quant::precisionToYaml(*req.config);
  n.toolVersion = info_.toolVersion;
  n.device = info_.device;
  runs::RunWriter writer(runsPath_, n);
  TrialEval e;
  try {
    e = evaluate_(*req.config, progress);
    writer.addMetric({"ppl." + info_.dataset, e.ppl, e.protocol, "", e.windows, NAN});
    if (!info_.accTask.empty())
      writer.addMetric({info_.accTask + "/acc", e.acc, e.accProtocol, "", e.accN, e.accStderr});
    if (req.summary) {
      const auto& s = *req.summary;
      writer.addMetric({"bits.weight", s.weightBits, "element-weighted mean, none = 32", "bits", s.weightElements, NAN});
      writer.addMetric({"bits.input", s.inputBits, "in-feature-weighted mean, none = 32", "bits",
                        static_cast<int64_t>(s.sites.size()), NAN});
      writer.addMetric({"density.arithmetic", s.weightArithmeticDensity, "first-order MAC cells vs fp32", "x",
                        s.weightElements, NAN});
      for (const auto& site : s.sites) {
        runs::LayerResult r;
        r.site = site.name;
        r.bits = site.weightBits;
        // "layers.3.mlp.up_proj" -> layer 3 for the per-layer views
        if (site.name.rfind("layers.", 0) == 0) r.layer = std::atoi(site.name.c_str() + 7);
        r.extraJson = nlohmann::json({{"weight", site.weight.toString()}, {"input", site.input.toString()}}).dump();
        writer.addLayerResult(r);
      }
    }
    writer.finish();
  } catch (const Cancelled&) {
    writer.cancel();
    throw;
  } catch (const std::exception& ex) {
    writer.fail(ex.what());
    throw;
  }
  byKey_[req.key] = writer.id();
  StoredTrial t;
  t.ppl = e.ppl;
  t.runId = writer.id();
  t.acc = e.acc;
  t.accStderr = e.accStderr;
  t.accN = e.accN;
  return t;
}

StoredTrial DeferringTrialBackend::evaluate(const TrialRequest& req, jobs::Progress&) {
  wanted.push_back({req.index, req.key, req.choice, req.config ? quant::precisionToYaml(*req.config) : ""});
  StoredTrial t;
  t.deferred = true;
  return t;
}

std::string trialFileYaml(const DeferringTrialBackend::Wanted& w) {
  return "# one trial of a QuantScope search, evaluated by `qscope search ... --trial` on a cluster node\n"
         "search_trial:\n  index: " + std::to_string(w.index) + "\n  key: \"" + w.key + "\"\n  choice: " +
         choiceText(w.choice) + "\n" + w.config;
}

DeferringTrialBackend::Wanted parseTrialFile(const std::string& path) {
  DeferringTrialBackend::Wanted w;
  try {
    const YAML::Node root = YAML::Load(fs::readText(path));
    const YAML::Node t = root["search_trial"];
    if (!t || !t["key"] || !t["choice"] || !t["index"]) throw fileError(path, "not a search trial file (search_trial: index, key, choice)");
    w.index = t["index"].as<int>();
    w.key = t["key"].Scalar();
    for (const auto& c : t["choice"]) w.choice.push_back(c.as<int>());
  } catch (const YAML::Exception& e) {
    throw fileError(path, std::string("not a search trial file: ") + e.what());
  }
  return w;
}

std::string paretoJson(const SearchRunInfo& info, const SearchOptions& options, const SearchResult& result) {
  nlohmann::json trials = nlohmann::json::array();
  for (const auto& t : result.trials) {
    trials.push_back({{"run_id", t.runId},
                      {"trial", t.index},
                      {"choice", t.choice},
                      {"ppl", jsonNumber(t.ppl)},
                      {"acc", jsonNumber(t.acc)},
                      {"acc_stderr", jsonNumber(t.accStderr)},
                      {"acc_n", t.accN},
                      {"bits", jsonNumber(t.weightBits)},
                      {"input_bits", jsonNumber(t.inputBits)},
                      {"feasible", t.feasible},
                      {"front", t.onFront},
                      {"reused", t.reused},
                      {"config", t.config}});
  }
  nlohmann::json j = {{"search_id", info.searchId},
                      {"model", info.modelPath},
                      {"dataset", info.dataset},
                      {"algo", searchAlgoName(options.algo)},
                      {"seed", options.seed},
                      {"objectives", options.objectives},
                      {"max_bits", options.constraints.maxBits},
                      {"max_ppl", options.constraints.maxPpl},
                      {"min_ppl", options.constraints.minPpl},
                      {"acc_task", info.accTask},
                      {"min_acc", options.constraints.minAcc},
                      {"stop_reason", result.stopReason},
                      {"trials", trials}};
  return j.dump(2) + "\n";
}

int64_t recordSearchSummary(const std::string& runsPath, const std::string& exportsDir, const SearchRunInfo& info,
                            const SearchOptions& options, const std::string& spaceYaml, const SearchResult& result) {
  std::string trialIds, frontIds;
  for (const auto& t : result.trials) trialIds += (trialIds.empty() ? "" : ", ") + std::to_string(t.runId);
  for (size_t i : result.front) frontIds += (frontIds.empty() ? "" : ", ") + std::to_string(result.trials[i].runId);
  std::string objectives;
  for (const auto& o : options.objectives) objectives += (objectives.empty() ? "" : ", ") + o;
  runs::NewRun n;
  n.name = "search " + info.searchId + " pareto (" + std::to_string(result.trials.size()) + " trials, " +
           std::to_string(result.front.size()) + " on the front)";
  n.kind = runs::RunKind::Search;
  n.modelPath = info.modelPath;
  n.modelFingerprint = info.modelFingerprint;
  n.configYaml = "search:\n  id: " + info.searchId + "\n  role: pareto\n  algo: " + info.algo +
                 "\n  seed: " + std::to_string(info.seed) + "\n  trials: " + std::to_string(options.trials) +
                 "\n  population: " + std::to_string(options.population) + "\n  objectives: [" + objectives +
                 "]\n  trial_runs: [" + trialIds + "]\n  front_runs: [" + frontIds + "]\n  stop_reason: \"" +
                 result.stopReason + "\"\n" + info.evalYaml + "space:\n";
  // The space's own YAML, indented under `space:`.
  std::string indented;
  size_t start = 0;
  while (start < spaceYaml.size()) {
    size_t end = spaceYaml.find('\n', start);
    if (end == std::string::npos) end = spaceYaml.size();
    indented += "  " + spaceYaml.substr(start, end - start) + "\n";
    start = end + 1;
  }
  n.configYaml += indented;
  n.toolVersion = info.toolVersion;
  n.device = info.device;
  runs::RunWriter writer(runsPath, n);
  try {
    const std::string dir = fs::join(exportsDir, "search-" + info.searchId);
    std::filesystem::create_directories(dir);
    const std::string file = fs::join(dir, "pareto.json");
    fs::writeAtomic(file, paretoJson(info, options, result));
    writer.addArtifact({"pareto", file, 0, ""});
    writer.addMetric({"search.trials", static_cast<double>(result.trials.size()), "", "", 0, NAN});
    writer.addMetric({"search.front_size", static_cast<double>(result.front.size()), "", "", 0, NAN});
    double bestPpl = NAN, minBits = NAN;
    for (size_t i : result.front) {
      const auto& t = result.trials[i];
      if (std::isnan(bestPpl) || t.ppl < bestPpl) bestPpl = t.ppl;
      if (std::isnan(minBits) || t.weightBits < minBits) minBits = t.weightBits;
    }
    writer.addMetric({"search.best_ppl." + info.dataset, bestPpl, "best perplexity on the front", "", 0, NAN});
    writer.addMetric({"search.min_bits", minBits, "fewest weight bits on the front", "bits", 0, NAN});
    if (!info.accTask.empty()) {
      double bestAcc = NAN;
      for (size_t i : result.front)
        if (std::isnan(bestAcc) || result.trials[i].acc > bestAcc) bestAcc = result.trials[i].acc;
      writer.addMetric({"search.best_acc." + info.accTask, bestAcc, "best acc on the front", "", 0, NAN});
    }
    writer.finish();
  } catch (const std::exception& e) {
    writer.fail(e.what());
    throw;
  }
  return writer.id();
}

}  // namespace qs::algo
