// Export of a stored quantize run, shared by `qscope export` and the GUI's Export dialog and job
// (DESIGN.md seam 2: plain structs, no LibTorch or Qt in this header). The implementation checks
// the run (a finished quantize run with its quantized artifact, source model unchanged), turns the
// string options into core/algo/export.h ExportOptions and either plans the export (the files and
// their exact sizes, nothing written) or runs it (atomic folder; cancel or error leaves nothing).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/algo/export_parity.h"
#include "core/jobs/progress.h"

namespace qs::workflow {

struct ExportJobOptions {
  std::string projectDir;             // project folder holding the run
  int64_t runId = 0;                  // a finished quantize run
  std::string format = "hf-fp16";     // hf-fp16, gptq, fake-fp16, scale-shift or gguf
  std::string outDir;                 // the folder to create (gguf: the file)
  bool force = false;                 // replace an existing outDir, only once the new one is complete
  std::string dtype = "float16";      // float tensors (and GPTQ scales): float16, bfloat16 or float32
  int64_t maxShardMiB = 5120;         // shard model.safetensors above this many MiB
  std::string gptqFormat = "gptq";    // gptq (AutoGPTQ v1: zero - 1 stored) or gptq_v2
  bool allowPadding = false;          // GPTQ: pack in/out features not divisible by 32 (QuantScope-only)
  std::string ggufType;               // gguf: F32, F16, BF16, Q8_0, Q6_K, Q5_K_M/S, Q5_1, Q5_0, Q4_K_M/S,
                                      // Q4_1, Q4_0, Q3_K_L/M/S, Q2_K; pure Q5_K, Q4_K, Q3_K, Q2_K_PURE;
                                      // "" = the run's --target type, else F16
  // After writing, reload the export and compare it with the run's model on 4 windows of the run's
  // calibration text (KL, top-1); stored with the run as export.<format>.kl_mean/kl_max/top1.
  bool checkParity = true;
};

// The export formats, in the order menus show them, each with a one-line description.
struct ExportFormatInfo {
  std::string name;                   // "gptq"
  std::string description;            // "AutoGPTQ layout (qweight/qzeros/scales/g_idx), 2/3/4/8 bits"
};
const std::vector<ExportFormatInfo>& exportFormats();

// A run the dialog offers: a finished quantize run with a quantized artifact.
struct ExportableRun {
  int64_t id = 0;
  std::string name;                   // run name ("gptq w4 g128")
  std::string method;                 // weight method ("gptq")
  int bits = 16;                      // 16 = weights not quantized
  std::string ggufType;               // the --gguf-type that writes the run's llama.cpp grid (quantize
                                      // --target gguf:T) exactly: "Q4_0", "Q2_K_PURE", ...; or ""
  std::string migration;              // none | osplus | smoothquant
  std::vector<std::string> formats;   // the formats this run can provide
  std::string limits;                 // why other formats are missing ("" = only the run's settings)
};
// Newest first. Throws qs::Error naming the project when it cannot be opened.
std::vector<ExportableRun> exportableRuns(const std::string& projectDir);

struct ExportFileInfo {
  std::string name;                   // "model.safetensors"
  int64_t bytes = 0;
};

struct ExportJobResult {
  std::string dir;                    // absolute output folder
  std::string format;                 // canonical format name
  std::string runName;                // the exported run's name
  std::string migration;              // the run's migration method
  std::vector<ExportFileInfo> files;  // written (or, planned, to be written) with their sizes
  int64_t totalBytes = 0;             // sum of the file sizes
  int64_t tensorBytes = 0;            // tensor data in the model shards
  bool dirExists = false;             // planned: outDir exists now (force replaces it on success)
  std::vector<std::string> notes;     // things a user must know (RMSNorm biases, padding, ...)
  algo::ExportParity parity;          // runExportJob with checkParity: the reloaded export vs the run
  std::string summary() const;        // "exported run 3 (gptq) to /p/out: 4 files, 1.2 MiB"
};

// What runExportJob would write, nothing written. Throws qs::Error (bad option naming it, a run
// that is not exportable, a format the run cannot provide); an existing outDir is reported in
// dirExists, not thrown.
ExportJobResult planExportJob(const ExportJobOptions& options);
// Writes the export. Throws qs::Error (as planExportJob, and an existing outDir without force)
// or qs::Cancelled; in every failure case outDir is left as it was.
ExportJobResult runExportJob(const ExportJobOptions& options, jobs::Progress& progress);

// "1.2 MiB", "512 B": sizes as the dialog and the log show them.
std::string formatFileSize(int64_t bytes);

}  // namespace qs::workflow
