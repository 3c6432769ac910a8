#include "core/algo/migration_run.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <map>

#include "core/algo/act_calibration.h"
#include "core/algo/os_plus.h"
#include "core/algo/smoothquant.h"
#include "core/model/migration.h"
#include "core/model/model.h"
#include "core/util/error.h"

namespace qs::algo {
namespace {

std::map<std::string, model::MigrationPair> pairsByName(const model::Model& model) {
  std::map<std::string, model::MigrationPair> out;
  for (auto& p : model.migrationPairs()) out.emplace(p.name, std::move(p));
  return out;
}

double pearsonKurtosis(const at::Tensor& x) {
  const at::Tensor v = x.to(at::kDouble).reshape({-1});
  const at::Tensor d = v - v.mean();
  const double m2 = (d * d).mean().item<double>();
  if (m2 <= 0) return 0;
  return (d.pow(4)).mean().item<double>() / (m2 * m2);
}

}  // namespace

std::vector<MigrationSiteStats> migrationStats(model::Model& model, const at::Tensor& samples,
                                               const std::vector<std::string>& pairNames, jobs::Progress& progress) {
  const auto pairs = pairsByName(model);
  std::vector<std::string> watch;
  std::vector<const model::MigrationPair*> chosen;
  for (const auto& name : pairNames) {
    auto it = pairs.find(name);
    if (it == pairs.end()) throw Error("migration pair '" + name + "' does not exist in this model");
    chosen.push_back(&it->second);
    watch.push_back(it->second.consumers.front());
  }
  std::vector<MigrationSiteStats> out;
  if (watch.empty()) return out;
  const auto stats = captureSiteInputs(model, samples, watch, kMigrationStatTokens, progress);
  c10::InferenceMode guard;
  for (const auto* p : chosen) {
    const SiteInputStats& st = stats.at(p->consumers.front());
    MigrationSiteStats s;
    s.pair = p->name;
    s.site = p->consumers.front();
    s.block = p->block;
    s.maxAbs = st.absMax.max().item<double>();
    s.asymmetry = ((st.max + st.min) / 2).abs().max().item<double>();
    s.kurtosis = pearsonKurtosis(st.tokens);
    out.push_back(s);
  }
  return out;
}

MigrationOutcome runMigration(model::Model& model, const at::Tensor& samples, const QuantizeConfig& config,
                              jobs::Progress& progress) {
  MigrationOutcome o;
  o.method = config.migrate;
  if (config.migrate == Migration::None) return o;
  const auto t0 = std::chrono::steady_clock::now();
  const auto pairs = pairsByName(model);
  const bool valueOut = config.migrate == Migration::OsPlus && config.osplusValueOut;
  std::vector<std::string> names;
  for (const auto& p : model.migrationPairs())
    if (valueOut || p.kind == model::MigrationPair::Kind::Norm) names.push_back(p.name);
  {
    jobs::SubProgress sub(progress, 0.0, 0.2);
    o.before = migrationStats(model, samples, names, sub);
  }
  auto record = [&](const std::string& name, const at::Tensor& shift, const at::Tensor& scale) {
    const model::MigrationPair& p = pairs.at(name);
    MigrationRecord r;
    r.pair = name;
    r.kind = p.kind == model::MigrationPair::Kind::Norm ? "norm" : "value_out";
    r.consumers = p.consumers;
    r.shift = shift.defined() ? shift.to(at::kCPU, at::kFloat).contiguous() : at::Tensor();
    r.scale = scale.defined() ? scale.to(at::kCPU, at::kFloat).contiguous() : at::Tensor();
    return r;
  };
  {
    jobs::SubProgress sub(progress, 0.2, 0.8);
    if (config.migrate == Migration::OsPlus) {
      OsPlusOptions opt;
      opt.withValueOut(config.osplusValueOut)
          .withShift(config.osplusShift)
          .withScale(config.osplusScale)
          .withThreshold(config.osplusThreshold)
          .withSearchSteps(config.osplusSearchSteps)
          .withSearchTokens(config.osplusSearchTokens)
          .withWeight(config.layer.spec);
      // The search needs an activation quantizer; with FP activations (a_bits 16) it assumes
      // 8-bit per-tensor, OS+'s default, so scaling still targets quantization-friendly inputs.
      quant::ActQuantOptions act = config.act;
      if (!act.enabled()) act = quant::ActQuantOptions().withBits(8);
      opt.withAct(act);
      const OsPlusReport rep = applyOsPlus(model, samples, opt, sub);
      for (const auto& pr : rep.pairs) {
        MigrationRecord r = record(pr.name, pr.shift, pr.scale);
        r.threshold = pr.threshold;
        r.errorBefore = pr.errorBefore;
        r.errorAfter = pr.errorAfter;
        o.records.push_back(std::move(r));
      }
    } else {
      SmoothQuantOptions opt;
      opt.withAlpha(config.sqAlpha);
      for (const auto& sp : applySmoothQuant(model, samples, opt, sub)) o.records.push_back(record(sp.name, {}, sp.scale));
    }
  }
  std::vector<std::string> done;
  for (const auto& r : o.records) done.push_back(r.pair);
  // Keep "before" to the pairs that were migrated, in the same order as "after".
  std::vector<MigrationSiteStats> before;
  for (const auto& n : done)
    for (const auto& s : o.before)
      if (s.pair == n) before.push_back(s);
  o.before = std::move(before);
  {
    jobs::SubProgress sub(progress, 0.8, 1.0);
    o.after = migrationStats(model, samples, done, sub);
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o;
}

void applyMigrationRecords(model::Model& model, const std::vector<MigrationRecord>& records) {
  const auto pairs = pairsByName(model);
  for (const auto& r : records) {
    auto it = pairs.find(r.pair);
    if (it == pairs.end())
      throw Error("migration pair '" + r.pair + "' of the run does not exist in this model (a different checkpoint?)");
    model::foldMigration(model, it->second, r.shift, r.scale);
  }
}

}  // namespace qs::algo
