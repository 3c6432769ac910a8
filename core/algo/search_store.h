// Search trials in a project's run store: each trial is a run of kind `search` whose config
// records the search id, the trial number and key, the choice vector, the eval settings and the
// per-layer precision config; its metrics are ppl.<dataset>, bits.weight, bits.input and, with an
// accuracy objective, <task>/acc (n and stderr, as `qscope eval --tasks` stores it). At the
// end, a summary run (also kind `search`, `search.role: pareto`) holds the Pareto front: its
// config lists every trial's run id, its artifact exports/search-<id>/pareto.json every point.
//
// Resume: a backend finds finished trial runs by key (same model, eval settings and config), so
// a search run again - after Ctrl-C, a crash, or with a larger --trials - reuses them.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "core/algo/precision_search.h"

namespace qs::algo {

// What a trial's evaluation returns.
struct TrialEval {
  TrialEval() = default;
  TrialEval(double ppl_, std::string protocol_, int64_t windows_)
      : ppl(ppl_), protocol(std::move(protocol_)), windows(windows_) {}
  double ppl = NAN;
  std::string protocol;   // "gptq-nonoverlapping seqlen=256"
  int64_t windows = 0;
  // The accuracy objective's task (SearchRunInfo::accTask), as eval::evaluateTask reports it.
  double acc = NAN, accStderr = NAN;
  int64_t accN = 0;
  std::string accProtocol;  // eval::taskProtocol(task)
};

struct SearchRunInfo {
  std::string searchId;     // "s-<12 hex>"
  std::string modelPath;
  std::string modelFingerprint;
  std::string dataset;      // metric name: ppl.<dataset>
  std::string evalYaml;     // the `eval:` section of each trial's config
  std::string algo;
  uint64_t seed = 0;
  std::string toolVersion;
  std::string device;
  std::string accTask;      // the accuracy objective's task ("" = none): metric <task>/acc
};

class StoreTrialBackend : public TrialBackend {
 public:
  using EvaluateFn = std::function<TrialEval(const quant::LayerPrecision&, jobs::Progress&)>;
  // Indexes the store's finished search trials by key once, at construction.
  StoreTrialBackend(std::string runsPath, SearchRunInfo info, std::string identity, EvaluateFn evaluate);

  std::string identity() const override { return identity_; }
  std::optional<StoredTrial> find(const std::string& key) override;
  StoredTrial evaluate(const TrialRequest& request, jobs::Progress& progress) override;
  int storedTrials() const { return static_cast<int>(byKey_.size()); }

 private:
  std::string runsPath_;
  SearchRunInfo info_;
  std::string identity_;
  EvaluateFn evaluate_;
  std::map<std::string, int64_t> byKey_;  // trial key -> run id
};

// Hands the trials the store does not hold to someone else (a Slurm job array): find() is the
// inner backend's, evaluate() records what was asked and answers `deferred`, so runSearch stops at
// the end of the generation with `wanted` listing the trials to evaluate elsewhere.
class DeferringTrialBackend : public TrialBackend {
 public:
  struct Wanted {
    int index = 0;
    std::string key;
    std::vector<int> choice;
    std::string config;  // precisionToYaml of the decoded config
  };
  explicit DeferringTrialBackend(TrialBackend& inner) : inner_(inner) {}
  std::string identity() const override { return inner_.identity(); }
  std::optional<StoredTrial> find(const std::string& key) override { return inner_.find(key); }
  StoredTrial evaluate(const TrialRequest& request, jobs::Progress& progress) override;
  std::vector<Wanted> wanted;

 private:
  TrialBackend& inner_;
};

// The trial file a remote task evaluates (`qscope search ... --trial FILE`): index, key and choice.
std::string trialFileYaml(const DeferringTrialBackend::Wanted& w);
DeferringTrialBackend::Wanted parseTrialFile(const std::string& path);

// Records the summary run with the front and writes <exportsDir>/search-<id>/pareto.json
// atomically. Returns the run id.
int64_t recordSearchSummary(const std::string& runsPath, const std::string& exportsDir, const SearchRunInfo& info,
                            const SearchOptions& options, const std::string& spaceYaml, const SearchResult& result);

// pareto.json: {search_id, objectives, acc_task, min_acc, trials: [{run_id, trial, choice, ppl,
// acc, acc_stderr, acc_n, bits, input_bits, feasible, front, reused, config}]} (acc: null
// without an accuracy objective).
std::string paretoJson(const SearchRunInfo& info, const SearchOptions& options, const SearchResult& result);

}  // namespace qs::algo
