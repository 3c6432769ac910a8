#include "ui/plots/pareto_data.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/runs/run_store.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::plot {
namespace {

double number(const nlohmann::json& t, const char* key) {
  return t.contains(key) && t[key].is_number() ? t[key].get<double>() : NAN;
}

}  // namespace

std::pair<std::string, std::string> searchRunRole(const std::string& configYaml) {
  try {
    const YAML::Node s = YAML::Load(configYaml)["search"];
    if (!s || !s.IsMap() || !s["id"]) return {"", ""};
    return {s["id"].Scalar(), s["role"] ? s["role"].Scalar() : std::string("trial")};
  } catch (const YAML::Exception&) {
    return {"", ""};
  }
}

std::string SearchPareto::yLabel() const {
  return accTask.empty() ? "perplexity (" + dataset + ")" : accTask + " acc";
}

int SearchPareto::frontCount() const {
  return static_cast<int>(std::count_if(points.begin(), points.end(), [](const ParetoPoint& p) { return p.front; }));
}

std::vector<int64_t> SearchPareto::frontRunIds() const {
  std::vector<const ParetoPoint*> f;
  for (const auto& p : points)
    if (p.front) f.push_back(&p);
  std::stable_sort(f.begin(), f.end(), [](const ParetoPoint* a, const ParetoPoint* b) { return a->bits < b->bits; });
  std::vector<int64_t> ids;
  for (const auto* p : f) ids.push_back(p->runId);
  return ids;
}

int SearchPareto::indexOfRun(int64_t runId) const {
  for (size_t i = 0; i < points.size(); ++i)
    if (points[i].runId == runId && runId != 0) return static_cast<int>(i);
  return -1;
}

std::string SearchPareto::describe(int index) const {
  if (index < 0 || index >= static_cast<int>(points.size())) return "";
  const auto& p = points[static_cast<size_t>(index)];
  char buf[256];
  std::snprintf(buf, sizeof buf, "trial %d (run %lld): %.3f bits/weight, ppl %.4f", p.trial,
                static_cast<long long>(p.runId), p.bits, ppl[static_cast<size_t>(index)]);
  std::string s = buf;
  if (!accTask.empty()) {
    std::snprintf(buf, sizeof buf, ", %s acc %.4f", accTask.c_str(), acc[static_cast<size_t>(index)]);
    s += buf;
  }
  return s + (p.front ? "; on the front" : p.feasible ? "; dominated" : "; infeasible (constraint)");
}

SearchPareto loadSearchPareto(const std::string& runsPath, int64_t runId) {
  runs::RunStore store(runsPath);
  runs::RunInfo run = store.getRun(runId);
  auto [searchId, role] = searchRunRole(run.configYaml);
  if (searchId.empty())
    throw Error("run " + std::to_string(runId) + " is not a search run (qscope runs list --kind search)");
  if (role != "pareto") {  // a trial: the newest finished summary of its search
    runs::RunFilter f;
    f.kind = "search";
    f.status = "finished";
    bool found = false;
    for (const auto& r : store.listRuns(f)) {
      auto [id, rl] = searchRunRole(r.configYaml);
      if (id == searchId && rl == "pareto") {
        run = r;
        found = true;
        break;
      }
    }
    if (!found) throw Error("search " + searchId + " has no finished summary run yet (run `qscope search` to the end)");
  }
  const auto record = store.loadRun(run.id, false);
  SearchPareto s;
  s.summaryRunId = run.id;
  s.searchId = searchId;
  s.model = record.info.modelPath;
  for (const auto& a : record.artifacts)
    if (a.kind == "pareto") s.file = store.artifactPath(a);
  if (s.file.empty()) throw Error("run " + std::to_string(run.id) + " has no pareto.json artifact");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(fs::readText(s.file));
    s.algo = j.value("algo", std::string("?"));
    s.dataset = j.value("dataset", std::string("?"));
    if (j.contains("acc_task") && j["acc_task"].is_string()) s.accTask = j["acc_task"].get<std::string>();
    if (j.contains("objectives")) s.objectives = j["objectives"].get<std::vector<std::string>>();
    for (const auto& t : j.at("trials")) {
      ParetoPoint p;
      p.bits = number(t, "bits");
      const double ppl = number(t, "ppl"), acc = number(t, "acc");
      p.ppl = s.accTask.empty() ? ppl : acc;
      p.front = t.at("front").get<bool>();
      p.feasible = t.at("feasible").get<bool>();
      p.trial = t.at("trial").get<int>();
      p.runId = t.at("run_id").get<int64_t>();
      s.points.push_back(p);
      s.configs.push_back(t.value("config", std::string()));
      s.ppl.push_back(ppl);
      s.acc.push_back(acc);
      if (t.contains("acc_n") && t["acc_n"].is_number()) s.accN = std::max(s.accN, t["acc_n"].get<int64_t>());
    }
  } catch (const nlohmann::json::exception& e) {
    throw fileError(s.file, std::string("is not a pareto.json of qscope search: ") + e.what());
  }
  return s;
}

int nearestPoint(const SearchPareto& s, double x, double y, double xScale, double yScale, double maxDistance) {
  int best = -1;
  double bestD = maxDistance;
  for (size_t i = 0; i < s.points.size(); ++i) {
    const auto& p = s.points[i];
    if (!std::isfinite(p.bits) || !std::isfinite(p.ppl)) continue;
    const double d = std::hypot((p.bits - x) * xScale, (p.ppl - y) * yScale);
    if (d <= bestD) {
      bestD = d;
      best = static_cast<int>(i);
    }
  }
  return best;
}

void exportTrialConfig(const SearchPareto& s, int index, const std::string& path) {
  if (index < 0 || index >= static_cast<int>(s.points.size()))
    throw Error("export config: no point " + std::to_string(index) + " in search " + s.searchId);
  const std::string& config = s.configs[static_cast<size_t>(index)];
  if (config.empty()) throw Error(s.file + ": trial " + std::to_string(s.points[static_cast<size_t>(index)].trial) +
                                  " has no config");
  const auto& p = s.points[static_cast<size_t>(index)];
  const std::string header = "# search " + s.searchId + " trial " + std::to_string(p.trial) + " (run " +
                             std::to_string(p.runId) + "): " + s.describe(index) +
                             "\n# use: qscope eval MODEL --precision THIS_FILE\n";
  fs::writeAtomic(path, header + config);
}

}  // namespace qs::plot
