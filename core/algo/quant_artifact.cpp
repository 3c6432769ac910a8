#include "core/algo/quant_artifact.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <set>

#include "core/algo/pipeline.h"
#include "core/io/safetensors.h"
#include "core/io/tensor_dtype.h"
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
  std::vector<io::StreamedTensor> t;
  auto held = [&](const std::string& name, const at::Tensor& v) {
    const at::Tensor c = v.contiguous();
    t.push_back({{name, c.scalar_type(), c.sizes().vec()}, [c] { return c; }});
  };
  for (const auto& [site, g] : a.grids) {
    const std::string p = "grid." + site + ".";
    held(p + "codes", g.codes);
    held(p + "scales", g.scales.to(at::kFloat));
    held(p + "zeros", g.zeros.to(at::kFloat));
    held(p + "g_idx", g.gIdx.to(at::kInt));
    if (g.outlierIndices.defined() && g.outlierIndices.numel() > 0) {
      held(p + "outlier_indices", g.outlierIndices.to(at::kLong));
      held(p + "outlier_values", g.outlierValues.to(at::kFloat));
    }
  }
  // Grids still in the pipeline's block files: described from their headers, copied one by one.
  static const std::map<std::string, at::ScalarType> kFieldDtype = {
      {"codes", at::kByte},         {"scales", at::kFloat},          {"zeros", at::kFloat},
      {"g_idx", at::kInt},          {"outlier_indices", at::kLong},  {"outlier_values", at::kFloat}};
  for (const auto& file : a.gridFiles) {
    std::shared_ptr<io::SafetensorsFile> f = io::SafetensorsFile::open(file);
    for (const auto& m : f->tensors()) {
      if (m.name.rfind("grid:", 0) != 0) continue;
      const size_t colon = m.name.rfind(':');
      const std::string site = m.name.substr(5, colon - 5), field = m.name.substr(colon + 1);
      auto known = kFieldDtype.find(field);
      if (known == kFieldDtype.end()) continue;
      if (field == "outlier_indices" && m.numel() == 0) continue;
      const at::ScalarType stored = io::toScalarType(m.dtype);
      const at::ScalarType dtype = field == "codes" ? stored : known->second;
      const std::string name = m.name;
      t.push_back({{"grid." + site + "." + field, dtype, m.shape}, [f, name, dtype] { return f->load(name).to(dtype); }});
    }
  }
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& m : a.migrations) {
    pairs.push_back({{"pair", m.pair}, {"kind", m.kind}, {"consumers", m.consumers}, {"threshold", m.threshold},
                     {"shift", m.shift.defined()}, {"scale", m.scale.defined()}});
    if (m.shift.defined()) held("migration." + m.pair + ".shift", m.shift);
    if (m.scale.defined()) held("migration." + m.pair + ".scale", m.scale);
  }
  if (t.empty())  // safetensors needs no tensors, but an empty artifact is worth saying so
    held("empty", at::zeros({0}, at::kFloat));
  io::writeSafetensorsStreamed(path, t,
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

LayerQuantResult artifactGrid(const QuantArtifact& a, const std::string& site) {
  auto it = a.grids.find(site);
  if (it != a.grids.end()) return it->second;
  if (!a.file || !a.file->find("grid." + site + ".codes"))
    throw Error("the quantized-run artifact has no grid for site '" + site + "'");
  LayerQuantResult g = loadGridFields(*a.file, [&](const char* field) { return "grid." + site + "." + field; });
  g.method = a.method;
  return g;
}

LayerQuantResult loadGridFields(const io::SafetensorsFile& f, const std::function<std::string(const char*)>& name) {
  LayerQuantResult g;
  auto field = [&](const char* n) {
    const std::string full = name(n);
    return f.find(full) ? f.load(full) : at::Tensor();
  };
  g.codes = field("codes");
  g.scales = field("scales");
  g.zeros = field("zeros");
  g.gIdx = field("g_idx");
  g.outlierIndices = field("outlier_indices");
  g.outlierValues = field("outlier_values");
  return g;
}

QuantArtifact readQuantArtifact(const std::string& path, bool loadGrids) {
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
  std::map<std::string, std::set<std::string>> fields;  // site -> fields present
  for (const auto& tm : f->tensors()) {
    const std::string& n = tm.name;
    if (n.rfind("grid.", 0) != 0) continue;
    const size_t dot = n.rfind('.');
    const std::string site = n.substr(5, dot - 5), field = n.substr(dot + 1);
    fields[site].insert(field);
    if (!loadGrids) continue;
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
  for (const auto& [site, present] : fields)
    for (const char* need : {"codes", "scales", "zeros", "g_idx"})
      if (!present.count(need)) throw fileError(path, "site '" + site + "' lacks one of codes/scales/zeros/g_idx");
  if (!loadGrids) {
    a.file = f;
    for (const auto& [site, present] : fields) a.gridSites.push_back(site);
  }
  return a;
}

std::map<std::string, GridShape> artifactGridShapes(const QuantArtifact& a) {
  std::map<std::string, GridShape> shapes;
  for (const auto& [site, g] : a.grids)
    shapes[site] = {g.codes.size(0), g.codes.size(1), g.scales.size(1),
                    g.outlierIndices.defined() ? g.outlierIndices.size(0) : 0};
  for (const auto& site : a.gridSites) {
    const io::TensorMeta* codes = a.file->find("grid." + site + ".codes");
    const io::TensorMeta* scales = a.file->find("grid." + site + ".scales");
    const io::TensorMeta* outliers = a.file->find("grid." + site + ".outlier_indices");
    if (!codes || !scales || codes->shape.size() != 2 || scales->shape.size() != 2)
      throw Error("the quantized-run artifact's grid of site '" + site + "' is not [out, in] codes with [out, groups] scales");
    shapes[site] = {codes->shape[0], codes->shape[1], scales->shape[1],
                    outliers && !outliers->shape.empty() ? outliers->shape[0] : 0};
  }
  return shapes;
}

std::unique_ptr<model::Model> rebuildQuantizedModel(const QuantArtifact& a, bool quantizedWeights, c10::Device device,
                                                    const std::string& spillDir) {
  if (!fs::exists(a.modelPath))
    throw fileError(a.modelPath, "the run's source model is gone; export needs it (the artifact stores no FP weights)");
  model::LoadOptions lo;
  lo.dtype = artifactDtype(a.dtype);
  lo.device = device;
  auto m = model::openModel(a.modelPath, lo);
  if (!spillDir.empty()) m->setOverrideBudget(m->defaultOverrideBudget(), spillDir);
  std::vector<std::string> gridSites = a.gridSites;
  for (const auto& [site, g] : a.grids) gridSites.push_back(site);
  std::map<std::string, const model::SiteInfo*> sites;
  for (const auto& s : m->sites()) sites[s.name] = &s;
  std::set<std::string> withGrid;
  if (quantizedWeights) {
    for (const auto& site : gridSites) {
      auto it = sites.find(site);
      if (it == sites.end()) throw Error("site '" + site + "' of the run does not exist in " + a.modelPath);
      withGrid.insert(site);
    }
  }
  // A grid site's weight is its grid's whatever was folded into it before quantization: with grids
  // read on demand, each migration's weight changes to such sites are replaced at once, so no more
  // than one pair's consumers are held in memory at a time (norms and biases keep the fold).
  auto setGridWeight = [&](const std::string& site) {
    if (a.grids.count(site)) {
      const LayerQuantResult& g = a.grids.at(site);
      const model::SiteInfo& si = *sites.at(site);
      if (g.codes.size(0) != si.outFeatures || g.codes.size(1) != si.inFeatures)
        throw Error("site '" + site + "': the run's codes do not have the shape of the model's weight");
      m->setSiteWeight(site, gridWeight(g));
      return;
    }
    const io::TensorMeta* meta = a.file->find("grid." + site + ".codes");
    const model::SiteInfo& si = *sites.at(site);
    if (!meta || meta->shape.size() != 2 || meta->shape[0] != si.outFeatures || meta->shape[1] != si.inFeatures)
      throw Error("site '" + site + "': the run's codes do not have the shape of the model's weight");
    m->setSiteWeightLoader(site, [file = a.file, method = a.method, site] {
      QuantArtifact view;
      view.method = method;
      view.file = file;
      return gridWeight(artifactGrid(view, site));
    });
  };
  // Safe because every site consumes one pair at most, and the only later fold that can touch a
  // replaced site (the value rows of v_out's producer) reads its bias, never its weight.
  std::map<std::string, model::MigrationPair> pairs;
  for (auto& p : m->migrationPairs()) pairs.emplace(p.name, p);
  for (const auto& r : a.migrations) {
    applyMigrationRecords(*m, {r});
    auto it = pairs.find(r.pair);
    std::vector<std::string> touched = it == pairs.end() ? r.consumers : it->second.consumers;
    if (it != pairs.end() && !it->second.producer.empty()) touched.push_back(it->second.producer);
    for (const auto& site : touched)
      if (withGrid.count(site) && !a.grids.count(site)) setGridWeight(site);
  }
  for (const auto& site : withGrid) setGridWeight(site);
  return m;
}

}  // namespace qs::algo
