// qscope search PROJECT --space space.yaml --trials N --objectives ppl,bits [--algo nsga2|random]
// [--seed S]: multi-objective mixed-precision search over per-layer number formats
// (core/algo/precision_search.h). Every trial is a `search` run in the project's store, the
// Pareto front a summary run with exports/search-<id>/pareto.json; the same command again
// resumes (trials already in the store are reused). Ctrl-C stops after the current trial.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/algo/precision_eval.h"
#include "core/algo/precision_search.h"
#include "core/algo/search_space.h"
#include "core/algo/search_store.h"
#include "core/eval/datasets.h"
#include "core/eval/perplexity.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"
#include "core/runs/fingerprint.h"
#include "core/runs/project.h"
#include "core/util/error.h"

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
    cmd->add_option("--objectives", objectives_, "two or more of ppl, bits (avg bits per weight), abits (per input)")
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
    if (datasetOpt_->count()) space.eval.dataset = dataset_;
    if (seqlenOpt_->count()) space.eval.seqlen = seqlen_;
    if (windowsOpt_->count()) space.eval.limitWindows = windows_;
    options_.algo = algo::parseSearchAlgo(algo_);
    options_.objectives = algo::parseObjectives(objectives_);
    options_.constraints = space.constraints;

    const std::string modelPath = project.modelPath();
    const auto text = eval::loadDataset(space.eval.dataset, dataDir_.empty() ? project.dataDir() : dataDir_);
    auto tokenizer = io::loadTokenizer(modelPath);
    const std::vector<int32_t> tokens = tokenizer->encode(text.text, true);
    auto model = model::openModel(modelPath, load);
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
      jobs::SubProgress scoring(progress, 0.1, 1.0);
      const auto r = eval::evaluatePerplexity(*model, tokens, ppl, scoring);
      return algo::TrialEval{r.perplexity, r.protocol + " seqlen=" + std::to_string(r.seqlen), r.windows};
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
    std::printf("Pareto front (%zu of %zu; ppl on %s):\n", front.size(), r.trials.size(), info.dataset.c_str());
    std::printf("  %5s %6s %8s %8s %10s\n", "trial", "run", "w bits", "a bits", "ppl");
    for (size_t i : front) {
      const auto& t = r.trials[i];
      std::printf("  %5d %6lld %8.3f %8.3f %10.4f\n", t.index, static_cast<long long>(t.runId), t.weightBits,
                  t.inputBits, t.ppl);
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
  double maxBits_ = 0, maxPpl_ = 0, minPpl_ = 0;
  int seqlen_ = 0;
  int64_t windows_ = 0;
  CLI::Option *maxBitsOpt_ = nullptr, *maxPplOpt_ = nullptr, *minPplOpt_ = nullptr, *datasetOpt_ = nullptr,
              *seqlenOpt_ = nullptr, *windowsOpt_ = nullptr;
  RunOptions run_;
  bool json_ = false, noProgress_ = false;
};

}  // namespace

std::unique_ptr<Command> makeSearchCommand() { return std::make_unique<SearchCommand>(); }

}  // namespace qs::cli
