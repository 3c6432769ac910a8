// The GUI's way into the long-running project jobs (DESIGN.md seam 2): plain option structs and
// results, no LibTorch or Qt in this header. The implementation (project_jobs.cpp) runs the same
// core functions as `qscope analyze` and `qscope quantize` — makeCalibrationSet, analyzeModel,
// quantizeModel, evaluatePerplexity — and records the run in the project's run store through a
// RunWriter, so a run made in the GUI and one made on the CLI hold the same rows.
//
// Every job takes jobs::Progress& (messages such as "quantize: block 3/5"), throws qs::Error with
// a user-facing message for bad input and qs::Cancelled when cancelled; a cancelled job leaves
// the run row marked cancelled with no results (RunWriter::cancel).
#pragma once
#include <cstdint>
#include <string>

#include "core/jobs/progress.h"

namespace qs::runs {
class Project;
}
namespace qs::eval {
struct DatasetText;
}
namespace qs::analysis {
struct CalibrationOptions;
struct AnalysisOptions;
}  // namespace qs::analysis

namespace qs::workflow {

struct AnalyzeJobOptions {
  std::string projectDir;        // project folder (project.yaml); the run is stored there
  int samples = 32;              // calibration windows
  int seqlen = 256;              // tokens per window
  uint64_t seed = 0;             // std::mt19937_64 seed of the window offsets
  std::string dataset;           // "" = the project's first dataset, else wikitext2
  std::string name;              // run name; "" = "analysis N x L"
  int batchSize = 4;             // samples per forward pass
};

struct QuantizeJobOptions {
  std::string projectDir;        // project folder; the run is stored there
  std::string configYaml;        // a quantize config document (`quantize:` section); "" = defaults
  std::string configName;        // names the document in error messages ("tuning panel")
  std::string name;              // run name; "" = the config's label ("gptq w4 g128")
};

struct JobOutcome {
  int64_t runId = 0;             // the stored run
  std::string summary;           // one line for the log ("run 4: ppl 12.31 -> 13.02 (wikitext2)")
};

// The dataset a job reads: `given` when set, else the project's first dataset (a known name
// such as wikitext2 stays a name, a path is resolved against the project folder), else wikitext2.
std::string projectDataset(const runs::Project& project, const std::string& given = "");

// The stored config of an analysis run, shared by `qscope analyze` and the GUI's Analyse job so
// their runs compare key by key.
std::string analysisConfigYaml(const eval::DatasetText& text, const std::string& modelPath,
                               const analysis::CalibrationOptions& cal, const analysis::AnalysisOptions& opts,
                               const std::string& device = "cpu", const std::string& dtype = "float32");

JobOutcome runAnalyzeJob(const AnalyzeJobOptions& options, jobs::Progress& progress);
JobOutcome runQuantizeJob(const QuantizeJobOptions& options, jobs::Progress& progress);

}  // namespace qs::workflow
