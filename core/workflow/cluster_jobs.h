// Sweeps and remote jobs (issue 18): a grid of quantize configs run here, in this process, or
// sent to a Slurm cluster as one job array whose tasks each write a bundle that the coordinator
// imports into the project's run store (core/runs/remote_jobs.h). `qscope sweep`, `qscope jobs`,
// `qscope runs import` and the GUI's Jobs panel call these.
//
// Torch- and Qt-free header.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config/project_config.h"
#include "core/jobs/progress.h"
#include "core/runs/remote_jobs.h"
#include "core/workflow/project_jobs.h"

namespace qs::workflow {

// One config of a sweep: its resolved quantize document and what distinguishes it.
struct SweepConfig {
  std::string label;        // the config's label ("gptq w3 g128")
  std::string values;       // the grid values that made it ("method=gptq wbits=3")
  std::string configYaml;   // resolved, every key (algo::toYaml)
};

// grid.yaml:
//   base: presets/gptq-w4g128.yaml   # optional, relative to grid.yaml; over the project's default config
//   quantize: {nsamples: 16}         # optional keys fixed for every config
//   grid: {method: [rtn, gptq], wbits: [3, 4]}    # the cartesian product, keys in the order written
//   list: [{method: rtn}, {method: gptq, percdamp: 0.1}]   # and/or an explicit list (x the grid)
// Every config is validated before anything runs; errors name grid.yaml, the entry and the key.
std::vector<SweepConfig> loadSweepGrid(const std::string& gridPath, const std::string& projectDir);

// Where and how jobs run.
struct ClusterOptions {
  std::string backend = "local";   // local | slurm
  std::string profile;             // project.yaml slurm profile; "" = "default" when the project has it
  config::SlurmProfile overrides;  // command-line values; non-empty / non-zero fields replace the profile's
  std::string qscope;              // the qscope each job runs; "" = the profile's, else this program
  std::string slurmBin;            // folder of sbatch & co; "" = PATH
  std::vector<std::pair<std::string, std::string>> env;  // environment for the Slurm tools (SLURM_CONF)
  std::vector<std::string> jobArgs;  // more qscope options for every job (--device cuda --dtype bfloat16)
};

// The qscope options a remote task needs to load what the submitting job would: --data-dir
// (absolute), --device and --dtype where they differ from the defaults.
std::vector<std::string> loadArgs(const std::string& dataDir, const std::string& device, const std::string& dtype);

// One line on what a sync did ("imported 2 finished run(s), recorded 1 failed/cancelled job(s); 3 still ...").
std::string describeSync(int imported, int failed, int active);

// The project's profile (by name) with the overrides applied. Throws qs::Error naming a missing profile.
config::SlurmProfile resolveSlurmProfile(const std::string& projectDir, const ClusterOptions& options);

struct SubmittedGroup {
  std::string group;               // "sweep-20261207-041502"
  std::string schedulerId;         // the array's job id
  std::string script;              // the batch script's path
  std::vector<runs::RemoteJob> jobs;
};

// One task of a job array: a qscope command whose run goes to the task's bundle.
struct ArrayTask {
  std::string name;                // the run's label
  std::string kind;                // the run kind it makes ("quantize", "search")
  std::string configYaml;          // recorded with the job
  std::vector<std::pair<std::string, std::string>> files;  // (file name, content) written into the task folder
  std::vector<std::string> args;   // qscope's arguments; "{task}" = the task folder, relative to the project
};

// Writes <project>/incoming/<prefix>-<UTC time>/ (task-<i>/ with the tasks' files, job.sh), submits
// one array with sbatch (each task runs `qscope ARGS --bundle incoming/<group>/task-<i>`) and records
// a remote_jobs row per task. A refused submission leaves nothing behind and throws sbatch's reason
// as one line. `dryRun`: writes nothing, returns the script text in `script`.
SubmittedGroup submitArray(const std::string& projectDir, const std::string& prefix, const std::vector<ArrayTask>& tasks,
                           const ClusterOptions& options, bool dryRun = false);
// A sweep's configs as an array: `qscope quantize PROJECT --config task-<i>/config.yaml`.
SubmittedGroup submitSweep(const std::string& projectDir, const std::vector<SweepConfig>& configs,
                           const ClusterOptions& options, bool dryRun = false);

struct SyncResult {
  int active = 0;                  // pending or running
  int imported = 0;                // became finished runs during this call
  int failed = 0;                  // ended without a finished run during this call (failed/cancelled runs recorded)
  std::vector<runs::RemoteJob> jobs;  // of the group (or all), after the call
};

// Asks the scheduler about every job of the project (of `group`) not yet imported, records the
// states and imports the jobs that ended. A job the scheduler no longer knows is judged by the
// exit status its task wrote, or recorded as lost. Safe to call from several coordinators.
SyncResult syncJobs(const std::string& projectDir, const ClusterOptions& options, const std::string& group = "");

// Syncs every `pollSeconds` until every job of the group has been imported, reporting "3/12 ended,
// 2 running" on `progress`. A cancel request on `progress` cancels the group's jobs (scancel) and
// keeps syncing until Slurm has stopped them, so they are recorded.
SyncResult waitForGroup(const std::string& projectDir, const ClusterOptions& options, const std::string& group,
                        double pollSeconds, jobs::Progress& progress);

// scancel of jobs (by ledger id) or of every unfinished job of a group; returns the scheduler ids cancelled.
std::vector<std::string> cancelJobs(const std::string& projectDir, const ClusterOptions& options,
                                    const std::vector<int64_t>& ids, const std::string& group = "");

// The local backend: each config in this process, one after another, straight into the project's
// store (today's in-process path). Returns the run ids.
std::vector<int64_t> runSweepLocal(const std::vector<SweepConfig>& configs, const QuantizeJobOptions& base,
                                   jobs::Progress& progress);

// Where quantize jobs run, behind one interface: `local` (this process, one config after another)
// or `slurm` (one job array, waited for and imported). Both leave one run per config in the
// project's store; the caller does not care which ran them.
class ExecutionBackend {
 public:
  virtual ~ExecutionBackend() = default;
  virtual std::string name() const = 0;  // "local", "slurm (profile gpu)"
  // Runs `configs` as runs of base.projectDir; returns their run ids in order (0: the job ended
  // without a run, e.g. a lost node; its failed run is in the store when the scheduler reported it).
  // Cancelling `progress` cancels what has not finished.
  virtual std::vector<int64_t> runQuantizeConfigs(const std::vector<SweepConfig>& configs,
                                                  const QuantizeJobOptions& base, jobs::Progress& progress) = 0;
};

// options.backend = local | slurm. `note` receives what a front end shows ("submitted Slurm job
// array 12 (4 tasks) as sweep-..."); `pollSeconds`: how often Slurm is asked while waiting.
std::unique_ptr<ExecutionBackend> makeExecutionBackend(const ClusterOptions& options, double pollSeconds = 10,
                                                       std::function<void(const std::string&)> note = {});

}  // namespace qs::workflow
