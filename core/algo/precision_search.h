// Multi-objective mixed-precision search over a SearchSpace (search_space.h): NSGA-II (pagmo2)
// or uniform random search as the baseline. A trial is one distinct configuration of the space,
// evaluated (perplexity on a small eval set) and stored by a TrialBackend; the budget counts
// trials of this search, including ones the backend already had (resume: the same command
// replays the same proposals, reuses what the store holds and evaluates only the rest).
//
// Objectives: "ppl" (perplexity), "bits" (average bits per weight, computed from the formats
// without evaluating), "abits" (average bits per input element), "acc:TASK" (zero-shot accuracy,
// the harness's acc, of a task of core/eval/tasks.h on its first N examples; maximised, so the
// optimiser and Trial::objectives see -acc). At most one accuracy objective; every trial also
// gets its perplexity (the plots' y axis).
// Constraints: max_bits is checked before evaluation (configs above it are never evaluated and
// do not use the budget); max_ppl / min_ppl / min_acc after (an infeasible trial is stored but is
// not on the front). NSGA-II sees infeasible points with a penalty added to every objective.
//
// Determinism: the proposals depend only on the space, the seed, the population size and the
// objective values, so a seeded search is reproducible and a resumed one continues where the
// interrupted one stopped.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/algo/precision_eval.h"
#include "core/algo/search_space.h"
#include "core/jobs/progress.h"

namespace qs::model {
struct SiteInfo;
}

namespace qs::algo {

enum class SearchAlgo { Nsga2, Random };
const char* searchAlgoName(SearchAlgo a);             // "nsga2", "random"
SearchAlgo parseSearchAlgo(const std::string& name);  // throws qs::Error naming --algo

// "ppl,bits" -> {"ppl", "bits"}; "acc:piqa,bits" -> {"acc:piqa", "bits"} (the task name as
// eval::findTask spells it). Throws qs::Error naming --objectives for unknown names or tasks,
// duplicates, two accuracy objectives or fewer than two objectives.
std::vector<std::string> parseObjectives(const std::string& list);
// The task of the "acc:TASK" objective, or "" when there is none.
std::string accuracyTask(const std::vector<std::string>& objectives);

struct SearchOptions {
  SearchAlgo algo = SearchAlgo::Nsga2;
  int trials = 24;                                   // budget: distinct configurations evaluated
  uint64_t seed = 0;
  int population = 8;                                // NSGA-II population (rounded up to a multiple of 4, >= 8)
  std::vector<std::string> objectives = {"ppl", "bits"};
  SearchConstraints constraints;
  int maxStalls = 0;  // proposals in a row without a new configuration before giving up; 0 = 200 * population
};

// What a backend is asked to evaluate.
struct TrialRequest {
  int index = 0;                 // trial number in this search (0-based)
  std::vector<int> choice;       // the decision vector
  std::string key;               // identity of (backend identity, config): "fnv1a64:<hex>"
  const quant::LayerPrecision* config = nullptr;
  const PrecisionSummary* summary = nullptr;
};

struct StoredTrial {
  double ppl = NAN;
  int64_t runId = 0;             // 0 = not stored
  // The accuracy objective's task metric (NaN / 0 without one): acc, its standard error and
  // the number of examples scored, as `qscope eval --tasks` stores them.
  double acc = NAN, accStderr = NAN;
  int64_t accN = 0;
  // The backend has not evaluated it yet: it was handed to someone else (a Slurm job array). The
  // search goes on to the end of the current generation — whose proposals do not depend on each
  // other's results — collecting every such trial, then stops with stopReason "deferred"; run
  // again once they are stored, it replays the same proposals and continues (remote_search.h).
  bool deferred = false;
};

class TrialBackend {
 public:
  virtual ~TrialBackend() = default;
  // Identifies everything a trial's result depends on besides its config (model, eval data and
  // settings); part of every trial key.
  virtual std::string identity() const = 0;
  // A finished trial with this key stored earlier, if any.
  virtual std::optional<StoredTrial> find(const std::string& key) = 0;
  // Evaluates and stores one trial. Throws qs::Cancelled (nothing stored) when cancelled.
  virtual StoredTrial evaluate(const TrialRequest& request, jobs::Progress& progress) = 0;
};

struct Trial {
  int index = 0;
  std::vector<int> choice;
  std::string key;
  std::string config;            // precisionToYaml of the decoded config
  double ppl = NAN;
  double acc = NAN, accStderr = NAN;  // the accuracy objective's task (NaN without one)
  int64_t accN = 0;
  double weightBits = NAN, inputBits = NAN;
  std::vector<double> objectives;  // in SearchOptions::objectives order, minimised (acc negated)
  bool feasible = true;          // ppl/acc constraints hold (and ppl, acc are finite)
  bool reused = false;           // found in the store, not evaluated now
  bool onFront = false;
  int64_t runId = 0;
};

struct SearchResult {
  std::vector<Trial> trials;     // in the order first proposed
  std::vector<size_t> front;     // indices into trials: the Pareto front of the feasible trials
  int proposals = 0;             // decision vectors proposed (duplicates included)
  int skippedOverBits = 0;       // distinct configs over max_bits (never evaluated)
  std::string stopReason;        // "budget", "space exhausted", "deferred" (trials handed out, see StoredTrial)
  int deferred = 0;              // trials the backend deferred
};

// Runs the search. `sites` are the model's sites (for bits and for resolving the space).
// Progress: one step per trial; throws qs::Cancelled with finished trials already stored.
SearchResult runSearch(const SearchSpace& space, const std::vector<model::SiteInfo>& sites,
                       const SearchOptions& options, TrialBackend& backend,
                       jobs::Progress& progress = jobs::Progress::none());

// Marks SearchResult::front / Trial::onFront from the feasible trials' objectives.
void computeFront(SearchResult& result);

// "fnv1a64:<hex>" of a text (trial keys, search ids).
std::string textKey(const std::string& text);

}  // namespace qs::algo
