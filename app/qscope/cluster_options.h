// The options of commands that run jobs here or on a Slurm cluster (`qscope sweep`, `qscope
// jobs`, `qscope runs import`): --backend, --profile and the #SBATCH overrides.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "app/qscope/cli_support.h"
#include "core/runs/remote_jobs.h"
#include "core/workflow/cluster_jobs.h"

namespace qs::cli {

struct ClusterFlags {
  workflow::ClusterOptions options;
  // --backend and the Slurm resources (sweep); `withResources` false: only --profile/--slurm-bin (jobs).
  void add(CLI::App* cmd, bool withResources);
  // Passes --exec, --max-memory and --threads, where given, on to every job (--device and --dtype
  // travel with the job's own options).
  void forward(const RunOptions& run);
};

// One line per job: id, group/task, scheduler id, state, node, elapsed, run, name.
void printJobs(const std::vector<runs::RemoteJob>& jobs);

}  // namespace qs::cli
