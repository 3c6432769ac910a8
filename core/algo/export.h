// Export of a quantized run (quant_artifact.h) into files other tools load, all written
// atomically through io::HfFolderWriter (temp folder + rename; an error or a cancel leaves no
// output folder):
//   hf-fp16      Hugging Face folder of the FP model with OS+/SmoothQuant folded in (weights not
//                quantized): config.json, model.safetensors (sharded above the limit, with
//                model.safetensors.index.json), tokenizer files and generation_config.json.
//   gptq         the same folder with every quantized Linear in the AutoGPTQ layout
//                (io/gptq_pack.h), quantize_config.json and config.json "quantization_config".
//   fake-fp16    Hugging Face folder with the dequantized (fake-quantized) weights of any method.
//   scale-shift  scale_shift.safetensors: "<pair>.shift" / "<pair>.scale" per migration pair,
//                the consumers of each pair in the metadata.
//   gguf         one llama.cpp GGUF file (outDir is its path) of the dequantized model in a
//                llama.cpp type, written as llama-quantize would (core/algo/gguf_export.h).
// Biases the run added to projections (OS+ shifting: consumer bias += W z) are written with the
// family's config switch set (LLaMA attention_bias / mlp_bias, Falcon bias, OPT enable_bias, NeoX
// attention_bias) and zero biases for the other projections under it, the layout transformers
// builds. An OS+-shifted LLaMA/Mistral run would also need a bias after RMSNorm, which
// transformers does not have: hf-fp16, gptq and fake-fp16 refuse it (quantize with --no-shift or
// export scale-shift).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <c10/core/ScalarType.h>

#include "core/algo/export_parity.h"
#include "core/algo/quant_artifact.h"
#include "core/jobs/progress.h"

namespace qs::algo {

enum class ExportFormat { HfFp16, Gptq, FakeFp16, ScaleShift, Gguf };
const char* exportFormatName(ExportFormat f);          // "hf-fp16", "gptq", "fake-fp16", "scale-shift", "gguf"
ExportFormat parseExportFormat(const std::string& s);  // throws qs::Error naming --format

struct ExportOptions {
  ExportFormat format = ExportFormat::HfFp16;  // what to write
  std::string outDir;                          // the folder to create
  bool force = false;                          // replace an existing outDir (on success only)
  at::ScalarType dtype = at::kHalf;            // float tensors (and GPTQ scales): kHalf, kBFloat16 or kFloat
  int64_t maxShardBytes = int64_t{5} << 30;    // shard model.safetensors above this many bytes
  bool gptqV1 = true;                          // checkpoint_format "gptq" (zero - 1) vs "gptq_v2"
  bool allowPadding = false;                   // GPTQ: pack in/out not divisible by 32 (QuantScope-only)
  int64_t runId = 0;                           // recorded in config.json
  std::string ggufType;                        // gguf: llama-quantize type (F32, F16, Q8_0, Q4_K_M, Q4_0, ...);
                                               // "" = the run's --target type, else F16
  // After writing, reload the export and compare it with the run's model on windows of this text
  // file (the run's calibration text); "" = no parity check.
  std::string parityText;

  ExportOptions& withFormat(ExportFormat v) { format = v; return *this; }
  ExportOptions& withOutDir(const std::string& v) { outDir = v; return *this; }
  ExportOptions& withForce(bool v) { force = v; return *this; }
  ExportOptions& withDtype(at::ScalarType v) { dtype = v; return *this; }
  ExportOptions& withMaxShardBytes(int64_t v) { maxShardBytes = v; return *this; }
};

struct ExportReport {
  std::string dir;                  // absolute output folder
  std::vector<std::string> files;   // files written into it (planned: that would be written)
  std::vector<int64_t> fileBytes;   // the size of each of files, in bytes
  int64_t totalBytes = 0;           // sum of fileBytes
  int64_t tensorBytes = 0;          // tensor data in the model shards
  bool dirExists = false;           // planned: dir exists now (the export needs force)
  std::vector<std::string> notes;   // things a user must know (RMSNorm biases, padding, ...)
  ExportParity parity;              // exportRun with parityText: the reloaded export vs the run's model
};

// Throws qs::Error for a format the run cannot provide (no grids, unsupported bits, outliers in
// GPTQ, no migration for scale-shift, an OS+-shifted LLaMA/Mistral run in a folder format), an
// existing outDir without force, a gone source model; qs::Cancelled when cancelled. In every
// failure case outDir is left as it was.
ExportReport exportRun(const QuantArtifact& artifact, const ExportOptions& options,
                       jobs::Progress& progress = jobs::Progress::none());

// The load-back parity of a written export (export_parity.h); exportRun calls it when
// options.parityText is set. Throws what loading the export throws.
ExportParity measureExportParity(const QuantArtifact& artifact, const ExportOptions& options,
                                 const ExportReport& report, jobs::Progress& progress = jobs::Progress::none());

// What exportRun would write, without writing: the same steps with a planning HfFolderWriter, so
// the file names, shards and byte sizes are exactly those of the export (source tensors are not
// read; the run's model is rebuilt to know the changed tensors). Throws the same qs::Error for a
// format the run cannot provide; an existing outDir is reported (dirExists), not an error.
ExportReport planExport(const QuantArtifact& artifact, const ExportOptions& options);

}  // namespace qs::algo
