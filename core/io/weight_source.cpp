#include "core/io/weight_source.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>

#include "core/io/gguf_weights.h"
#include "core/io/gptq_weights.h"
#include "core/io/safetensors.h"
#include "core/io/sharded_weights.h"
#include "core/io/torch_bin.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/strings.h"

namespace qs::io {

bool WeightSource::has(const std::string& name) const {
  const auto& ts = tensors();
  return std::any_of(ts.begin(), ts.end(), [&](const TensorMeta& m) { return m.name == name; });
}

const TensorMeta& WeightSource::meta(const std::string& name) const {
  for (const auto& m : tensors())
    if (m.name == name) return m;
  throw fileError(path(), "no tensor named '" + name + "'");
}

namespace {

std::string lowerExtension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

std::unique_ptr<WeightSource> openSafetensorsShard(const std::string& path) {
  return std::make_unique<SafetensorsWeightSource>(path);
}

std::unique_ptr<WeightSource> openTorchBinShard(const std::string& path) {
  return std::make_unique<TorchBinWeightSource>(path);
}

std::unique_ptr<WeightSource> openRawWeights(const std::string& path);

}  // namespace

std::unique_ptr<WeightSource> openWeights(const std::string& path) {
  // A GPTQ folder (quantize_config.json / quantization_config) is dequantized on load.
  GptqFolderConfig gptq;
  if (fs::isDirectory(path) && readGptqFolderConfig(path, gptq))
    return std::make_unique<GptqWeightSource>(openRawWeights(path), gptq);
  return openRawWeights(path);
}

namespace {

std::unique_ptr<WeightSource> openRawWeights(const std::string& path) {
  if (fs::isDirectory(path)) {
    const std::string single = fs::join(path, "model.safetensors");
    if (fs::exists(single)) return std::make_unique<SafetensorsWeightSource>(single);
    const std::string index = fs::join(path, "model.safetensors.index.json");
    if (fs::exists(index)) return std::make_unique<ShardedWeightSource>(index, openSafetensorsShard);
    const std::string bin = fs::join(path, "pytorch_model.bin");
    if (fs::exists(bin)) return std::make_unique<TorchBinWeightSource>(bin);
    const std::string binIndex = fs::join(path, "pytorch_model.bin.index.json");
    if (fs::exists(binIndex)) return std::make_unique<ShardedWeightSource>(binIndex, openTorchBinShard);
    throw fileError(path, "no weights found: looked for model.safetensors, "
                          "model.safetensors.index.json, pytorch_model.bin, "
                          "pytorch_model.bin.index.json");
  }
  if (!fs::exists(path)) throw fileError(path, "file or folder not found");
  const std::string ext = lowerExtension(path);
  if (ext == ".safetensors") return std::make_unique<SafetensorsWeightSource>(path);
  if (ext == ".gguf") return std::make_unique<GgufWeightSource>(path);
  if (ext == ".bin" || ext == ".pt" || ext == ".pth") return std::make_unique<TorchBinWeightSource>(path);
  if (str::endsWith(path, ".safetensors.index.json"))
    return std::make_unique<ShardedWeightSource>(path, openSafetensorsShard);
  if (str::endsWith(path, ".bin.index.json"))
    return std::make_unique<ShardedWeightSource>(path, openTorchBinShard);
  throw fileError(path, "unknown weight file type '" + ext +
                            "' (expected .safetensors, .bin, .gguf, an .index.json or a folder "
                            "holding model weights)");
}

}  // namespace

}  // namespace qs::io
