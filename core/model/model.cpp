#include "core/model/model.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <filesystem>

#include "core/io/gguf.h"
#include "core/io/gguf_weights.h"
#include "core/io/weight_source.h"
#include "core/model/decoder_model.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::model {

at::Tensor Model::forward(const at::Tensor& ids, const at::Tensor& mask) {
  c10::InferenceMode guard;
  BatchState s = prepare(ids, mask);
  at::Tensor h = embed(s);
  for (int i = 0; i < numBlocks(); ++i) h = runBlock(i, h, s);
  return head(h);
}

void Model::setInputTransform(InputTransform) { throw Error("this model does not support input transforms"); }
at::Tensor Model::siteBias(const std::string&) { throw Error("this model does not expose site biases"); }
void Model::setSiteBias(const std::string&, const at::Tensor&) {
  throw Error("this model does not support setting site biases");
}
NormParams Model::normParams(int, int) { throw Error("this model does not expose norm parameters"); }
void Model::setNormParams(int, int, const NormParams&) { throw Error("this model does not support setting norms"); }
std::vector<MigrationPair> Model::migrationPairs() const { return {}; }
std::vector<std::string> Model::matmulSites() const { return {}; }
void Model::setMatmulHook(std::function<void(const std::string&, const at::Tensor&)> hook) {
  if (hook) throw Error("this model does not expose attention matmul operands");
}
void Model::setMatmulTransform(InputTransform fn) {
  if (fn) throw Error("this model does not expose attention matmul operands");
}
std::vector<std::string> Model::softmaxSites() const { return {}; }
void Model::setSoftmaxHook(SoftmaxHook hook) {
  if (hook) throw Error("this model does not expose the softmax input");
}

void Model::releaseEmbedding() {}
void Model::releaseHead() {}
void Model::releaseAll() {
  for (int i = 0; i < numBlocks(); ++i) release(i);
  releaseEmbedding();
  releaseHead();
}
void Model::setSiteWeightLoader(const std::string&, WeightLoader) {
  throw Error("this model does not support weight loaders");
}
int64_t Model::offloadOverrides(int, const std::string&) { return 0; }
void Model::setWeightTransform(WeightTransform fn) {
  if (fn) throw Error("this model does not support weight transforms");
}
int64_t Model::overrideBytes() const { return 0; }
void Model::setOverrideBudget(int64_t, const std::string&) {}
void Model::spillOverrides(int) {}
int64_t Model::defaultOverrideBudget() const {
  return std::max<int64_t>(2 * footprint().maxBlockBytes(), int64_t{512} << 20);
}
Model::Footprint Model::footprint() const { return {}; }

int64_t Model::Footprint::maxBlockBytes() const {
  int64_t m = 0;
  for (int64_t b : blockBytes) m = std::max(m, b);
  return m;
}
int64_t Model::Footprint::totalBytes() const {
  int64_t t = embeddingBytes + headBytes - sharedBytes;
  for (int64_t b : blockBytes) t += b;
  return t;
}

std::unique_ptr<Model> openModel(const std::string& path, const LoadOptions& options) {
  if (!fs::exists(path)) throw fileError(path, "model folder or file not found");
  std::string ext = std::filesystem::path(path).extension().string();
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (ext == ".gguf") {
    // llama.cpp file: the io layer presents it as a Hugging Face checkpoint (names, RoPE layout).
    auto file = io::GgufFile::open(path);
    ModelConfig config = parseConfig(io::ggufToHfConfig(*file), path + " (GGUF metadata)");
    return std::make_unique<DecoderModel>(std::move(config), std::make_unique<io::GgufWeightSource>(file),
                                          options);
  }
  std::string dir = path;
  if (!fs::isDirectory(path)) {
    // A config.json or weights file inside a model folder stands for the folder.
    dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
  }
  const std::string configPath = fs::join(dir, "config.json");
  if (!fs::exists(configPath))
    throw fileError(configPath, "not found: expected a Hugging Face model folder (config.json + "
                                "model.safetensors) or a .gguf file");
  ModelConfig config = loadConfig(configPath);
  auto weights = io::openWeights(fs::isDirectory(path) ? path : path == configPath ? dir : path);
  return std::make_unique<DecoderModel>(std::move(config), std::move(weights), options);
}

}  // namespace qs::model
