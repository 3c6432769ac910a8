// Jobs that run away from the machine holding the project (a Slurm cluster's nodes) and the
// bundles they return. A remote job never opens the project's runs.sqlite: it records its run in
// its own bundle, <project>/incoming/<group>/<task>/ (runs.sqlite + exports/ + job.log), so a
// shared filesystem never sees SQLite writers on several nodes. The coordinator (the CLI that
// submitted, `qscope jobs sync`, the GUI's timer) is the only writer of the project's store: it
// keeps one remote_jobs row per job with the scheduler's state, and when a job has ended it
// either imports the bundle's finished run (rows copied, files hard-linked under
// exports/run-<new>/, the job row marked imported — one transaction) or records a failed or
// cancelled run that says why and keeps the job's log. `imported` is set in the transaction
// that inserts the run, so a bundle becomes a run exactly once even when two coordinators race
// or one is killed half way; a run still `running` in a bundle (its job was killed) is never
// imported.
//
// Torch- and Qt-free: the GUI includes this header.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace qs::runs {

// The scheduler's view of a job, in the words sacct/squeue use (lower case).
enum class JobState { Submitted, Pending, Running, Completed, Failed, Cancelled, Timeout, NodeFail, OutOfMemory, Lost };
std::string toString(JobState s);       // "pending", "node_fail", ...
JobState parseJobState(const std::string& s);
bool isTerminal(JobState s);            // the job will not run any more

struct RemoteJob {
  int64_t id = 0;
  std::string group;                    // the sweep / search generation it belongs to ("sweep-20261207-041502")
  int taskIndex = 0;                    // its index in the group (the array task id)
  std::string backend;                  // "slurm"
  std::string schedulerId;              // "1234_3"; "" until submitted
  std::string name;                     // the run's label ("gptq w4 g128")
  std::string kind;                     // "quantize"
  std::string bundle;                   // bundle folder, relative to the project
  std::string logPath;                  // job log, relative to the project
  std::string configYaml;
  std::string command;                  // the qscope command line the job runs
  JobState state = JobState::Submitted;
  std::string node;                     // where it ran / runs
  std::string submitted, ended;         // ISO 8601 UTC
  double elapsedS = NAN;
  std::string message;                  // why it failed ("TIMEOUT: time limit 00:01:00"), sbatch's words
  int64_t runId = 0;                    // the run it became (imported or failed); 0 until then
  bool imported = false;                // its outcome is in the run store (exactly once)
};

// The remote_jobs table of a project's runs.sqlite.
class JobLedger {
 public:
  // `projectDir` holds runs.sqlite (opened and migrated); bundle and log paths are relative to it.
  explicit JobLedger(std::string projectDir);
  ~JobLedger();
  JobLedger(JobLedger&&) noexcept;
  JobLedger& operator=(JobLedger&&) noexcept;

  // Adds jobs of a group (one transaction); returns their ids in order. Throws qs::Error when the
  // group already holds a task index.
  std::vector<int64_t> add(const std::vector<RemoteJob>& jobs);
  // Records what the scheduler says; a job already imported keeps its final state.
  void update(int64_t id, JobState state, const std::string& node, double elapsedS, const std::string& message = "");
  // Newest first; `group` = "" lists every group; `pendingOnly` = not yet imported.
  std::vector<RemoteJob> list(const std::string& group = "", bool pendingOnly = false) const;
  RemoteJob get(int64_t id) const;
  // Groups newest first.
  std::vector<std::string> groups() const;

  // The job has ended (isTerminal): its bundle's finished run becomes a run of the project, or —
  // when the bundle holds none — a failed (cancelled for `cancelled`) run whose message says why
  // and whose artifact is the job's log. Returns the run id, or 0 when the job was already
  // imported (by this or another coordinator). The bundle folder is removed afterwards.
  int64_t importEnded(int64_t id);

 private:
  struct Impl;
  std::string dir_;
  Impl* impl_ = nullptr;
};

}  // namespace qs::runs
