// Load-back parity of an export: the written files are opened with QuantScope's normal loader
// (a folder, a GPTQ folder dequantized on load, a GGUF file dequantized as ggml does) and run on a
// few windows of the run's calibration text beside the model the export was made from (the run's
// quantized model; for hf-fp16 its FP model with the migrations folded). The numbers say whether
// the file holds what QuantScope evaluated: KL divergence per token (0 for an exact export) and
// top-1 agreement. Torch-free header (export_job.h and the GUI show it).
#pragma once
#include <cstdint>
#include <string>

namespace qs::algo {

struct ExportParity {
  bool measured = false;
  std::string reference;   // "the run's quantized model" / "the run's FP model (migrations folded)"
  std::string text;        // the text file the windows come from
  int64_t windows = 0, seqlen = 0;
  double klMean = 0;       // mean over tokens of KL(reference || export), nats
  double klMax = 0;        // largest per-token KL
  double top1 = 0;         // fraction of tokens whose argmax agrees
  std::string note;        // why it was not measured (measured == false)
  // "load-back parity vs the run's quantized model (4 x 128 tokens of wikitext-2-valid.tokens):
  // KL mean 1.2e-07 / max 3.1e-06 nats per token, top-1 agreement 100.0%".
  std::string describe() const;
};

}  // namespace qs::algo
