// A GGUF model seen as a Hugging Face checkpoint: tensors under HF names (LLaMA family), q/k
// rows moved back from llama.cpp's interleaved RoPE layout to HF's rotate_half layout, and a
// config.json equivalent built from the GGUF metadata.
#pragma once
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/io/gguf.h"
#include "core/io/weight_source.h"

namespace qs::io {

class GgufWeightSource : public WeightSource {
 public:
  // Throws qs::Error naming the file when general.architecture is not "llama" or the head
  // counts do not divide the q/k shapes.
  explicit GgufWeightSource(std::shared_ptr<GgufFile> file);
  explicit GgufWeightSource(const std::string& path);

  const std::vector<TensorMeta>& tensors() const override { return metas_; }
  // lm_head.weight is listed whenever the file has output.weight, even when it is a tied copy.
  // F32/F16/BF16 tensors as they are; Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K dequantized to float32;
  // other GGML types give qs::Error naming the tensor and its type.
  at::Tensor load(const std::string& name) const override;
  std::string path() const override { return file_->path(); }
  const GgufFile& file() const { return *file_; }

 private:
  std::shared_ptr<GgufFile> file_;
  std::vector<TensorMeta> metas_;
  std::map<std::string, const GgufTensorInfo*> byHfName_;
  int64_t nHeads_ = 0, nKvHeads_ = 0;
};

// GGUF tensor name -> HF name for the LLaMA layout; empty when the tensor has no HF twin.
std::string ggufToHfName(const std::string& ggufName);
// The inverse (HF LLaMA name, with or without "model.") -> GGUF name; empty when llama.cpp's
// LLaMA has no such tensor.
std::string hfToGgufName(const std::string& hfName);

// config.json equivalent (model_type "llama", sizes, head counts, eps, rope_theta, context
// length, vocab size, bos/eos ids, tie_word_embeddings: output.weight absent or a byte copy
// of token_embd.weight). Throws qs::Error for other
// architectures or missing keys, naming the file and the key.
nlohmann::json ggufToHfConfig(const GgufFile& file);

}  // namespace qs::io
