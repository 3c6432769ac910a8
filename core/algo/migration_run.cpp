#include "core/algo/migration_run.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "core/algo/act_calibration.h"
#include "core/algo/os_plus.h"
#include "core/algo/smoothquant.h"
#include "core/model/migration.h"
#include "core/model/model.h"
#include "core/io/safetensors.h"
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

namespace {

// A site's statistics from its captured input: min/max over every token, the kurtosis of the
// subsample. After a migration the input is exactly (x - shift) / scale (model/migration.h), so
// the "after" statistics are those of the same capture transformed (scale > 0 keeps min < max).
MigrationSiteStats siteStats(const model::MigrationPair& pair, const SiteInputStats& in, const at::Tensor& shift,
                             const at::Tensor& scale) {
  at::Tensor mn = in.min, mx = in.max, x = in.statTokens;
  if (shift.defined()) {
    mn = mn - shift;
    mx = mx - shift;
    x = x - shift;
  }
  if (scale.defined()) {
    mn = mn / scale;
    mx = mx / scale;
    x = x / scale;
  }
  MigrationSiteStats s;
  s.pair = pair.name;
  s.site = pair.consumers.front();
  s.block = pair.block;
  s.maxAbs = at::maximum(mn.abs(), mx.abs()).max().item<double>();
  s.asymmetry = ((mx + mn) / 2).abs().max().item<double>();
  s.kurtosis = pearsonKurtosis(x);
  return s;
}

}  // namespace

MigrationOutcome runMigration(model::Model& model, const at::Tensor& samples, const QuantizeConfig& config,
                              jobs::Progress& progress) {
  MigrationOutcome o;
  o.method = config.migrate;
  if (config.migrate == Migration::None) return o;
  c10::InferenceMode guard;
  const auto t0 = std::chrono::steady_clock::now();
  const auto pairs = pairsByName(model);
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
  // The statistics before and after of every pair, from the capture the migration itself makes.
  const PairObserver observe = [&](const model::MigrationPair& pair, const SiteInputStats& in, const at::Tensor& shift,
                                   const at::Tensor& scale) {
    o.before.push_back(siteStats(pair, in, {}, {}));
    o.after.push_back(siteStats(pair, in, shift, scale));
  };
  if (config.migrate == Migration::OsPlus) {
    OsPlusOptions opt;
    opt.withValueOut(config.osplusValueOut)
        .withShift(config.osplusShift)
        .withScale(config.osplusScale)
        .withThreshold(config.osplusThreshold)
        .withSearchSteps(config.osplusSearchSteps)
        .withSearchTokens(config.osplusSearchTokens)
        .withSearch(config.osplusSearch)
        .withWeight(config.layer.spec);
    // The search needs an activation quantizer; with FP activations (a_bits 16) it assumes
    // 8-bit per-tensor, OS+'s default, so scaling still targets quantization-friendly inputs.
    quant::ActQuantOptions act = config.act;
    if (!act.enabled()) act = quant::ActQuantOptions().withBits(8);
    opt.withAct(act);
    const OsPlusReport rep = applyOsPlus(model, samples, opt, progress, observe, kMigrationStatTokens);
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
    for (const auto& sp : applySmoothQuant(model, samples, opt, progress, observe, kMigrationStatTokens))
      o.records.push_back(record(sp.name, {}, sp.scale));
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o;
}

namespace {

constexpr const char* kCheckpointFormat = "quantscope-migration-checkpoint/1";

nlohmann::json statsJson(const std::vector<MigrationSiteStats>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& s : v)
    a.push_back({{"pair", s.pair}, {"site", s.site}, {"block", s.block}, {"max_abs", s.maxAbs},
                 {"kurtosis", s.kurtosis}, {"asymmetry", s.asymmetry}});
  return a;
}

std::vector<MigrationSiteStats> statsFrom(const nlohmann::json& a) {
  std::vector<MigrationSiteStats> v;
  for (const auto& j : a) {
    MigrationSiteStats s;
    s.pair = j.at("pair").get<std::string>();
    s.site = j.at("site").get<std::string>();
    s.block = j.at("block").get<int>();
    s.maxAbs = j.at("max_abs").get<double>();
    s.kurtosis = j.at("kurtosis").get<double>();
    s.asymmetry = j.at("asymmetry").get<double>();
    v.push_back(s);
  }
  return v;
}

}  // namespace

void writeMigrationCheckpoint(const std::string& path, const MigrationOutcome& o, const std::string& tag) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  nlohmann::json records = nlohmann::json::array();
  for (const auto& r : o.records) {
    records.push_back({{"pair", r.pair}, {"kind", r.kind}, {"consumers", r.consumers}, {"threshold", r.threshold},
                       {"error_before", r.errorBefore}, {"error_after", r.errorAfter},
                       {"shift", r.shift.defined()}, {"scale", r.scale.defined()}});
    if (r.shift.defined()) tensors.emplace_back("shift." + r.pair, r.shift);
    if (r.scale.defined()) tensors.emplace_back("scale." + r.pair, r.scale);
  }
  if (tensors.empty()) tensors.emplace_back("empty", at::zeros({0}, at::kFloat));
  io::writeSafetensors(path, tensors,
                       {{"format", kCheckpointFormat},
                        {"tag", tag},
                        {"method", migrationName(o.method)},
                        {"seconds", std::to_string(o.seconds)},
                        {"records", records.dump()},
                        {"before", statsJson(o.before).dump()},
                        {"after", statsJson(o.after).dump()}});
}

MigrationOutcome readMigrationCheckpoint(const std::string& path, const std::string& tag) {
  auto f = io::SafetensorsFile::open(path);
  auto meta = [&](const char* key) {
    auto it = f->metadata().find(key);
    if (it == f->metadata().end()) throw fileError(path, std::string("migration checkpoint lacks metadata '") + key + "'");
    return it->second;
  };
  if (meta("format") != kCheckpointFormat)
    throw fileError(path, "not a QuantScope migration checkpoint (format '" + meta("format") + "')");
  if (meta("tag") != tag)
    throw fileError(path, "the migration checkpoint was written for another config or model; re-run without --resume");
  MigrationOutcome o;
  try {
    o.method = parseMigration(meta("method"));
    o.seconds = std::stod(meta("seconds"));
    for (const auto& j : nlohmann::json::parse(meta("records"))) {
      MigrationRecord r;
      r.pair = j.at("pair").get<std::string>();
      r.kind = j.at("kind").get<std::string>();
      r.consumers = j.at("consumers").get<std::vector<std::string>>();
      r.threshold = j.at("threshold").get<double>();
      r.errorBefore = j.at("error_before").get<double>();
      r.errorAfter = j.at("error_after").get<double>();
      if (j.at("shift").get<bool>()) r.shift = f->load("shift." + r.pair);
      if (j.at("scale").get<bool>()) r.scale = f->load("scale." + r.pair);
      o.records.push_back(std::move(r));
    }
    o.before = statsFrom(nlohmann::json::parse(meta("before")));
    o.after = statsFrom(nlohmann::json::parse(meta("after")));
  } catch (const nlohmann::json::exception& e) {
    throw fileError(path, std::string("unreadable migration checkpoint: ") + e.what());
  } catch (const std::logic_error& e) {
    throw fileError(path, std::string("unreadable migration checkpoint: ") + e.what());
  }
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
