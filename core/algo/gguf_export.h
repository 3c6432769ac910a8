// The GGUF side of core/algo/export.h (`--format gguf --gguf-type T`): the run's model (OS+ folded,
// the method's dequantized weights) written as one llama.cpp GGUF file of the model's llama.cpp
// architecture (llama for LLaMA/Mistral, gpt2, bloom, falcon, gptneox) — tensor names and row
// orders as llama.cpp's convert_hf_to_gguf.py writes them (core/io/gguf_weights), the
// hyper-parameters and the vocabulary (SentencePiece "llama" or byte-level BPE "gpt2") as
// metadata — with every tensor in the type
// llama-quantize would give it for T (output layer Q6_K, fallbacks for rows that do not split
// into blocks) and rounded by ggml's reference rule, so the file equals what llama-quantize
// makes of the same weights. Internal to core/algo.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/algo/export.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/config.h"

namespace qs::model {
class Model;
}

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
// (quantize --target gguf:T, targetGgufType), else F16.
std::string effectiveGgufType(const QuantArtifact& a, const ExportOptions& o);
// The --gguf-type that writes every matrix of a run on a llama.cpp grid in the run's own type, so
// the file holds exactly its codes ("Q4_0", "Q4_K", ...; "Q2_K_PURE", since "Q2_K" is
// llama-quantize's mix); "" for a run on no such grid.
std::string targetGgufType(const quant::QuantSpec& spec);

// The vocabulary a GGUF file carries: SentencePiece ("llama") or byte-level BPE ("gpt2").
struct GgufVocab {
  std::optional<io::LlamaVocab> llama;
  std::optional<io::BpeVocab> bpe;
};

// llama.cpp's architecture name for the model ("llama", "gpt2", "bloom", "falcon", "gptneox");
// qs::Error for OPT, which llama.cpp does not run.
std::string ggufArchitecture(const model::ModelConfig& cfg);

// The checks made before anything is built: family and its options, rope scaling, base type and
// tokenizer; throws qs::Error naming what GGUF cannot hold. Returns the vocabulary the file will
// carry.
GgufVocab checkGgufExport(const QuantArtifact& a, const ExportOptions& o, const model::ModelConfig& cfg);

// The GGML type llama-quantize gives tensor `ggufName` (columns = its last dimension) for
// --gguf-type `ggufType` ("Q4_0", "Q4_K_M", ...) in a model of `layers` blocks; attnVMoreBits is
// llama.cpp's 70B rule, gqa = heads / KV heads (Q2_K's attn_v), arch llama.cpp's architecture
// (Falcon has its own rules; a fused attn_qkv follows attn_v's). `why` says why it differs from
// the type's default ("" when it does not).
uint32_t ggufTensorType(const std::string& ggufType, const std::string& ggufName, const std::vector<int64_t>& shape,
                        bool outputTiedToEmbedding, int layers, bool attnVMoreBits = false, std::string* why = nullptr,
                        int gqa = 1, const std::string& arch = "llama");

// The grid each quantization site of `model` gets under a run's llama-quantize K mix (ggufMix,
// "Q4_K_M"): the GGML type name llama-quantize gives its matrix ("Q4_K", "Q6_K"; "Q5_0" where the
// columns do not split into 256s). A site whose type is not a grid target keeps the main grid.
std::map<std::string, std::string> ggufMixSiteTypes(const model::Model& model, const std::string& mix);
// The per-site specs of such a run (PipelineOptions::siteSpecs): `base` moved onto each site's
// type's grid where it differs from the main type.
std::map<std::string, quant::QuantSpec> ggufMixSiteSpecs(const model::Model& model, const std::string& mix,
                                                         const quant::QuantSpec& base);

// Writes (plan: only sizes) o.outDir as the GGUF file with checkGgufExport's vocabulary; fills
// rep's files, sizes and notes.
void writeGgufExport(const QuantArtifact& a, const ExportOptions& o, const model::ModelConfig& cfg,
                     GgufVocab vocab, const std::vector<GgufSourceTensor>& tensors, ExportReport& rep,
                     jobs::Progress& progress, bool plan);

}  // namespace qs::algo
