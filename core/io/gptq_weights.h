// Loading a GPTQ/AutoGPTQ folder (qweight/qzeros/scales/g_idx per Linear, bits and
// checkpoint_format from quantize_config.json or config.json's quantization_config): a
// WeightSource that presents every packed Linear as its dequantized float32 "<name>.weight"
// (gptq_pack.h), so the engine runs a GPTQ checkpoint like any other (dequantize on load).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/io/weight_source.h"

namespace qs::io {

struct GptqFolderConfig {
  int bits = 4;
  int groupSize = -1;
  bool v1 = true;            // checkpoint_format "gptq" (zero - 1 stored) vs "gptq_v2"
  bool transposed = false;   // GPT-2 Conv1D checkpoints keep "<name>.weight" as [in, out]
};

// The folder's GPTQ settings when it holds a GPTQ checkpoint (quantize_config.json, or
// config.json "quantization_config" with quant_method "gptq"); false otherwise. Throws
// qs::Error naming the file for a GPTQ config with unsupported values.
bool readGptqFolderConfig(const std::string& folder, GptqFolderConfig& out);

class GptqWeightSource : public WeightSource {
 public:
  GptqWeightSource(std::unique_ptr<WeightSource> packed, const GptqFolderConfig& config);
  const std::vector<TensorMeta>& tensors() const override { return metas_; }
  at::Tensor load(const std::string& name) const override;
  std::string path() const override { return inner_->path(); }

 private:
  std::unique_ptr<WeightSource> inner_;
  GptqFolderConfig cfg_;
  std::vector<TensorMeta> metas_;
  std::map<std::string, std::string> packedBase_;  // "<base>.weight" -> "<base>"
};

}  // namespace qs::io
