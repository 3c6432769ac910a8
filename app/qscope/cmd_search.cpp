// qscope search PROJECT --space space.yaml --trials N --objectives ppl,bits|acc:piqa,bits
// [--algo nsga2|random] [--seed S] [--min-acc X --tasks-limit N]: multi-objective mixed-precision search over per-layer number formats
// (core/algo/precision_search.h). Every trial is a `search` run in the project's store, the
// Pareto front a summary run with exports/search-<id>/pareto.json; the same command again
// resumes (trials already in the store are reused). Ctrl-C stops after the current trial.
// --backend slurm: each generation's new trials are evaluated as one Slurm job array (each task
// runs this command with --trial FILE --bundle DIR: that one trial, stored in its bundle); the
// coordinator imports them and replays the search, which proposes exactly what the local search
// would (NSGA-II's children within a generation do not depend on each other's results).
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>

#include <filesystem>

#include "app/qscope/cli_support.h"
#include "app/qscope/cluster_options.h"
#include "app/qscope/commands.h"
#include "core/algo/precision_eval.h"
#include "core/algo/precision_search.h"
#include "core/algo/search_space.h"
#include "core/algo/search_store.h"
#include "core/quant/format_yaml.h"
#include "core/eval/datasets.h"
#include "core/eval/perplexity.h"
#include "core/eval/task_metrics.h"
#include "core/eval/tasks.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"
#include "core/runs/fingerprint.h"
#include "core/runs/project.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/workflow/cluster_jobs.h"

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
    auto load = resolveRunOptions(run_);
    auto project = runs::Project::open(project_);
    if (!bundle_.empty()) {
      if (trialFile_.empty()) throw Error("--bundle is for one trial (--trial FILE)");
      project.redirectStore(bundle_);
    }
    algo::SearchSpace space = algo::loadSearchSpace(spaceFile_);
    if (maxBitsOpt_->count()) space.constraints.maxBits = maxBits_;
    if (maxPplOpt_->count()) space.constraints.maxPpl = maxPpl_;
    if (minPplOpt_->count()) space.constraints.minPpl = minPpl_;
    if (minAccOpt_->count()) space.constraints.minAcc = minAcc_;
    if (tasksLimitOpt_->count()) space.eval.tasksLimit = tasksLimit_;
    if (datasetOpt_->count()) space.eval.dataset = dataset_;
    if (seqlenOpt_->count()) space.eval.seqlen = seqlen_;
    if (windowsOpt_->count()) space.eval.limitWindows = windows_;
    options_.algo = algo::parseSearchAlgo(algo_);
    options_.objectives = algo::parseObjectives(objectives_);
    options_.constraints = space.constraints;
    const std::string accTask = algo::accuracyTask(options_.objectives);
    if (space.constraints.minAcc > 0 && accTask.empty())
      throw Error(std::string(minAccOpt_->count() ? "--min-acc" : spaceFile_ + ": key 'constraints.min_acc'") +
                  ": needs an accuracy objective (e.g. --objectives acc:piqa,bits)");
    std::optional<eval::Task> task;  // the accuracy objective's examples, loaded before the model
    if (!accTask.empty()) {
      // --task-dir, else <data dir>/tasks when the data folder has one, else the search path.
      std::string taskDir = taskDir_;
      const std::string dataDir = dataDir_.empty() ? project.dataDir() : dataDir_;
      if (taskDir.empty() && !dataDir.empty() && fs::isDirectory(fs::join(dataDir, "tasks"))) taskDir = fs::join(dataDir, "tasks");
      task = eval::loadTask({accTask, ""}, eval::TaskLoadOptions().withTaskDir(taskDir).withLimit(space.eval.tasksLimit));
    }

    const std::string modelPath = project.modelPath();
    const auto text = eval::loadDataset(space.eval.dataset, dataDir_.empty() ? project.dataDir() : dataDir_);
    auto tokenizer = io::loadTokenizer(modelPath);
    const std::vector<int32_t> tokens = tokenizer->encode(text.text, true);
    auto model = model::openModel(modelPath, load);
    model->setExecOptions(resolveExecOptions(run_));
    std::vector<std::string> siteNames;
    for (const auto& s : model->sites()) siteNames.push_back(s.name);
    space.resolve(siteNames, spaceFile_);  // entries that match no site: an error before any trial

    eval::PerplexityOptions ppl;
    ppl.seqlen = space.eval.seqlen;
    ppl.batchSize = space.eval.batchSize;
    ppl.limitWindows = space.eval.limitWindows;

    algo::SearchRunInfo info;
    info.modelPath = modelPath;
    info.modelFingerprint = runs::fingerprintModel(modelPath);
    info.dataset = text.name;
    info.algo = algo::searchAlgoName(options_.algo);
    info.seed = options_.seed;
    info.toolVersion = QS_VERSION;
    info.device = run_.device;
    info.evalYaml = "eval:\n  dataset: \"" + text.name + "\"\n  dataset_tokens: " + std::to_string(tokens.size()) +
                    "\n  seqlen: " + std::to_string(ppl.seqlen) + "\n  limit_windows: " +
                    std::to_string(ppl.limitWindows) + "\n  batch_size: " + std::to_string(ppl.batchSize) +
                    "\n  device: " + run_.device + "\n  dtype: " + run_.dtype + "\n";
    info.accTask = accTask;
    if (task) {
      // The examples scored: the task, its file's fingerprint and the limit (a trial key changes
      // with any of them).
      info.evalYaml += "  tasks: \"" + accTask + "\"\n  task_file: \"" + task->path + "\"\n  task_file_hash: \"" +
                       algo::textKey(fs::readText(task->path)) + "\"\n  limit: " +
                       std::to_string(space.eval.tasksLimit) + "\n  task_docs: " + std::to_string(task->docs.size()) +
                       "\n";
    }
    // What a trial's number depends on besides its config: model, eval data and settings.
    const std::string identity = info.modelFingerprint + "\n" + info.evalYaml;
    std::string objectives;
    for (const auto& o : options_.objectives) objectives += o + ",";
    const std::string searchKey = algo::textKey(identity + space.toYaml() + info.algo + std::to_string(options_.seed) +
                                                std::to_string(options_.population) + objectives);
    info.searchId = "s-" + searchKey.substr(searchKey.size() - 12);

    algo::PrecisionEmulator emulator(*model);
    auto evaluate = [&](const quant::LayerPrecision& lp, jobs::Progress& progress) {
      jobs::SubProgress formats(progress, 0.0, 0.1);
      emulator.apply(lp, formats);
      jobs::SubProgress scoring(progress, 0.1, task ? 0.4 : 1.0);
      const auto r = eval::evaluatePerplexity(*model, tokens, ppl, scoring);
      algo::TrialEval e{r.perplexity, r.protocol + " seqlen=" + std::to_string(r.seqlen), r.windows};
      if (task) {
        jobs::SubProgress taskProgress(progress, 0.4, 1.0);
        const auto tr = eval::evaluateTask(*model, *tokenizer, *task, eval::LoglikelihoodOptions(), taskProgress);
        const auto* m = tr.metric("acc");
        if (!m) throw Error("--objectives: task '" + accTask + "' reports no acc metric");
        e.acc = m->value;
        e.accStderr = m->stdError;
        e.accN = tr.n;
        e.accProtocol = eval::taskProtocol(tr.task);
      }
      return e;
    };
    if (!trialFile_.empty()) return evaluateOneTrial(space, *model, info, identity, evaluate, project);

    algo::SearchResult result;
    if (cluster_.options.backend == "slurm") {
      const int rc = searchOnSlurm(space, *model, info, identity, evaluate, project, result);
      if (rc != 0) return rc;
    } else {
      algo::StoreTrialBackend backend(project.runsPath(), info, identity, evaluate);
      if (!json_)
        std::fprintf(stderr, "search %s: %s, %d trials, objectives %s, %d trials of this model/eval in the store\n",
                     info.searchId.c_str(), info.algo.c_str(), options_.trials, objectives_.c_str(),
                     backend.storedTrials());
      ProgressBar bar("search", !noProgress_);
      try {
        result = algo::runSearch(space, model->sites(), options_, backend, bar);
      } catch (const Cancelled&) {
        bar.finish();
        std::fprintf(stderr,
                     "qscope: search cancelled; finished trials are stored in %s - run the same command to resume\n",
                     project.runsPath().c_str());
        return 130;
      }
      bar.finish();
    }
    const int64_t summaryId = algo::recordSearchSummary(project.runsPath(), project.exportsDir(), info, options_,
                                                        space.toYaml(), result);
    if (json_) printJsonResult(info, result, summaryId, project);
    else printTable(info, result, summaryId, project);
    return 0;
  }

 private:
  using EvaluateFn = algo::StoreTrialBackend::EvaluateFn;

  // A Slurm task: the one trial of --trial, stored in the bundle.
  int evaluateOneTrial(const algo::SearchSpace& space, model::Model& model, const algo::SearchRunInfo& info,
                       const std::string& identity, const EvaluateFn& evaluate, const runs::Project& project) {
    const auto want = algo::parseTrialFile(trialFile_);
    std::vector<std::string> names;
    for (const auto& s : model.sites()) names.push_back(s.name);
    const quant::LayerPrecision lp = space.decode(space.resolve(names), want.choice);
    const std::string key = algo::textKey(identity + "\n" + quant::precisionToYaml(lp));
    if (key != want.key)
      throw Error(trialFile_ + ": this node sees another model, eval text or setting than the coordinator (trial key " +
                  key + ", expected " + want.key + "); use the same files and options on every node");
    const algo::PrecisionSummary summary = algo::summarizePrecision(model.sites(), lp);
    algo::StoreTrialBackend backend(project.runsPath(), info, identity, evaluate);
    algo::TrialRequest req{want.index, want.choice, want.key, &lp, &summary};
    algo::StoredTrial t;
    {
      ProgressBar bar("trial", !noProgress_);
      t = backend.evaluate(req, bar);
      bar.finish();
    }
    std::printf("search %s trial %d: ppl %.4f, stored as run %lld in %s\n", info.searchId.c_str(), want.index, t.ppl,
                static_cast<long long>(t.runId), project.runsPath().c_str());
    return 0;
  }

  // The coordinator: replays the search from the store, sends each generation's new trials to
  // Slurm as one array, imports them and goes on until the search ends as the local one would.
  int searchOnSlurm(const algo::SearchSpace& space, model::Model& model, const algo::SearchRunInfo& info,
                    const std::string& identity, const EvaluateFn& evaluate, const runs::Project& project,
                    algo::SearchResult& result) {
    cluster_.forward(run_);
    const std::string projectAbs = std::filesystem::absolute(project.dir()).lexically_normal().string();
    std::vector<std::string> args = {"search", projectAbs, "--space", std::filesystem::absolute(spaceFile_).string(),
                                     "--trials", std::to_string(options_.trials), "--objectives", objectives_,
                                     "--algo", algo_, "--seed", std::to_string(options_.seed), "--population",
                                     std::to_string(options_.population), "--no-progress"};
    if (datasetOpt_->count()) args.insert(args.end(), {"--dataset", dataset_});
    if (seqlenOpt_->count()) args.insert(args.end(), {"--seqlen", std::to_string(seqlen_)});
    if (windowsOpt_->count()) args.insert(args.end(), {"--limit-windows", std::to_string(windows_)});
    if (tasksLimitOpt_->count()) args.insert(args.end(), {"--tasks-limit", std::to_string(tasksLimit_)});
    if (!taskDir_.empty()) args.insert(args.end(), {"--task-dir", std::filesystem::absolute(taskDir_).string()});
    if (!dataDir_.empty()) args.insert(args.end(), {"--data-dir", std::filesystem::absolute(dataDir_).string()});
    args.insert(args.end(), {"--trial", "{task}/trial.yaml"});

    // A coordinator that was stopped while its trials ran: wait for those and import them first, so
    // the replay below finds them instead of submitting them again.
    {
      std::set<std::string> open;
      for (const auto& j : runs::JobLedger(project.dir()).list("", /*pendingOnly=*/true))
        if (j.group.rfind("search-" + info.searchId + "-", 0) == 0) open.insert(j.group);
      for (const auto& g : open) {
        std::fprintf(stderr, "search %s: waiting for the trials of %s, submitted earlier\n", info.searchId.c_str(),
                     g.c_str());
        ProgressBar bar("search", !noProgress_);
        workflow::waitForGroup(project_, cluster_.options, g, pollSeconds_, bar);
        bar.finish();
        if (bar.cancelRequested()) return 130;
      }
    }
    std::set<std::string> submitted;  // trials evaluated on Slurm by this command (not "reused")
    for (int generation = 1;; ++generation) {
      algo::StoreTrialBackend store(project.runsPath(), info, identity, evaluate);
      algo::DeferringTrialBackend defer(store);
      result = algo::runSearch(space, model.sites(), options_, defer);
      if (defer.wanted.empty()) {
        for (auto& t : result.trials)
          if (submitted.count(t.key)) t.reused = false;
        return 0;
      }
      for (const auto& w : defer.wanted) submitted.insert(w.key);
      std::vector<workflow::ArrayTask> tasks;
      for (const auto& w : defer.wanted) {
        workflow::ArrayTask t;
        t.name = "search " + info.searchId + " trial " + std::to_string(w.index);
        t.kind = "search";
        t.configYaml = w.config;
        t.files = {{"trial.yaml", algo::trialFileYaml(w)}};
        t.args = args;
        tasks.push_back(t);
      }
      const auto g = workflow::submitArray(project_, "search-" + info.searchId, tasks, cluster_.options);
      std::fprintf(stderr, "search %s: round %d, %zu new trial(s) (%zu of %d so far) as Slurm job array %s (%s)\n",
                   info.searchId.c_str(), generation, tasks.size(), result.trials.size(), options_.trials,
                   g.schedulerId.c_str(), g.group.c_str());
      workflow::SyncResult s;
      {
        ProgressBar bar("search", !noProgress_);
        s = workflow::waitForGroup(project_, cluster_.options, g.group, pollSeconds_, bar);
        bar.finish();
        if (bar.cancelRequested()) {
          std::fprintf(stderr, "qscope: search cancelled; finished trials are stored in %s - run the same command "
                               "to resume\n", project.runsPath().c_str());
          return 130;
        }
      }
      auto store2 = project.openStore();
      for (const auto& j : s.jobs)
        if (j.runId == 0 || store2.getRun(j.runId).status != runs::RunStatus::Finished)
          throw Error("search: " + j.name + " did not finish on Slurm (" +
                      (j.runId ? store2.getRun(j.runId).statusMessage : runs::toString(j.state)) +
                      "); the finished trials are stored: run the same command to go on");
    }
  }

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
