// qscope search PROJECT --space space.yaml --trials N --objectives ppl,bits|acc:piqa,bits
// [--algo nsga2|random] [--seed S] [--min-acc X --tasks-limit N]: multi-objective mixed-precision search over per-layer number formats
// (core/algo/precision_search.h). Every trial is a `search` run in the project's store, the
// Pareto front a summary run with exports/search-<id>/pareto.json; the same command again
// resumes (trials already in the store are reused). Ctrl-C stops after the current trial.
// --backend slurm: each generation's new trials are evaluated as one Slurm job array (each task
// runs this command with --trial FILE --bundle DIR: that one trial, stored in its bundle); the
// coordinator imports them and replays the search, which proposes exactly what the local search
// would (NSGA-II's children within a generation do not depend on each other's results). The steps are
// core/workflow/search_job.h's (the GUI's Search dialog runs the same); this command prints the result.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app/qscope/cli_support.h"
#include "app/qscope/cluster_options.h"
#include "app/qscope/commands.h"
#include "core/algo/precision_search.h"
#include "core/algo/search_store.h"
#include "core/runs/project.h"
#include "core/util/error.h"
#include "core/workflow/search_run.h"

namespace qs::cli {
namespace {

class SearchCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("search", "Multi-objective mixed-precision search over per-layer number formats "
                                             "(NSGA-II or random); every trial is a run, the Pareto front a result");
    cmd->add_option("project", project_, "project folder (its model is searched)")->required();
    cmd->add_option("--space", spaceFile_, "search space YAML (docs/FORMATS.md: per site pattern, format choices)")
        ->required();
    cmd->add_option("--trials", options_.trials, "budget: distinct configurations evaluated (reused ones count)")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--objectives", objectives_,
                    "two or more of ppl, bits (avg bits per weight), abits (per input), acc:TASK (zero-shot acc of "
                    "a task, maximised; e.g. acc:piqa)")
        ->capture_default_str();
    cmd->add_option("--algo", algo_, "nsga2 (pagmo2) or random (baseline)")
        ->capture_default_str()
        ->check(CLI::IsMember({"nsga2", "random"}));
    cmd->add_option("--seed", options_.seed, "seed of the proposals (same seed, same search)")->capture_default_str();
    cmd->add_option("--population", options_.population, "NSGA-II population (multiple of 4, >= 8)")
        ->capture_default_str()
        ->check(CLI::Range(4, 1024));
    maxBitsOpt_ = cmd->add_option("--max-bits", maxBits_, "constraint: average bits per weight (overrides the file)");
    maxPplOpt_ = cmd->add_option("--max-ppl", maxPpl_, "constraint: perplexity at most (overrides the file)");
    minPplOpt_ = cmd->add_option("--min-ppl", minPpl_, "constraint: perplexity at least (overrides the file)");
    minAccOpt_ = cmd->add_option("--min-acc", minAcc_, "constraint: accuracy objective's acc at least, 0..1 (overrides "
                                                       "constraints.min_acc)")
                     ->check(CLI::Range(0.0, 1.0));
    tasksLimitOpt_ = cmd->add_option("--tasks-limit", tasksLimit_, "examples of the accuracy task scored per trial "
                                                                   "(overrides eval.tasks_limit; 0 = all)")
                         ->check(CLI::NonNegativeNumber);
    cmd->add_option("--task-dir", taskDir_, "folder holding the task files (default: <data dir>/tasks, then "
                                            "$QS_DATA_DIR/tasks, ./data/tasks, ../shared/data/tasks)");
    datasetOpt_ = cmd->add_option("--dataset", dataset_, "eval text (overrides the file's eval.dataset)");
    seqlenOpt_ = cmd->add_option("--seqlen", seqlen_, "eval window length (overrides eval.seqlen)");
    windowsOpt_ = cmd->add_option("--limit-windows", windows_, "eval windows (overrides eval.limit_windows)");
    cmd->add_option("--data-dir", dataDir_, "folder holding text/ (default: the project's data_dir, then the search path)");
    addRunOptions(*cmd, run_);
    cluster_.add(cmd, /*withResources=*/true);
    cmd->add_option("--poll", pollSeconds_, "slurm: seconds between looks at the queue")
        ->check(CLI::Range(0.2, 3600.0))
        ->capture_default_str();
    cmd->add_option("--trial", trialFile_, "evaluate only this trial (a file the Slurm coordinator writes) and store "
                                           "it in --bundle; what each array task runs");
    cmd->add_option("--bundle", bundle_, "record the trial run in this folder instead of the project's store");
    cmd->add_flag("--json", json_, "print the trials and the front as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    return cmd;
  }

  int run() override {
    resolveRunOptions(run_);
    workflow::SearchJobOptions o;
    o.projectDir = project_;
    o.spaceFile = spaceFile_;
    o.trials = options_.trials;
    o.seed = options_.seed;
    o.population = options_.population;
    o.algo = algo_;
    o.objectives = objectives_;
    if (maxBitsOpt_->count()) o.maxBits = maxBits_;
    if (maxPplOpt_->count()) o.maxPpl = maxPpl_;
    if (minPplOpt_->count()) o.minPpl = minPpl_;
    if (minAccOpt_->count()) o.minAcc = minAcc_;
    if (tasksLimitOpt_->count()) o.tasksLimit = tasksLimit_;
    if (datasetOpt_->count()) o.dataset = dataset_;
    if (seqlenOpt_->count()) o.seqlen = seqlen_;
    if (windowsOpt_->count()) o.limitWindows = windows_;
    o.dataDir = dataDir_;
    o.taskDir = taskDir_;
    o.device = run_.device;
    o.dtype = run_.dtype;
    o.exec = resolveExecOptions(run_);
    o.toolVersion = QS_VERSION;
    cluster_.forward(run_);
    o.cluster = cluster_.options;
    o.pollSeconds = pollSeconds_;
    o.trialFile = trialFile_;
    o.bundleDir = bundle_;

    workflow::SearchRun r;
    {
      ProgressBar bar(trialFile_.empty() ? "search" : "trial", !noProgress_);
      try {
        r = workflow::runSearchFull(o, bar, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
      } catch (const Cancelled&) {
        bar.finish();
        std::fprintf(stderr, "qscope: search cancelled; finished trials are stored in %s - run the same command to "
                             "resume\n", (runs::Project::open(project_).runsPath()).c_str());
        return 130;
      }
      bar.finish();
    }
    if (!trialFile_.empty()) {
      std::printf("search %s trial %d: ppl %.4f, stored as run %lld in %s\n", r.info.searchId.c_str(), r.trialIndex,
                  r.trialPpl, static_cast<long long>(r.trialRunId), r.runsPath.c_str());
      return 0;
    }
    options_ = r.options;
    const runs::Project project = runs::Project::open(project_);
    if (json_) printJsonResult(r.info, r.result, r.summaryId, project);
    else printTable(r.info, r.result, r.summaryId, project);
    return 0;
  }

 private:
  static std::string shortConfig(const std::string& yaml) {
    // "precision:\n  default: ...\n  rules:\n    - {name: "a", weight: w, input: i}" -> "a=w/i; ..."
    std::string out;
    size_t pos = 0;
    while ((pos = yaml.find("{name: ", pos)) != std::string::npos) {
      const size_t end = yaml.find('\n', pos);
      out += (out.empty() ? "" : "  ") + yaml.substr(pos + 7, end - pos - 8);
      pos = end;
    }
    return out;
  }

  void printTable(const algo::SearchRunInfo& info, const algo::SearchResult& r, int64_t summaryId,
                  const runs::Project& project) const {
    int reused = 0, infeasible = 0;
    for (const auto& t : r.trials) {
      reused += t.reused;
      infeasible += !t.feasible;
    }
    std::printf("search %s: %zu trials (%d reused from the store, %d infeasible), %d proposals, stopped: %s\n",
                info.searchId.c_str(), r.trials.size(), reused, infeasible, r.proposals, r.stopReason.c_str());
    if (r.skippedOverBits > 0)
      std::printf("  %d configurations above --max-bits %.3g were not evaluated\n", r.skippedOverBits,
                  options_.constraints.maxBits);
    std::vector<size_t> front = r.front;
    std::sort(front.begin(), front.end(), [&](size_t a, size_t b) { return r.trials[a].weightBits < r.trials[b].weightBits; });
    const bool acc = !info.accTask.empty();
    std::printf("Pareto front (%zu of %zu; ppl on %s%s%s):\n", front.size(), r.trials.size(), info.dataset.c_str(),
                acc ? ", acc on " : "", acc ? info.accTask.c_str() : "");
    std::printf("  %5s %6s %8s %8s %10s%s\n", "trial", "run", "w bits", "a bits", "ppl", acc ? "      acc  stderr     n" : "");
    for (size_t i : front) {
      const auto& t = r.trials[i];
      std::printf("  %5d %6lld %8.3f %8.3f %10.4f", t.index, static_cast<long long>(t.runId), t.weightBits,
                  t.inputBits, t.ppl);
      if (acc) std::printf(" %8.4f %7.4f %5lld", t.acc, t.accStderr, static_cast<long long>(t.accN));
      std::printf("\n");
    }
    std::printf("stored as run %lld (front, pareto.json) and %zu trial runs in %s\n", static_cast<long long>(summaryId),
                r.trials.size(), project.runsPath().c_str());
    std::printf("plot: qscope plot pareto %lld -p %s -o pareto.png\n", static_cast<long long>(summaryId),
                project.dir().c_str());
  }

  void printJsonResult(const algo::SearchRunInfo& info, const algo::SearchResult& r, int64_t summaryId,
                       const runs::Project& project) const {
    nlohmann::json j = nlohmann::json::parse(algo::paretoJson(info, options_, r));
    j["summary_run_id"] = summaryId;
    j["runs_path"] = project.runsPath();
    j["proposals"] = r.proposals;
    j["skipped_over_bits"] = r.skippedOverBits;
    nlohmann::json front = nlohmann::json::array();
    for (size_t i : r.front) front.push_back(r.trials[i].runId);
    j["front_run_ids"] = front;
    printJson(j);
  }

  std::string project_, spaceFile_, objectives_ = "ppl,bits", algo_ = "nsga2", dataset_, dataDir_;
  algo::SearchOptions options_;
  double maxBits_ = 0, maxPpl_ = 0, minPpl_ = 0, minAcc_ = 0;
  int64_t tasksLimit_ = 0;
  std::string taskDir_;
  int seqlen_ = 0;
  int64_t windows_ = 0;
  CLI::Option *maxBitsOpt_ = nullptr, *maxPplOpt_ = nullptr, *minPplOpt_ = nullptr, *datasetOpt_ = nullptr,
              *seqlenOpt_ = nullptr, *windowsOpt_ = nullptr, *minAccOpt_ = nullptr, *tasksLimitOpt_ = nullptr;
  RunOptions run_;
  ClusterFlags cluster_;
  double pollSeconds_ = 10;
  std::string trialFile_, bundle_;
  bool json_ = false, noProgress_ = false;
};

}  // namespace

std::unique_ptr<Command> makeSearchCommand() { return std::make_unique<SearchCommand>(); }

}  // namespace qs::cli
