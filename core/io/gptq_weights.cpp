#include "core/io/gptq_weights.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <set>

#include "core/io/gptq_pack.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/strings.h"

namespace qs::io {
namespace {

nlohmann::json readJson(const std::string& path) {
  try {
    return nlohmann::json::parse(fs::readText(path));
  } catch (const nlohmann::json::exception& e) {
    throw fileError(path, std::string("invalid JSON: ") + e.what());
  }
}

void fromJson(const nlohmann::json& q, const std::string& file, GptqFolderConfig& out) {
  try {
    out.bits = q.at("bits").get<int>();
    out.groupSize = q.value("group_size", -1);
    const std::string format = q.value("checkpoint_format", std::string("gptq"));
    if (format != "gptq" && format != "gptq_v2")
      throw fileError(file, "key 'checkpoint_format': '" + format + "' is not supported (gptq, gptq_v2)");
    out.v1 = format == "gptq";
  } catch (const nlohmann::json::exception& e) {
    throw fileError(file, std::string("GPTQ config: ") + e.what());
  }
  if (out.bits != 2 && out.bits != 3 && out.bits != 4 && out.bits != 8)
    throw fileError(file, "key 'bits': " + std::to_string(out.bits) + " is not supported (2, 3, 4 or 8)");
}

}  // namespace

bool readGptqFolderConfig(const std::string& folder, GptqFolderConfig& out) {
  const std::string cfgPath = fs::join(folder, "config.json");
  nlohmann::json cfg;
  if (fs::exists(cfgPath)) cfg = readJson(cfgPath);
  out.transposed = cfg.is_object() && cfg.value("model_type", std::string()) == "gpt2";
  if (cfg.is_object() && cfg.contains("quantization_config")) {
    const auto& q = cfg["quantization_config"];
    if (q.is_object() && str::toLower(q.value("quant_method", std::string())) == "gptq") {
      fromJson(q, cfgPath, out);
      return true;
    }
  }
  const std::string qc = fs::join(folder, "quantize_config.json");
  if (!fs::exists(qc)) return false;
  fromJson(readJson(qc), qc, out);
  return true;
}

GptqWeightSource::GptqWeightSource(std::unique_ptr<WeightSource> packed, const GptqFolderConfig& config)
    : inner_(std::move(packed)), cfg_(config) {
  std::set<std::string> hidden;
  for (const auto& m : inner_->tensors()) {
    if (!str::endsWith(m.name, ".qweight")) continue;
    const std::string base = m.name.substr(0, m.name.size() - 8);
    for (const char* part : {".qzeros", ".scales", ".g_idx"})
      if (!inner_->has(base + part))
        throw fileError(inner_->path(), "GPTQ layer '" + base + "' has qweight but no '" + base + part + "'");
    const TensorMeta& s = inner_->meta(base + ".scales");
    const TensorMeta& g = inner_->meta(base + ".g_idx");
    if (s.shape.size() != 2 || g.shape.size() != 1)
      throw fileError(inner_->path(), "GPTQ layer '" + base + "': scales must be [groups, out] and g_idx [in]");
    TensorMeta w;
    w.name = base + ".weight";
    w.dtype = DType::F32;
    w.shape = cfg_.transposed ? std::vector<int64_t>{g.shape[0], s.shape[1]} : std::vector<int64_t>{s.shape[1], g.shape[0]};
    packedBase_[w.name] = base;
    metas_.push_back(w);
    for (const char* part : {".qweight", ".qzeros", ".scales", ".g_idx"}) hidden.insert(base + part);
  }
  for (const auto& m : inner_->tensors())
    if (!hidden.count(m.name)) metas_.push_back(m);
}

at::Tensor GptqWeightSource::load(const std::string& name) const {
  auto it = packedBase_.find(name);
  if (it == packedBase_.end()) return inner_->load(name);
  const std::string& b = it->second;
  GptqLinear q{inner_->load(b + ".qweight"), inner_->load(b + ".qzeros"), inner_->load(b + ".scales"),
               inner_->load(b + ".g_idx")};
  try {
    at::Tensor w = dequantizeGptq(q, cfg_.bits, cfg_.v1);
    return cfg_.transposed ? w.t().contiguous() : w;
  } catch (const Error& e) {
    throw fileError(inner_->path(), "GPTQ layer '" + b + "': " + e.what());
  }
}

}  // namespace qs::io
