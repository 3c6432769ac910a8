#include "app/qscope/cluster_options.h"

#include <cmath>
#include <cstdio>

namespace qs::cli {

void ClusterFlags::add(CLI::App* cmd, bool withResources) {
  auto& o = options;
  auto& p = o.overrides;
  if (withResources) {
    cmd->add_option("--backend", o.backend, "where the jobs run: local (this process, one after another) or slurm "
                                            "(one job array; project.yaml slurm: profiles)")
        ->check(CLI::IsMember({"local", "slurm"}))
        ->capture_default_str();
    cmd->add_option("--partition", p.partition, "Slurm partition (overrides the profile)");
    cmd->add_option("--account", p.account, "Slurm account");
    cmd->add_option("--qos", p.qos, "Slurm QOS");
    cmd->add_option("--gres", p.gres, "generic resources per task, e.g. gpu:a100:1");
    cmd->add_option("--gpus", p.gpus, "GPUs per task")->check(CLI::NonNegativeNumber);
    cmd->add_option("--cpus-per-task", p.cpusPerTask, "CPUs per task")->check(CLI::NonNegativeNumber);
    cmd->add_option("--mem", p.mem, "memory per task, e.g. 64G");
    cmd->add_option("--time", p.time, "time limit per task, e.g. 04:00:00");
    cmd->add_option("--array-max", p.arrayMax, "array tasks running at once (0 = as many as the cluster gives)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--sbatch", p.sbatch, "another #SBATCH option, e.g. --sbatch=--constraint=a100 (repeatable)")
        ->allow_extra_args(false);
    cmd->add_option("--qscope", o.qscope, "the qscope binary on the nodes (default: the profile's, else this one)");
  }
  cmd->add_option("--profile", o.profile, "Slurm profile of project.yaml (default: 'default' when it exists)");
  cmd->add_option("--slurm-bin", o.slurmBin, "folder holding sbatch, scontrol, scancel (default: PATH)");
}

void ClusterFlags::forward(const RunOptions& run) {
  auto& a = options.jobArgs;
  if (run.exec != "auto") a.insert(a.end(), {"--exec", run.exec});
  if (!run.maxMemory.empty()) a.insert(a.end(), {"--max-memory", run.maxMemory});
  if (run.threads > 0) a.insert(a.end(), {"--threads", std::to_string(run.threads)});
}

void printJobs(const std::vector<runs::RemoteJob>& jobs) {
  std::printf("%-5s %-28s %-10s %-13s %-12s %9s %5s  %s\n", "job", "group/task", "slurm id", "state", "node", "elapsed",
              "run", "name");
  for (const auto& j : jobs) {
    char elapsed[32] = "-";
    if (!std::isnan(j.elapsedS)) {
      const long s = static_cast<long>(j.elapsedS);
      std::snprintf(elapsed, sizeof elapsed, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
    const std::string task = j.group + "/" + std::to_string(j.taskIndex);
    const std::string state = runs::toString(j.state) + (j.imported ? "" : "*");
    std::printf("%-5lld %-28s %-10s %-13s %-12s %9s %5s  %s\n", static_cast<long long>(j.id), task.c_str(),
                j.schedulerId.c_str(), state.c_str(), j.node.empty() ? "-" : j.node.c_str(), elapsed,
                j.runId > 0 ? std::to_string(j.runId).c_str() : "-", j.name.c_str());
    if (!j.message.empty() && runs::isTerminal(j.state) && j.state != runs::JobState::Completed)
      std::printf("      %s\n", j.message.c_str());
  }
  std::printf("(* = not yet in the run store: `qscope jobs sync` imports what has ended)\n");
}

}  // namespace qs::cli
