// The GGUF side of core/algo/export.h (`--format gguf --gguf-type T`): the run's model (OS+ folded,
// the method's dequantized weights) written as one llama.cpp GGUF file of LLaMA-family layout —
// tensor names and q/k row order as llama.cpp's convert_hf_to_gguf.py writes them, the
// hyper-parameters and the SentencePiece vocabulary as metadata — with every tensor in the type
// llama-quantize would give it for T (output layer Q6_K, fallbacks for rows that do not split
// into blocks) and rounded by ggml's reference rule, so the file equals what llama-quantize
// makes of the same weights. Internal to core/algo.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/algo/export.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/config.h"

namespace qs::algo {

// One tensor of the exported model under its Hugging Face name, produced on demand.
struct GgufSourceTensor {
  std::string hfName;
  std::vector<int64_t> shape;
  std::function<at::Tensor()> make;
  std::string site;  // the run's quantization site of this weight ("" when the run has no grid for it)
  at::ScalarType dtype = at::kFloat;  // the tensor's type in the run's model (source or folded)
};

// The --gguf-type an export uses: options.ggufType, or when that is empty the run's grid target
// (quantize --target gguf:T), else F16.
std::string effectiveGgufType(const QuantArtifact& a, const ExportOptions& o);

// The checks made before anything is built: family, rope scaling, base type and tokenizer;
// throws qs::Error naming what GGUF cannot hold. Returns the vocabulary the file will carry.
io::LlamaVocab checkGgufExport(const QuantArtifact& a, const ExportOptions& o, const model::ModelConfig& cfg);

// The GGML type llama-quantize gives tensor `ggufName` (columns = its last dimension) for
// --gguf-type `ggufType` ("Q4_0", "Q4_K_M", ...) in a model of `layers` blocks; attnVMoreBits is
// llama.cpp's 70B rule, gqa = heads / KV heads (Q2_K's attn_v). `why` says why it differs from the
// type's default ("" when it does not).
uint32_t ggufTensorType(const std::string& ggufType, const std::string& ggufName, const std::vector<int64_t>& shape,
                        bool outputTiedToEmbedding, int layers, bool attnVMoreBits = false, std::string* why = nullptr,
                        int gqa = 1);

// Writes (plan: only sizes) o.outDir as the GGUF file with checkGgufExport's vocabulary; fills
// rep's files, sizes and notes.
void writeGgufExport(const QuantArtifact& a, const ExportOptions& o, const model::ModelConfig& cfg,
                     io::LlamaVocab vocab, const std::vector<GgufSourceTensor>& tensors, ExportReport& rep,
                     jobs::Progress& progress, bool plan);

}  // namespace qs::algo
