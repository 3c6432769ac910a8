// A GGUF model seen as a Hugging Face checkpoint, for the llama.cpp architectures QuantScope
// maps (llama, gpt2, bloom, falcon, gptneox): tensors under HF names, rows moved back from
// llama.cpp's layouts (LLaMA's interleaved RoPE q/k rows, the fused q|k|v of BLOOM, NeoX and
// Falcon, GPT-2's transposed Conv1D matrices), and a config.json equivalent built from the GGUF
// metadata. The same tables give the export (core/algo/gguf_export) its names and layouts.
#pragma once
#include <ATen/core/Tensor.h>
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
  // Throws qs::Error naming the file when general.architecture is not one QuantScope maps or
  // the head counts do not divide the q/k/qkv shapes.
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
  std::string arch_;
  int64_t nHeads_ = 0, nKvHeads_ = 0;
};

// The llama.cpp architectures QuantScope reads and writes.
bool isMappedGgufArch(const std::string& arch);

// GGUF tensor name -> HF name in `arch`'s layout; empty when the tensor has no HF twin.
// falcon40b: the file has attn_norm_2 (then attn_norm is ln_mlp, attn_norm_2 ln_attn).
std::string ggufToHfName(const std::string& ggufName, const std::string& arch = "llama", bool falcon40b = false);
// The inverse (HF name, with or without the model's prefix such as "model." or "transformer.")
// -> GGUF name; empty when llama.cpp's architecture has no such tensor.
std::string hfToGgufName(const std::string& hfName, const std::string& arch = "llama");
// Checkpoint buffers that are not weights (GPT-2's attn.bias mask, rotary inv_freq): skipped.
bool isHfBufferTensor(const std::string& hfName);

// Whether HF stores this GGUF matrix transposed ([in, out]: GPT-2's Conv1D).
bool ggufHfTransposed(const std::string& arch, const std::string& ggufName);
// The row order llama.cpp wants for tensor `ggufName` from the HF row order (rows = output
// features; weights [out, in], biases [out], or per-row codes/scales): LLaMA's q/k rotary pairs
// interleaved; BLOOM/NeoX's per-head [q k v] and Falcon's per-group [q.. k v] fused rows as all q,
// then all k, then all v. Other tensors are returned as they are. fromGgufRows is the inverse.
at::Tensor toGgufRows(const std::string& arch, const std::string& ggufName, const at::Tensor& t, int64_t heads,
                      int64_t kvHeads);
at::Tensor fromGgufRows(const std::string& arch, const std::string& ggufName, const at::Tensor& t, int64_t heads,
                        int64_t kvHeads);

// config.json equivalent (model_type, sizes, head counts, eps, rope, context length, vocab size,
// bos/eos ids, tie_word_embeddings: output.weight absent or a byte copy of token_embd.weight).
// Throws qs::Error for other architectures or missing keys, naming the file and the key.
nlohmann::json ggufToHfConfig(const GgufFile& file);

}  // namespace qs::io
