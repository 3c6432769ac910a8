#include "core/algo/precision_search.h"

#include <pagmo/algorithms/nsga2.hpp>
#include <pagmo/population.hpp>
#include <pagmo/problem.hpp>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include "core/algo/pareto.h"
#include "core/eval/tasks.h"
#include "core/model/model.h"
#include "core/quant/format_yaml.h"
#include "core/runs/fingerprint.h"
#include "core/util/error.h"

namespace qs::algo {
namespace {

// Thrown out of the fitness function to stop pagmo mid-generation.
struct StopSearch {};

constexpr double kPenalty = 1e6;

class Driver {
 public:
  Driver(const SearchSpace& space, const SearchSpace::Resolved& resolved, const std::vector<model::SiteInfo>& sites,
         const SearchOptions& options, TrialBackend& backend, jobs::Progress& progress)
      : space_(space), resolved_(resolved), sites_(sites), opts_(options), backend_(backend), progress_(progress) {
    maxStalls_ = options.maxStalls > 0 ? options.maxStalls : 200 * std::max(8, options.population);
    hasAcc_ = !accuracyTask(options.objectives).empty();
  }

  // Objectives of a choice vector for the optimiser (penalised when infeasible). Throws
  // StopSearch once the budget is spent or the space looks exhausted.
  std::vector<double> fitness(const std::vector<int>& choice) {
    progress_.checkCancel();
    // Deferred trials wait for their results at the end of the generation they belong to: the next
    // generation's proposals depend on them. (NSGA-II proposes `generation_` children per
    // generation, the first population included; random search never depends on results.)
    if (result.deferred > 0 && generation_ > 0 && result.proposals % generation_ == 0) stop("deferred");
    ++result.proposals;
    std::string id;
    for (int c : choice) id += std::to_string(c) + ",";
    if (auto it = seen_.find(id); it != seen_.end()) {
      if (++stalls_ >= maxStalls_) stop("space exhausted");
      return it->second;
    }
    const quant::LayerPrecision lp = space_.decode(resolved_, choice);  // throws for a vector outside the space
    const PrecisionSummary summary = summarizePrecision(sites_, lp);
    const double maxBits = opts_.constraints.maxBits;
    if (maxBits > 0 && summary.weightBits > maxBits + 1e-9) {
      ++result.skippedOverBits;
      std::vector<double> f(opts_.objectives.size(), kPenalty * (2 + summary.weightBits - maxBits));
      seen_[id] = f;
      if (++stalls_ >= maxStalls_) stop("space exhausted");
      return f;
    }
    if (static_cast<int>(result.trials.size()) >= opts_.trials) stop("budget");
    stalls_ = 0;

    Trial t;
    t.index = static_cast<int>(result.trials.size());
    t.choice = choice;
    t.config = quant::precisionToYaml(lp);
    t.key = textKey(backend_.identity() + "\n" + t.config);
    t.weightBits = summary.weightBits;
    t.inputBits = summary.inputBits;
    StoredTrial s;
    if (auto stored = backend_.find(t.key)) {
      s = *stored;
      t.reused = true;
    } else {
      TrialRequest req{t.index, choice, t.key, &lp, &summary};
      const double begin = static_cast<double>(t.index) / opts_.trials;
      jobs::SubProgress sub(progress_, begin, begin + 1.0 / opts_.trials);
      s = backend_.evaluate(req, sub);
    }
    if (s.deferred) ++result.deferred;
    t.ppl = s.ppl;
    t.runId = s.runId;
    t.acc = s.acc;
    t.accStderr = s.accStderr;
    t.accN = s.accN;
    for (const auto& o : opts_.objectives)
      t.objectives.push_back(o == "ppl" ? t.ppl : o == "bits" ? t.weightBits : o == "abits" ? t.inputBits : -t.acc);
    const auto& c = opts_.constraints;
    double violation = 0;
    if (!std::isfinite(t.ppl) || (hasAcc_ && !std::isfinite(t.acc))) violation = 1e6;
    else {
      if (c.maxPpl > 0 && t.ppl > c.maxPpl) violation += (t.ppl - c.maxPpl) / c.maxPpl;
      if (c.minPpl > 0 && t.ppl < c.minPpl) violation += (c.minPpl - t.ppl) / c.minPpl;
      if (c.minAcc > 0 && t.acc < c.minAcc) violation += (c.minAcc - t.acc) / c.minAcc;
    }
    t.feasible = violation == 0;
    std::vector<double> f = t.objectives;
    if (!t.feasible)
      for (auto& v : f) v = kPenalty * (1 + violation) + (std::isfinite(v) ? v : kPenalty);
    seen_[id] = f;
    result.trials.push_back(t);
    char msg[200];
    char acc[48] = "";
    if (hasAcc_) std::snprintf(acc, sizeof acc, ", acc %.4f", t.acc);
    std::snprintf(msg, sizeof msg, "trial %d/%d: ppl %.3f%s, %.2f bits%s", t.index + 1, opts_.trials, t.ppl, acc,
                  t.weightBits, t.reused ? " (reused)" : "");
    progress_.update(static_cast<double>(t.index + 1) / opts_.trials, msg);
    return f;
  }

  bool done() const { return static_cast<int>(result.trials.size()) >= opts_.trials; }
  void setGeneration(int proposals) { generation_ = proposals; }
  [[noreturn]] void stop(const char* why) {
    result.stopReason = why;
    throw StopSearch{};
  }

  SearchResult result;

 private:
  const SearchSpace& space_;
  const SearchSpace::Resolved& resolved_;
  const std::vector<model::SiteInfo>& sites_;
  const SearchOptions& opts_;
  TrialBackend& backend_;
  jobs::Progress& progress_;
  std::map<std::string, std::vector<double>> seen_;  // choice -> fitness (duplicates cost nothing)
  int stalls_ = 0, maxStalls_ = 0;
  int generation_ = 0;  // proposals per generation (0 = results never feed later proposals)
  bool hasAcc_ = false;
};

// pagmo's user-defined problem: one integer variable per dimension, bounds [0, choices - 1].
struct PagmoProblem {
  Driver* driver = nullptr;
  std::vector<int> choices;
  size_t nobj = 2;

  pagmo::vector_double fitness(const pagmo::vector_double& x) const {
    std::vector<int> c(x.size());
    for (size_t i = 0; i < x.size(); ++i) c[i] = static_cast<int>(std::lround(x[i]));
    return driver->fitness(c);
  }
  std::pair<pagmo::vector_double, pagmo::vector_double> get_bounds() const {
    pagmo::vector_double lb(choices.size(), 0.0), ub;
    for (int n : choices) ub.push_back(n - 1);
    return {lb, ub};
  }
  pagmo::vector_double::size_type get_nobj() const { return nobj; }
  pagmo::vector_double::size_type get_nix() const { return choices.size(); }
  std::string get_name() const { return "QuantScope mixed precision"; }
};

void runRandom(Driver& d, const SearchSpace::Resolved& r, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int> c(r.dims.size());
  while (true) {
    for (size_t i = 0; i < c.size(); ++i)
      c[i] = static_cast<int>(std::uniform_int_distribution<int>(0, r.dims[i].choices - 1)(rng));
    d.fitness(c);
  }
}

void runNsga2(Driver& d, const SearchSpace::Resolved& r, const SearchOptions& o) {
  PagmoProblem udp;
  udp.driver = &d;
  for (const auto& dim : r.dims) udp.choices.push_back(dim.choices);
  udp.nobj = o.objectives.size();
  // pagmo's NSGA-II wants a population that is a multiple of 4 and at least 5.
  const int pop = std::max(8, (o.population + 3) / 4 * 4);
  d.setGeneration(pop);
  const auto seed = static_cast<unsigned>(o.seed ^ (o.seed >> 32));
  pagmo::problem prob{udp};
  pagmo::population population{prob, static_cast<pagmo::population::size_type>(pop), seed};
  // One generation per evolve() call, so the budget is checked between generations too. Mutation
  // rate 1/dims: on average one decision changes per child.
  const double m = 1.0 / std::max<size_t>(1, r.dims.size());
  pagmo::nsga2 algo(1u, 0.95, 10.0, m, 50.0, seed);
  while (true) population = algo.evolve(population);
}

}  // namespace

const char* searchAlgoName(SearchAlgo a) { return a == SearchAlgo::Nsga2 ? "nsga2" : "random"; }

SearchAlgo parseSearchAlgo(const std::string& name) {
  if (name == "nsga2" || name == "nsga-ii") return SearchAlgo::Nsga2;
  if (name == "random") return SearchAlgo::Random;
  throw Error("--algo: '" + name + "' is not a search algorithm (nsga2, random)");
}

std::string accuracyTask(const std::vector<std::string>& objectives) {
  for (const auto& o : objectives)
    if (o.rfind("acc:", 0) == 0) return o.substr(4);
  return "";
}

std::vector<std::string> parseObjectives(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = list.find(',', start);
    std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.rfind("acc:", 0) == 0) {
      const std::string task = item.substr(4);
      if (task.empty()) throw Error("--objectives: 'acc:' needs a task name (e.g. acc:piqa)");
      try {
        item = "acc:" + eval::findTask(task).name;
      } catch (const Error& e) {
        throw Error("--objectives: '" + item + "': " + e.what());
      }
      if (!accuracyTask(out).empty())
        throw Error("--objectives: one accuracy objective at most ('acc:" + accuracyTask(out) + "' and '" + item + "')");
    } else if (item != "ppl" && item != "bits" && item != "abits") {
      throw Error("--objectives: '" + item + "' is not an objective (ppl, bits, abits, acc:TASK)");
    }
    if (std::find(out.begin(), out.end(), item) != out.end()) throw Error("--objectives: '" + item + "' is listed twice");
    out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.size() < 2) throw Error("--objectives: a multi-objective search needs at least two (e.g. ppl,bits)");
  return out;
}

std::string textKey(const std::string& text) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016" PRIx64, runs::fnv1a64(text.data(), text.size()));
  return buf;
}

void computeFront(SearchResult& result) {
  std::vector<std::vector<double>> points;
  std::vector<size_t> index;
  for (size_t i = 0; i < result.trials.size(); ++i) {
    result.trials[i].onFront = false;
    if (!result.trials[i].feasible) continue;
    points.push_back(result.trials[i].objectives);
    index.push_back(i);
  }
  result.front.clear();
  if (points.empty()) return;
  for (size_t k : paretoFront(points)) {
    result.front.push_back(index[k]);
    result.trials[index[k]].onFront = true;
  }
}

SearchResult runSearch(const SearchSpace& space, const std::vector<model::SiteInfo>& sites, const SearchOptions& options,
                       TrialBackend& backend, jobs::Progress& progress) {
  if (options.trials < 1) throw Error("--trials: must be at least 1");
  int accObjectives = 0;
  for (const auto& o : options.objectives) {
    if (o.rfind("acc:", 0) == 0 && o.size() > 4) ++accObjectives;
    else if (o != "ppl" && o != "bits" && o != "abits")
      throw Error("objective '" + o + "' is not one of ppl, bits, abits, acc:TASK");
  }
  if (accObjectives > 1) throw Error("--objectives: one accuracy objective at most");
  if (options.constraints.minAcc > 0 && accObjectives == 0)
    throw Error("--min-acc / constraints.min_acc: needs an accuracy objective (e.g. --objectives acc:piqa,bits)");
  std::vector<std::string> names;
  for (const auto& s : sites) names.push_back(s.name);
  const SearchSpace::Resolved resolved = space.resolve(names);
  Driver driver(space, resolved, sites, options, backend, progress);
  try {
    if (options.algo == SearchAlgo::Random) runRandom(driver, resolved, options.seed);
    else runNsga2(driver, resolved, options);
  } catch (const StopSearch&) {
    // budget spent, nothing new left to propose, or deferred trials to wait for
  }
  SearchResult result = std::move(driver.result);
  if (result.deferred > 0) result.stopReason = "deferred";
  computeFront(result);
  return result;
}

}  // namespace qs::algo
