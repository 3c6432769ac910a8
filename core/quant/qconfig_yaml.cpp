#include "core/quant/qconfig_yaml.h"

#include "core/config/yaml_helpers.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/strings.h"

namespace qs::quant {
namespace {

using config::keyError;
using config::readBool;
using config::readDouble;
using config::readInt;
using config::readString;

ActQuantOptions parseAct(const YAML::Node& n, const std::string& file, const std::string& prefix) {
  config::requireMap(n, file, prefix);
  config::rejectUnknownKeys(n,
                            {"quantizer", "observer", "bit", "symmetric", "ch_axis", "group_size", "dynamic",
                             "ema_ratio", "percentile", "mse_grid", "mse_maxshrink", "mse_norm"},
                            file, prefix);
  ActQuantOptions a;
  const std::string q = str::toLower(readString(n, "quantizer", file, prefix, false, "FixedFakeQuantize"));
  if (q == "fixedfakequantize" || q == "fixed" || q == "per_tensor")
    a.granularity = Granularity::PerTensor;
  else if (q == "tokenfixedfakequantize" || q == "token" || q == "per_token")
    a.granularity = Granularity::PerToken;
  else if (q == "groupfixedfakequantize" || q == "group" || q == "per_group")
    a.granularity = Granularity::PerGroup;
  else
    throw keyError(file, config::joinKey(prefix, "quantizer"),
                   "unsupported activation quantizer '" + readString(n, "quantizer", file, prefix) +
                       "' (FixedFakeQuantize = per-tensor, TokenFixedFakeQuantize = per-token, "
                       "GroupFixedFakeQuantize = per-group)");
  try {
    a.observer = parseActObserver(readString(n, "observer", file, prefix, false, "EMAMinMaxObserver"),
                                  config::joinKey(prefix, "observer"));
  } catch (const Error& e) {
    throw fileError(file, e.what());
  }
  a.bits = static_cast<int>(readInt(n, "bit", file, prefix, a.bits));
  a.symmetric = readBool(n, "symmetric", file, prefix, a.symmetric);
  // OS+ writes ch_axis: -1 for activations (one range per tensor); a channel axis cannot be
  // applied at inference without migrating it, which is what OS+ itself is for.
  const int64_t ch = readInt(n, "ch_axis", file, prefix, -1);
  if (ch != -1)
    throw keyError(file, config::joinKey(prefix, "ch_axis"),
                   "activation ranges are per tensor (-1), per token or per group (quantizer); got " +
                       std::to_string(ch));
  a.groupSize = static_cast<int>(readInt(n, "group_size", file, prefix, a.groupSize));
  a.dynamic = readBool(n, "dynamic", file, prefix, a.dynamic);
  a.emaRatio = readDouble(n, "ema_ratio", file, prefix, a.emaRatio);
  a.percentile = readDouble(n, "percentile", file, prefix, a.percentile);
  a.mseGrid = static_cast<int>(readInt(n, "mse_grid", file, prefix, a.mseGrid));
  a.mseMaxShrink = readDouble(n, "mse_maxshrink", file, prefix, a.mseMaxShrink);
  a.mseNorm = readDouble(n, "mse_norm", file, prefix, a.mseNorm);
  try {
    a.validate();
  } catch (const Error& e) {
    throw fileError(file, std::string("in '") + prefix + "': " + e.what());
  }
  return a;
}

QuantSpec parseWeight(const YAML::Node& n, const std::string& file, const std::string& prefix) {
  config::requireMap(n, file, prefix);
  QuantSpec spec = QuantSpec().withBits(8).withSymmetric(true);
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    if (!kv.second.IsScalar())
      throw keyError(file, config::joinKey(prefix, key), "expected a scalar, got " + config::yamlTypeName(kv.second));
    std::string value = kv.second.Scalar();
    const std::string lv = str::toLower(value);
    if (lv == "true" || lv == "false") value = lv;  // OS+ files write Python's True/False
    try {
      spec.set(key, value);
    } catch (const Error& e) {
      throw keyError(file, config::joinKey(prefix, key), e.what());
    }
  }
  try {
    spec.validate();
  } catch (const Error& e) {
    throw fileError(file, std::string("in '") + prefix + "': " + e.what());
  }
  return spec;
}

}  // namespace

QConfig parseQConfig(const std::string& yamlText, const std::string& file) {
  YAML::Node root = config::parseYaml(yamlText, file);
  config::requireMap(root, file, "", /*nullIsEmpty=*/false);
  config::rejectUnknownKeys(root, {"quant", "model"}, file);
  YAML::Node q = root["quant"];
  if (!q) throw keyError(file, "quant", "missing (required: the a_qconfig/w_qconfig section)");
  config::requireMap(q, file, "quant");
  config::rejectUnknownKeys(q,
                            {"a_qconfig", "w_qconfig", "calibrate", "calibrate_path", "except_quantizer",
                             "is_remove_padding", "migrate", "max_length", "quantize_matmul"},
                            file, "quant");
  QConfig c;
  if (q["a_qconfig"]) c.act = parseAct(q["a_qconfig"], file, "quant.a_qconfig");
  if (q["w_qconfig"]) c.weight = parseWeight(q["w_qconfig"], file, "quant.w_qconfig");
  c.calibrate = static_cast<int>(readInt(q, "calibrate", file, "quant", c.calibrate));
  if (c.calibrate < 1) throw keyError(file, "quant.calibrate", "must be at least 1");
  c.calibratePath = readString(q, "calibrate_path", file, "quant");
  c.exceptQuantizer = config::readStringList(q, "except_quantizer", file, "quant");
  c.isRemovePadding = readBool(q, "is_remove_padding", file, "quant", c.isRemovePadding);
  c.migrate = readBool(q, "migrate", file, "quant", c.migrate);
  c.maxLength = static_cast<int>(readInt(q, "max_length", file, "quant", c.maxLength));
  if (c.maxLength < 2) throw keyError(file, "quant.max_length", "must be at least 2 tokens");
  c.quantizeMatmul = readBool(q, "quantize_matmul", file, "quant", c.quantizeMatmul);
  return c;
}

QConfig loadQConfig(const std::string& path) {
  if (!fs::exists(path)) throw fileError(path, "q-config file not found");
  return parseQConfig(fs::readText(path), path);
}

bool siteExcluded(const std::string& site, const std::vector<std::string>& except) {
  for (const auto& e : except) {
    if (e.empty()) continue;
    if (site == e) return true;
    if (site.size() > e.size() && site.compare(site.size() - e.size(), e.size(), e) == 0 &&
        site[site.size() - e.size() - 1] == '.')
      return true;
  }
  return false;
}

}  // namespace qs::quant
