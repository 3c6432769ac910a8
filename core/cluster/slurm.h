// Slurm as an execution backend: a batch script per job group (one job array), submitted with
// sbatch, watched with squeue / scontrol (sacct where the cluster keeps accounting), cancelled
// with scancel. Every call is a short child process; the scheduler's refusals become one-line
// qs::Error messages in Slurm's own words ("sbatch: invalid partition specified: nosuch").
//
// Torch- and Qt-free (the GUI includes it).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/config/project_config.h"
#include "core/runs/remote_jobs.h"

namespace qs::cluster {

// One job array: task i runs commands[i] in `workDir`; its log goes to logs[i].
struct BatchJob {
  std::string name;                   // --job-name
  std::string workDir;                // --chdir (absolute)
  std::vector<std::string> commands;  // shell command lines, one per array task
  std::string logPattern;             // --output, absolute; %a = the task index (its folder must exist)
  std::vector<std::string> exitFiles; // where each task writes its exit status (read when the scheduler forgot the job)
};

// The batch script: #SBATCH lines from the profile (partition, account, qos, gres, gpus,
// cpus-per-task, mem, time, the profile's extra options), --array=0-(N-1)[%array_max], the
// output pattern, the setup preamble, then the task's command chosen by $SLURM_ARRAY_TASK_ID.
std::string batchScript(const config::SlurmProfile& profile, const BatchJob& job);

// What the scheduler says about one job or array task.
struct TaskStatus {
  std::string id;                     // "1234_3" (array task) or "1234"
  runs::JobState state = runs::JobState::Pending;
  std::string node;                   // "" while pending
  double elapsedS = 0;
  std::string reason;                 // "TimeLimit", "Priority", ...
};

class Slurm {
 public:
  // `binDir`: folder holding sbatch, squeue, scontrol, sacct, scancel; "" = PATH. `env`: extra
  // environment for them (SLURM_CONF of a test cluster).
  explicit Slurm(std::string binDir = "", std::vector<std::pair<std::string, std::string>> env = {});

  // Submits the script file; returns the job id ("1234"). Throws qs::Error: sbatch missing,
  // or its refusal as one line.
  std::string submit(const std::string& scriptPath) const;
  // The state of each id given ("1234_3"); ids the scheduler no longer knows are absent. Throws
  // qs::Error when the controller does not answer (so no job is taken for lost).
  std::map<std::string, TaskStatus> query(const std::vector<std::string>& ids) const;
  // scancel; ids may be a job, an array task ("1234_3") or a whole array ("1234"). Throws with
  // scancel's message.
  void cancel(const std::vector<std::string>& ids) const;

  // Maps a Slurm state name (squeue %T / scontrol JobState / sacct State, "CANCELLED by 0") to ours.
  static runs::JobState mapState(const std::string& slurmState);
  // "1-02:03:04", "02:03:04", "03:04" -> seconds.
  static double parseDuration(const std::string& text);

 private:
  std::string tool(const std::string& name) const;
  std::string binDir_;
  std::vector<std::pair<std::string, std::string>> env_;
};

}  // namespace qs::cluster
