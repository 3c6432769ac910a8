// qscope jobs list|sync|cancel|log PROJECT: the project's remote jobs (Slurm). sync asks the
// scheduler, records states and imports every job that has ended, exactly once (a finished run,
// or a failed/cancelled run with the job's log); `qscope runs import` is the same. cancel runs
// scancel on jobs by id or on a whole group.
#include <cstdio>

#include "app/qscope/cli_support.h"
#include "app/qscope/cluster_options.h"
#include "app/qscope/commands.h"
#include "core/runs/project.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/workflow/cluster_jobs.h"

namespace qs::cli {
namespace {

nlohmann::json jobJson(const runs::RemoteJob& j) {
  return {{"id", j.id},          {"group", j.group},       {"task", j.taskIndex},   {"backend", j.backend},
          {"scheduler_id", j.schedulerId}, {"name", j.name}, {"kind", j.kind},       {"state", runs::toString(j.state)},
          {"node", j.node},      {"elapsed_s", std::isnan(j.elapsedS) ? nlohmann::json() : nlohmann::json(j.elapsedS)},
          {"run_id", j.runId},   {"imported", j.imported}, {"message", j.message},  {"log", j.logPath},
          {"bundle", j.bundle},  {"submitted", j.submitted}, {"ended", j.ended}};
}

class JobsCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("jobs", "Remote (Slurm) jobs of a project: list, sync (import what ended), "
                                           "cancel, log");
    cmd->require_subcommand(1);
    list_ = cmd->add_subcommand("list", "The project's remote jobs, newest first");
    sync_ = cmd->add_subcommand("sync", "Ask the scheduler, record states, import every job that has ended");
    cancel_ = cmd->add_subcommand("cancel", "Cancel jobs (scancel) by job id, or a whole group");
    log_ = cmd->add_subcommand("log", "Print a job's log");
    for (auto* c : {list_, sync_, cancel_, log_}) {
      c->add_option("project", project_, "project folder")->required();
      cluster_.add(c, false);
    }
    for (auto* c : {list_, sync_}) {
      c->add_option("--group", group_, "only this sweep / group");
      c->add_flag("--json", json_, "print as JSON on stdout");
    }
    cancel_->add_option("ids", ids_, "job ids (see `qscope jobs list`)");
    cancel_->add_option("--group", group_, "every unfinished job of this group");
    log_->add_option("id", logId_, "job id")->required();
    return cmd;
  }

  int run() override {
    runs::Project::open(project_);  // a clear error for a folder that is not a project
    cluster_.options.backend = "slurm";
    if (list_->parsed()) return print(runs::JobLedger(project_).list(group_));
    if (sync_->parsed()) {
      const auto s = workflow::syncJobs(project_, cluster_.options, group_);
      if (!json_)
        std::printf("%s\n", workflow::describeSync(s.imported, s.failed, s.active).c_str());
      return print(s.jobs);
    }
    if (cancel_->parsed()) {
      if (ids_.empty() && group_.empty()) throw Error("jobs cancel: give job ids or --group GROUP");
      const auto ids = workflow::cancelJobs(project_, cluster_.options, ids_, group_);
      if (ids.empty()) std::printf("nothing to cancel: those jobs have ended\n");
      for (const auto& id : ids) std::printf("cancelled Slurm job %s\n", id.c_str());
      std::printf("`qscope jobs sync %s` records them once Slurm has stopped them\n", project_.c_str());
      return 0;
    }
    const auto job = runs::JobLedger(project_).get(logId_);
    const std::string path = runs::Project::open(project_).resolve(job.logPath);
    if (!fs::exists(path)) throw fileError(path, "job " + std::to_string(logId_) + " has no log yet (still pending?)");
    std::fputs(fs::readText(path).c_str(), stdout);
    return 0;
  }

 private:
  int print(const std::vector<runs::RemoteJob>& jobs) const {
    if (json_) {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& j : jobs) a.push_back(jobJson(j));
      printJson(a);
    } else if (jobs.empty()) {
      std::printf("no remote jobs in %s\n", project_.c_str());
    } else {
      printJobs(jobs);
    }
    return 0;
  }

  CLI::App *list_ = nullptr, *sync_ = nullptr, *cancel_ = nullptr, *log_ = nullptr;
  std::string project_, group_;
  std::vector<int64_t> ids_;
  int64_t logId_ = 0;
  bool json_ = false;
  ClusterFlags cluster_;
};

}  // namespace

std::unique_ptr<Command> makeJobsCommand() { return std::make_unique<JobsCommand>(); }

}  // namespace qs::cli
