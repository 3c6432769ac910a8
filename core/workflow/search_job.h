// The mixed-precision search job behind `qscope search` and the GUI's Search dialog (DESIGN.md
// seam 2: plain options, no LibTorch or Qt here). Runs here, trial by trial, or with
// cluster.backend = slurm as one job array per NSGA-II generation (the coordinator imports the
// trials and replays the search, so it gives the same trials as the local run); every trial is a
// `search` run, the front a summary run with exports/search-<id>/pareto.json; the same options
// again resume.
#pragma once
#include <cstdint>
#include <string>

#include "core/jobs/progress.h"
#include "core/workflow/cluster_jobs.h"
#include "core/workflow/project_jobs.h"

namespace qs::workflow {

struct SearchJobOptions {
  std::string projectDir;
  std::string spaceFile;               // search space YAML (docs/FORMATS.md)
  int trials = 24;
  uint64_t seed = 0;
  int population = 8;
  std::string algo = "nsga2";          // nsga2 | random
  std::string objectives = "ppl,bits";
  // Overrides of the space file (NaN / negative / "" = the file's value).
  double maxBits = -1, maxPpl = -1, minPpl = -1, minAcc = -1;
  int64_t tasksLimit = -1;
  std::string dataset;
  int seqlen = 0;
  int64_t limitWindows = -1;
  std::string dataDir, taskDir;
  std::string device = "cpu", dtype = "float32";
  model::ExecOptions exec;
  std::string toolVersion;
  ClusterOptions cluster;              // backend local | slurm (jobArgs: --exec/--threads for the tasks)
  double pollSeconds = 10;
  std::string trialFile, bundleDir;    // a Slurm task: evaluate this one trial into the bundle
};

// One line for a log ("search s-…: 24 trials, front of 6, summary run 31").
JobOutcome runSearchJob(const SearchJobOptions& options, jobs::Progress& progress);

}  // namespace qs::workflow
