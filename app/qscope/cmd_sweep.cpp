// qscope sweep PROJECT --grid grid.yaml [--backend local|slurm]: a grid (cartesian product and/or a
// list) of quantize configs, each a normal run of the project. Local: one after another in this
// process. Slurm: one job array (--array-max concurrent tasks), each task writing its run into its
// own bundle under incoming/; this command then waits, showing how many have ended, and imports
// each finished bundle once (core/workflow/cluster_jobs.h). --no-wait returns after submitting;
// `qscope jobs sync` (or the GUI) imports later. Ctrl-C while waiting cancels the array. Both go
// through workflow::ExecutionBackend (makeExecutionBackend), the one interface over where jobs run.
#include <cstdio>
#include <filesystem>

#include "app/qscope/cli_support.h"
#include "app/qscope/cluster_options.h"
#include "app/qscope/commands.h"
#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"
#include "core/workflow/cluster_jobs.h"

namespace qs::cli {
namespace {

class SweepCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("sweep", "Run a grid of quantize configs as runs of a project, here or as a "
                                            "Slurm job array");
    cmd->add_option("project", project_, "project folder")->required();
    cmd->add_option("--grid", grid_, "grid.yaml: base/quantize (fixed keys), grid (values per key: their "
                                     "cartesian product) and/or list (configs)")
        ->required();
    cluster_.add(cmd, /*withResources=*/true);
    cmd->add_option("--data-dir", dataDir_, "folder holding text/ for named datasets (passed to every job)");
    addRunOptions(*cmd, run_);
    cmd->add_flag("--no-wait", noWait_, "slurm: return after submitting (import later with `qscope jobs sync`)");
    cmd->add_option("--poll", pollSeconds_, "slurm: seconds between looks at the queue while waiting")
        ->check(CLI::Range(0.2, 3600.0))
        ->capture_default_str();
    cmd->add_flag("--dry-run", dryRun_, "print the configs (and the batch script for slurm) and stop");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    return cmd;
  }

  int run() override {
    resolveRunOptions(run_);
    const runs::Project project = runs::Project::open(project_);
    const auto configs = workflow::loadSweepGrid(grid_, project_);
    std::printf("%zu config(s) from %s:\n", configs.size(), grid_.c_str());
    for (size_t i = 0; i < configs.size(); ++i)
      std::printf("  %2zu  %-24s %s\n", i, configs[i].label.c_str(), configs[i].values.c_str());
    std::fflush(stdout);
    auto& cluster = cluster_.options;
    if (cluster.backend == "slurm") cluster_.forward(run_);
    if (dryRun_ && cluster.backend == "local") return 0;
    if (dryRun_ || noWait_) {
      if (cluster.backend != "slurm") throw Error("--no-wait is for --backend slurm (a local sweep runs here and now)");
      // Submit only: the load options go with the tasks.
      const auto load = workflow::loadArgs(dataDir_, run_.device, run_.dtype);
      cluster.jobArgs.insert(cluster.jobArgs.end(), load.begin(), load.end());
      const auto g = workflow::submitSweep(project_, configs, cluster, dryRun_);
      if (dryRun_) {
        std::printf("\nbatch script (not submitted):\n%s", g.script.c_str());
        return 0;
      }
      std::printf("submitted Slurm job array %s (%zu tasks) as %s; logs under %s/incoming/%s/\n", g.schedulerId.c_str(),
                  g.jobs.size(), g.group.c_str(), project.dir().c_str(), g.group.c_str());
      std::printf("not waiting: `qscope jobs sync %s` imports the runs as they end\n", project_.c_str());
      return 0;
    }
    workflow::QuantizeJobOptions o;
    o.projectDir = project_;
    o.dataDir = dataDir_;
    o.device = run_.device;
    o.dtype = run_.dtype;
    o.exec = resolveExecOptions(run_);
    o.toolVersion = QS_VERSION;
    const auto backend = workflow::makeExecutionBackend(cluster, pollSeconds_, [](const std::string& line) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    });
    std::vector<int64_t> ids;
    {
      ProgressBar bar("sweep", !noProgress_);
      ids = backend->runQuantizeConfigs(configs, o, bar);
      bar.finish();
    }
    return printResults(configs, ids) ? 0 : 1;
  }

 private:
  // Returns whether every config became a finished run.
  bool printResults(const std::vector<workflow::SweepConfig>& configs, const std::vector<int64_t>& ids) const {
    auto store = runs::Project::open(project_).openStore();
    std::printf("\n%-3s %-6s %-10s %-34s %s\n", "#", "run", "status", "config", "metrics");
    bool allFinished = true;
    for (size_t i = 0; i < configs.size(); ++i) {
      if (ids[i] == 0) {
        std::printf("%-3zu %-6s %-10s %-34s\n", i, "-", "no run", configs[i].values.c_str());
        allFinished = false;
        continue;
      }
      const auto rec = store.loadRun(ids[i], false);
      std::string metrics;
      for (const auto& m : rec.metrics)
        if (m.key.rfind("ppl", 0) == 0) {
          char buf[96];
          std::snprintf(buf, sizeof buf, "%s%s %.4f", metrics.empty() ? "" : ", ", m.key.c_str(), m.value);
          metrics += buf;
        }
      if (rec.info.status != runs::RunStatus::Finished) {
        metrics = rec.info.statusMessage;
        allFinished = false;
      }
      std::printf("%-3zu %-6lld %-10s %-34s %s\n", i, static_cast<long long>(ids[i]),
                  runs::toString(rec.info.status).c_str(), configs[i].values.c_str(), metrics.c_str());
    }
    return allFinished;
  }

  std::string project_, grid_, dataDir_;
  ClusterFlags cluster_;
  RunOptions run_;
  bool noWait_ = false, dryRun_ = false, noProgress_ = false;
  double pollSeconds_ = 10;
};

}  // namespace

std::unique_ptr<Command> makeSweepCommand() { return std::make_unique<SweepCommand>(); }

}  // namespace qs::cli
