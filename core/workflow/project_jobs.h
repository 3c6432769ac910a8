// The long-running project jobs behind both front ends (DESIGN.md seam 2): plain option structs
// and results, no LibTorch or Qt in this header. The GUI's Analyse and Quantize jobs and
// `qscope analyze` / `qscope quantize` call these functions, so a run made in the GUI and one
// made on the CLI hold the same rows; the front ends only resolve options and print or show
// the returned report.
//
// Every job takes jobs::Progress& (messages such as "quantize: block 3/5"), throws qs::Error with
// a user-facing message for bad input and qs::Cancelled when cancelled; a cancelled job leaves
// the run row marked cancelled with no results (RunWriter::cancel) and nothing under exports/.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/eval/task_metrics.h"
#include "core/jobs/progress.h"
#include "core/model/exec_options.h"

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
  std::string projectDir;        // project folder: the run is stored there, checkpointed after every
                                 // block (exports/.resume-<id>/) and its artifact written (exports/run-<id>/)
  std::string modelPath;         // without a project: a model folder / .gguf; the report is returned, nothing stored
  std::string bundleDir;         // with a project: record the run in this bundle (runs.sqlite + exports/) instead
                                 // of the project's store, for the coordinator to import (remote jobs)
  std::string dataDir;           // folder holding text/ for named datasets; "" = the project's (else the search path)
  std::string taskDir;           // folder holding the eval_tasks files; "" = the task search path
  std::string configYaml;        // a quantize config document (`quantize:` section); "" = the project default
  std::string configName;        // names the document in error messages ("tuning panel")
  std::string name;              // run name; "" = the config's label ("gptq w4 g128")
  int64_t resumeRunId = 0;       // continue this failed run of the project from its last checkpointed
                                 // block, with its stored config (configYaml must be empty)
  std::string device = "cpu";    // load device: cpu, cuda, cuda:N
  std::string dtype = "float32";  // load dtype: float32, float16, bfloat16
  std::string toolVersion;       // stored with the run; "" = the library's
  model::ExecOptions exec;       // whole model, or block by block under a memory budget (--exec, --max-memory)
};

struct JobOutcome {
  int64_t runId = 0;             // the stored run
  std::string summary;           // one line for the log ("run 4: ppl 12.31 -> 13.02 (wikitext2)")
};

// What a quantize job did, for the front ends to print (the run store holds the same numbers).
struct QuantizeSiteReport {
  int block = 0, group = 0;
  std::string site, method;
  double relError = 0, bitsPerWeight = 0, hessianSeconds = 0, quantSeconds = 0;
  int64_t tokens = 0;
  bool resumed = false;          // restored from the checkpoint
  bool errorOnWeights = false;   // relError is ||W - W^||^2 / ||W||^2 (RTN without a calibration pass)
};
struct PerplexityReport {
  std::string dataset, protocol;  // protocol: "gptq-nonoverlapping"
  int seqlen = 0;
  int64_t windows = 0, totalWindows = 0;
  double fp = 0, quantized = 0;
};
struct MigrationSiteReport {
  std::string pair, site;
  double maxAbsBefore = 0, maxAbsAfter = 0, kurtosisBefore = 0, kurtosisAfter = 0;
  double asymmetryBefore = 0, asymmetryAfter = 0, threshold = 0;
  // OS+: the search objective (sum of squared quantized-output errors of the pair's consumers on
  // the search tokens) without migration and with the folded shift and scale; 0 otherwise.
  double objectiveBefore = 0, objectiveAfter = 0;
};
struct QuantizeReport {
  int64_t runId = 0;             // 0 = not stored (model target)
  std::string modelPath, label, configYaml;
  std::string artifactPath;      // the quantized-run artifact ("" = not stored)
  std::vector<QuantizeSiteReport> sites;  // in quantization order
  std::vector<PerplexityReport> perplexity;
  std::vector<eval::TaskResult> tasksFp, tasksQuantized;  // eval_tasks, same order
  int blocks = 0, resumedBlocks = 0;
  int64_t samples = 0, seqlen = 0;
  double seconds = 0;            // the weight pipeline in this process
  int64_t peakMemoryBytes = 0, workingSetBytes = 0;
  std::string peakMemorySource;
  std::string migration = "none";
  double migrationSeconds = 0;
  std::vector<MigrationSiteReport> migrationSites;
  bool streamed = false;         // the model ran block by block (larger than the memory budget)
  std::string execution;         // which path ran and why (model/layerwise.h ExecPlan::describe)
  std::string summary;           // one line for a log
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
// Resolves the config (the project default, then configYaml; or the resumed run's), checks every
// input (datasets, task files, the tokenizer) before the model loads and the run row exists, then:
// FP perplexity and tasks, migration, the weight pipeline, activation ranges, quantized
// perplexity and tasks; stores metrics, layer results, migration statistics and the artifact.
QuantizeReport runQuantize(const QuantizeJobOptions& options, jobs::Progress& progress);
JobOutcome runQuantizeJob(const QuantizeJobOptions& options, jobs::Progress& progress);

// Where a project's quantize run keeps its per-block checkpoint and its artifact folder.
std::string quantizeCheckpointDir(const runs::Project& project, int64_t runId);
std::string quantizeArtifactDir(const runs::Project& project, int64_t runId);

}  // namespace qs::workflow
