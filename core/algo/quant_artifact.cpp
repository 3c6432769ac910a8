#include "core/algo/quant_artifact.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "core/algo/pipeline.h"
#include "core/io/safetensors.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::algo {
namespace {

std::string meta(const io::SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) throw fileError(f.path(), "quantized-run artifact lacks metadata '" + key + "'");
  return it->second;
}

}  // namespace

at::ScalarType artifactDtype(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  throw Error("dtype: '" + name + "' is not float32, float16 or bfloat16");
}

at::Tensor gridWeight(const LayerQuantResult& grid) {
  LayerQuantResult r = grid;
  r.codes = expandCodes(grid.codes);
  return reconstructWeight(r);
}

void writeQuantArtifact(const std::string& path, const QuantArtifact& a) {
  std::vector<std::pair<std::string, at::Tensor>> t;
  for (const auto& [site, g] : a.grids) {
    const std::string p = "grid." + site + ".";
    t.emplace_back(p + "codes", g.codes);
    t.emplace_back(p + "scales", g.scales.to(at::kFloat));
    t.emplace_back(p + "zeros", g.zeros.to(at::kFloat));
    t.emplace_back(p + "g_idx", g.gIdx.to(at::kInt));
    if (g.outlierIndices.defined() && g.outlierIndices.numel() > 0) {
      t.emplace_back(p + "outlier_indices", g.outlierIndices.to(at::kLong));
      t.emplace_back(p + "outlier_values", g.outlierValues.to(at::kFloat));
    }
  }
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& m : a.migrations) {
    pairs.push_back({{"pair", m.pair}, {"kind", m.kind}, {"consumers", m.consumers}, {"threshold", m.threshold},
                     {"shift", m.shift.defined()}, {"scale", m.scale.defined()}});
    if (m.shift.defined()) t.emplace_back("migration." + m.pair + ".shift", m.shift);
    if (m.scale.defined()) t.emplace_back("migration." + m.pair + ".scale", m.scale);
  }
  if (t.empty())  // safetensors needs no tensors, but an empty artifact is worth saying so
    t.emplace_back("empty", at::zeros({0}, at::kFloat));
  io::writeSafetensors(path, t,
                       {{"format", kQuantArtifactFormat},
                        {"config", a.configYaml},
                        {"model", a.modelPath},
                        {"model_fingerprint", a.modelFingerprint},
                        {"dtype", a.dtype},
                        {"method", a.method},
                        {"bits", std::to_string(a.bits)},
                        {"symmetric", a.symmetric ? "true" : "false"},
                        {"group_size", std::to_string(a.groupSize)},
                        {"act_order", a.actOrder ? "true" : "false"},
                        {"migration", a.migration},
                        {"migration_pairs", pairs.dump()}});
}

QuantArtifact readQuantArtifact(const std::string& path) {
  if (!fs::exists(path)) throw fileError(path, "quantized-run artifact not found");
  auto f = io::SafetensorsFile::open(path);
  if (meta(*f, "format") != kQuantArtifactFormat)
    throw fileError(path, "not a QuantScope quantized-run artifact (format '" + meta(*f, "format") + "', expected " +
                              kQuantArtifactFormat + ")");
  QuantArtifact a;
  a.configYaml = meta(*f, "config");
  a.modelPath = meta(*f, "model");
  a.modelFingerprint = meta(*f, "model_fingerprint");
  a.dtype = meta(*f, "dtype");
  a.method = meta(*f, "method");
  try {
    a.bits = std::stoi(meta(*f, "bits"));
    a.groupSize = std::stoi(meta(*f, "group_size"));
  } catch (const std::logic_error&) {
    throw fileError(path, "metadata 'bits'/'group_size' is not a number");
  }
  a.symmetric = meta(*f, "symmetric") == "true";
  a.actOrder = meta(*f, "act_order") == "true";
  a.migration = meta(*f, "migration");
  nlohmann::json pairs;
  try {
    pairs = nlohmann::json::parse(meta(*f, "migration_pairs"));
    for (const auto& j : pairs) {
      MigrationRecord m;
      m.pair = j.at("pair").get<std::string>();
      m.kind = j.at("kind").get<std::string>();
      m.consumers = j.at("consumers").get<std::vector<std::string>>();
      m.threshold = j.at("threshold").get<double>();
      if (j.at("shift").get<bool>()) m.shift = f->load("migration." + m.pair + ".shift");
      if (j.at("scale").get<bool>()) m.scale = f->load("migration." + m.pair + ".scale");
      a.migrations.push_back(std::move(m));
    }
  } catch (const nlohmann::json::exception& e) {
    throw fileError(path, std::string("unreadable metadata 'migration_pairs': ") + e.what());
  }
  for (const auto& tm : f->tensors()) {
    const std::string& n = tm.name;
    if (n.rfind("grid.", 0) != 0) continue;
    const size_t dot = n.rfind('.');
    const std::string site = n.substr(5, dot - 5), field = n.substr(dot + 1);
    LayerQuantResult& g = a.grids[site];
    g.method = a.method;
    const at::Tensor v = f->load(n);
    if (field == "codes") g.codes = v;
    else if (field == "scales") g.scales = v;
    else if (field == "zeros") g.zeros = v;
    else if (field == "g_idx") g.gIdx = v;
    else if (field == "outlier_indices") g.outlierIndices = v;
    else if (field == "outlier_values") g.outlierValues = v;
  }
  for (const auto& [site, g] : a.grids)
    if (!g.codes.defined() || !g.scales.defined() || !g.zeros.defined() || !g.gIdx.defined())
      throw fileError(path, "site '" + site + "' lacks one of codes/scales/zeros/g_idx");
  return a;
}

std::unique_ptr<model::Model> rebuildQuantizedModel(const QuantArtifact& a, bool quantizedWeights, c10::Device device) {
  if (!fs::exists(a.modelPath))
    throw fileError(a.modelPath, "the run's source model is gone; export needs it (the artifact stores no FP weights)");
  model::LoadOptions lo;
  lo.dtype = artifactDtype(a.dtype);
  lo.device = device;
  auto m = model::openModel(a.modelPath, lo);
  applyMigrationRecords(*m, a.migrations);
  if (quantizedWeights) {
    std::map<std::string, const model::SiteInfo*> sites;
    for (const auto& s : m->sites()) sites[s.name] = &s;
    for (const auto& [site, g] : a.grids) {
      auto it = sites.find(site);
      if (it == sites.end()) throw Error("site '" + site + "' of the run does not exist in " + a.modelPath);
      if (g.codes.size(0) != it->second->outFeatures || g.codes.size(1) != it->second->inFeatures)
        throw Error("site '" + site + "': the run's codes do not have the shape of the model's weight");
      m->setSiteWeight(site, gridWeight(g));
    }
  }
  return m;
}

}  // namespace qs::algo
