// qscope search PROJECT --space space.yaml --trials N --objectives ppl,bits|acc:piqa,bits
// [--algo nsga2|random] [--seed S] [--min-acc X --tasks-limit N]: multi-objective mixed-precision search over per-layer number formats
// (core/algo/precision_search.h). Every trial is a `search` run in the project's store, the
// Pareto front a summary run with exports/search-<id>/pareto.json; the same command again
// resumes (trials already in the store are reused). Ctrl-C stops after the current trial.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/algo/precision_eval.h"
#include "core/algo/precision_search.h"
#include "core/algo/search_space.h"
#include "core/algo/search_store.h"
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
    cmd->add_flag("--json", json_, "print the trials and the front as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    return cmd;
  }

  int run() override {
    auto load = resolveRunOptions(run_);
    auto project = runs::Project::open(project_);
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
    algo::StoreTrialBackend backend(project.runsPath(), info, identity, evaluate);
    if (!json_)
      std::fprintf(stderr, "search %s: %s, %d trials, objectives %s, %d trials of this model/eval in the store\n",
                   info.searchId.c_str(), info.algo.c_str(), options_.trials, objectives_.c_str(),
                   backend.storedTrials());

    algo::SearchResult result;
    {
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
  bool json_ = false, noProgress_ = false;
};

}  // namespace

std::unique_ptr<Command> makeSearchCommand() { return std::make_unique<SearchCommand>(); }

}  // namespace qs::cli
