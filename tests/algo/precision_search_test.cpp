// Mixed-precision search: the space file, its resolution and decoding, the Pareto front on
// hand-made points, NSGA-II and random search with a synthetic perplexity (reproducible with a
// seed, never outside the space, within the budget and the bits constraint), and resume from a
// real run store.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/algo/pareto.h"
#include "core/algo/precision_search.h"
#include "core/algo/search_space.h"
#include "core/algo/search_store.h"
#include "core/model/model.h"
#include "core/quant/format_density.h"
#include "core/runs/run_store.h"
#include "core/util/fs.h"
#include "tests/support/expect_error.h"
#include "tests/support/test_paths.h"

namespace qs::algo {
namespace {

using qs::test::expectError;

TEST(Pareto, HandMadePoints) {
  // Minimise both. (2,3) twice: equal points do not dominate each other. (3,4) is dominated by
  // (2,3); (5,5) by everything; the NaN point is never on the front even though 0 bits is best.
  const std::vector<std::vector<double>> pts = {{1, 5}, {2, 3}, {3, 4}, {4, 1}, {2, 3}, {5, 5}, {NAN, 0}, {4, 2}};
  EXPECT_EQ(paretoFront(pts), (std::vector<size_t>{0, 1, 3, 4}));
  EXPECT_TRUE(dominates({1, 1}, {1, 2}));
  EXPECT_FALSE(dominates({1, 2}, {1, 2}));
  EXPECT_FALSE(dominates({0, 3}, {1, 2}));
  // Three objectives: (1,1,9) and (9,1,1) trade off; (2,2,9) is dominated by (1,1,9).
  EXPECT_EQ(paretoFront({{1, 1, 9}, {9, 1, 1}, {2, 2, 9}}), (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(paretoFront({}).empty());
  expectError([] { paretoFront({{1, 2}, {1}}); }, "objectives");
}

// Two blocks of LLaMA-like sites with hand-picked shapes.
std::vector<model::SiteInfo> sites() {
  std::vector<model::SiteInfo> out;
  for (int b = 0; b < 2; ++b) {
    auto add = [&](const std::string& n, int64_t o, int64_t i) {
      model::SiteInfo s;
      s.name = "layers." + std::to_string(b) + "." + n;
      s.block = b;
      s.outFeatures = o;
      s.inFeatures = i;
      out.push_back(s);
    };
    add("self_attn.q_proj", 64, 64);
    add("self_attn.o_proj", 64, 64);
    add("mlp.up_proj", 128, 64);
    add("mlp.down_proj", 64, 128);
  }
  return out;
}

std::vector<std::string> names() {
  std::vector<std::string> n;
  for (const auto& s : sites()) n.push_back(s.name);
  return n;
}

constexpr const char* kSpace = R"Y(
search:
  space:
    - name: "layers.*.self_attn.*"
      weight: ["bfp(m=4,e=8,block=16)", "bfp(m=6,e=8,block=16)", "bfp(m=8,e=8,block=16)"]
      input: same
    - name: "layers.*.mlp.*"
      per_site: true
      weight: {format: bfp, mantissa_width: [3, 4, 5, 6, 7, 8], block_size: 16}
      input: ["none", "e4m3"]
  eval: {dataset: wikitext2, seqlen: 64, limit_windows: 2, batch_size: 1}
)Y";

TEST(SearchSpace, ParsesResolvesAndDecodes) {
  const SearchSpace s = parseSearchSpace(kSpace, "space.yaml");
  ASSERT_EQ(s.entries.size(), 2u);
  EXPECT_EQ(s.entries[1].weight.size(), 6u);  // the grid m = 3..8
  EXPECT_TRUE(s.entries[0].inputSameAsWeight);
  EXPECT_EQ(s.eval.seqlen, 64);
  const auto r = s.resolve(names());
  // attention: one shared weight choice; mlp: per site (4 sites) weight + input
  ASSERT_EQ(r.dims.size(), 1u + 4 * 2);
  EXPECT_DOUBLE_EQ(r.size, 3.0 * std::pow(6.0 * 2.0, 4));
  std::vector<int> c = {1, 0, 1, 5, 0, 2, 1, 3, 0};
  const auto lp = s.decode(r, c);
  EXPECT_EQ(lp.precisionFor("layers.1.self_attn.o_proj").weight.toString(), "bfp(m=6,e=8,block=16,axis=-1)");
  EXPECT_EQ(lp.precisionFor("layers.1.self_attn.o_proj").input.toString(), "bfp(m=6,e=8,block=16,axis=-1)");
  EXPECT_EQ(lp.precisionFor("layers.0.mlp.up_proj").weight.toString(), "bfp(m=3,e=8,block=16,axis=-1)");
  EXPECT_EQ(lp.precisionFor("layers.0.mlp.up_proj").input.toString(), "minifloat(e=4,m=3,bias=7,specials=fn)");
  EXPECT_EQ(lp.precisionFor("layers.0.mlp.down_proj").weight.toString(), "bfp(m=8,e=8,block=16,axis=-1)");
  EXPECT_FALSE(lp.precisionFor("layers.0.mlp.down_proj").input.enabled());
  c[3] = 6;  // beyond the 6 choices
  expectError([&] { s.decode(r, c); }, "is outside 0..5");
  expectError([&] { s.decode(r, {0}); }, "a choice vector of 1 values for a space of 9 dimensions");
  // The canonical text reads back to the same space.
  const SearchSpace back = parseSearchSpace(s.toYaml(), "back.yaml");
  EXPECT_EQ(back.toYaml(), s.toYaml());
}

TEST(SearchSpace, BadFilesNameFileAndKey) {
  expectError([] { parseSearchSpace("search: {space: []}", "s.yaml"); }, "s.yaml: key 'search.space': expected a non-empty list");
  expectError([] { parseSearchSpace("search: {space: [{name: a, weight: bfp, wieght: 1}]}", "s.yaml"); },
              "s.yaml: key 'search.space[0].wieght': unknown key");
  expectError([] { parseSearchSpace("search: {space: [{name: a}]}", "s.yaml"); }, "key 'search.space[0].weight': missing");
  expectError([] { parseSearchSpace("search: {space: [{name: a, weight: {format: bfp, m: [3, x]}}]}", "s.yaml"); },
              "key 'search.space[0].weight.m[1]': expected an integer");
  expectError([] { parseSearchSpace("search: {space: [{name: a, weight: {format: bfp, m: [30, 40]}}]}", "s.yaml"); },
              "key 'search.space[0].weight': no valid format");
  expectError([] { parseSearchSpace("search: {space: [{name: a, weight: [bfp(m=1)]}]}", "s.yaml"); },
              "key 'search.space[0].weight[0]'");
  expectError([] { parseSearchSpace("search: {space: [{name: a, weight: bfp}], eval: {seqln: 3}}", "s.yaml"); },
              "key 'search.eval.seqln': unknown key");
  expectError([] { parseSearchSpace("search: {space: [{name: a, weight: bfp}], constraints: {max_bits: -1}}", "s.yaml"); },
              "key 'search.constraints.max_bits'");
  const SearchSpace s = parseSearchSpace("search: {space: [{name: 'layers.*.attn.*', weight: bfp}]}", "s.yaml");
  expectError([&] { s.resolve(names(), "s.yaml"); }, "s.yaml: space entry 0 ('layers.*.attn.*') matches no site");
}

// A synthetic model: ppl grows as the formats get coarser (mantissa bits of each site's weight
// and input), so ppl and bits trade off.
double syntheticPpl(const quant::LayerPrecision& lp) {
  double ppl = 5;
  for (const auto& s : sites()) {
    const auto p = lp.precisionFor(s.name);
    const double wb = quant::formatDensity(p.weight).bitsPerElement;
    ppl += 40.0 * std::pow(2.0, -wb) * static_cast<double>(s.outFeatures * s.inFeatures) / 4096.0;
    if (p.input.enabled()) ppl += 0.05;
  }
  return ppl;
}

class FakeBackend : public TrialBackend {
 public:
  std::string identity() const override { return "fake"; }
  std::optional<StoredTrial> find(const std::string&) override { return std::nullopt; }
  StoredTrial evaluate(const TrialRequest& r, jobs::Progress&) override {
    requests.push_back(r.choice);
    configs.push_back(*r.config);
    return {syntheticPpl(*r.config), 0};
  }
  std::vector<std::vector<int>> requests;
  std::vector<quant::LayerPrecision> configs;
};

SearchOptions opts(SearchAlgo a, int trials, uint64_t seed) {
  SearchOptions o;
  o.algo = a;
  o.trials = trials;
  o.seed = seed;
  return o;
}

void expectInsideSpace(const SearchSpace& s, const FakeBackend& b) {
  const auto r = s.resolve(names());
  std::set<std::vector<int>> distinct;
  for (size_t k = 0; k < b.requests.size(); ++k) {
    const auto& c = b.requests[k];
    ASSERT_EQ(c.size(), r.dims.size());
    for (size_t i = 0; i < c.size(); ++i) {
      EXPECT_GE(c[i], 0);
      EXPECT_LT(c[i], r.dims[i].choices);
    }
    EXPECT_TRUE(distinct.insert(c).second) << "a configuration was evaluated twice";
    // Every site's formats are among its entry's choices.
    for (const auto& site : names()) {
      const auto p = b.configs[k].precisionFor(site);
      const auto& e = s.entries[site.find("mlp") != std::string::npos ? 1 : 0];
      bool listed = false;
      for (const auto& f : e.weight) listed = listed || f == p.weight;
      EXPECT_TRUE(listed) << site << " got " << p.weight.toString();
    }
  }
}

TEST(PrecisionSearch, Nsga2IsReproducibleStaysInsideTheSpaceAndSpendsTheBudget) {
  const SearchSpace s = parseSearchSpace(kSpace, "space.yaml");
  FakeBackend a, b, c;
  const auto ra = runSearch(s, sites(), opts(SearchAlgo::Nsga2, 40, 7), a);
  const auto rb = runSearch(s, sites(), opts(SearchAlgo::Nsga2, 40, 7), b);
  const auto rc = runSearch(s, sites(), opts(SearchAlgo::Nsga2, 40, 8), c);
  EXPECT_EQ(ra.trials.size(), 40u);
  EXPECT_EQ(ra.stopReason, "budget");
  EXPECT_EQ(a.requests, b.requests);  // same seed, same proposals
  EXPECT_NE(a.requests, c.requests);  // another seed, another search
  expectInsideSpace(s, a);
  expectInsideSpace(s, c);
  // The front: recomputed by brute force over the trials.
  std::set<size_t> front(ra.front.begin(), ra.front.end());
  for (size_t i = 0; i < ra.trials.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < ra.trials.size(); ++j) {
      const auto &p = ra.trials[j].objectives, &q = ra.trials[i].objectives;
      dominated = dominated || (p[0] <= q[0] && p[1] <= q[1] && (p[0] < q[0] || p[1] < q[1]));
    }
    EXPECT_EQ(front.count(i) == 1, !dominated) << "trial " << i;
    EXPECT_EQ(ra.trials[i].onFront, !dominated);
    EXPECT_DOUBLE_EQ(ra.trials[i].objectives[0], syntheticPpl(a.configs[i]));
  }
}

TEST(PrecisionSearch, Nsga2BeatsItsOwnFirstGenerationOnTheSyntheticProblem) {
  // Not a timing claim: after 10 generations of 8, the front's best ppl at <= 6 bits is no worse
  // than the best of the random initial population (NSGA-II keeps elites, so this cannot regress).
  const SearchSpace s = parseSearchSpace(kSpace, "space.yaml");
  FakeBackend b;
  const auto r = runSearch(s, sites(), opts(SearchAlgo::Nsga2, 80, 3), b);
  auto best = [&](size_t upto) {
    double v = INFINITY;
    for (size_t i = 0; i < upto && i < r.trials.size(); ++i)
      if (r.trials[i].weightBits <= 6.0) v = std::min(v, r.trials[i].ppl);
    return v;
  };
  EXPECT_LE(best(r.trials.size()), best(8));
}

TEST(PrecisionSearch, RandomIsReproducibleAndRespectsMaxBits) {
  SearchSpace s = parseSearchSpace(kSpace, "space.yaml");
  s.constraints.maxBits = 6.0;
  FakeBackend a, b;
  auto o = opts(SearchAlgo::Random, 25, 11);
  o.constraints = s.constraints;
  const auto ra = runSearch(s, sites(), o, a);
  runSearch(s, sites(), o, b);
  EXPECT_EQ(a.requests, b.requests);
  ASSERT_EQ(ra.trials.size(), 25u);
  EXPECT_GT(ra.skippedOverBits, 0);  // the space has configs above 6 bits; none was evaluated
  for (const auto& t : ra.trials) EXPECT_LE(t.weightBits, 6.0 + 1e-12);
  expectInsideSpace(s, a);
}

TEST(PrecisionSearch, PplConstraintsKeepInfeasibleTrialsOffTheFront) {
  const SearchSpace s = parseSearchSpace(kSpace, "space.yaml");
  // Random proposals do not depend on the objective values: the unconstrained run makes the same
  // trials, and its median perplexity splits them.
  FakeBackend free, b;
  auto o = opts(SearchAlgo::Random, 30, 5);
  const auto unconstrained = runSearch(s, sites(), o, free);
  std::vector<double> ppls;
  for (const auto& t : unconstrained.trials) ppls.push_back(t.ppl);
  std::sort(ppls.begin(), ppls.end());
  const double limit = ppls[ppls.size() / 2];
  o.constraints.maxPpl = limit;
  const auto r = runSearch(s, sites(), o, b);
  EXPECT_EQ(b.requests, free.requests);
  int infeasible = 0;
  for (const auto& t : r.trials) {
    EXPECT_EQ(t.feasible, t.ppl <= limit);
    if (!t.feasible) {
      ++infeasible;
      EXPECT_FALSE(t.onFront);
    }
  }
  EXPECT_GT(infeasible, 0);
  EXPECT_FALSE(r.front.empty());
}

TEST(PrecisionSearch, SmallSpaceStopsWhenExhausted) {
  const SearchSpace s = parseSearchSpace(
      "search: {space: [{name: 'layers.*.*.*', weight: ['bfp(m=4)', 'bfp(m=8)']}]}", "s.yaml");
  FakeBackend b;
  auto o = opts(SearchAlgo::Nsga2, 10, 1);
  o.maxStalls = 100;
  const auto r = runSearch(s, sites(), o, b);
  EXPECT_EQ(r.trials.size(), 2u);  // the space has two configurations
  EXPECT_EQ(r.stopReason, "space exhausted");
}

class CancelAfter : public jobs::Progress {
 public:
  explicit CancelAfter(int n) : n_(n) {}
  void update(double, const std::string& msg) override {
    if (msg.rfind("trial ", 0) == 0) ++done_;
  }
  bool cancelRequested() const override { return done_ >= n_; }

 private:
  int n_, done_ = 0;
};

TEST(PrecisionSearch, ResumeReusesTrialsInTheRunStore) {
  const std::string dir = qs::test::tempDir("search_resume");
  const std::string db = dir + "/runs.sqlite";
  const SearchSpace s = parseSearchSpace(kSpace, "space.yaml");
  SearchRunInfo info;
  info.searchId = "s-test";
  info.modelPath = "synthetic";
  info.dataset = "synthetic";
  info.evalYaml = "eval: {dataset: synthetic}\n";
  info.algo = "nsga2";
  int evaluations = 0;
  auto fn = [&](const quant::LayerPrecision& lp, jobs::Progress&) {
    ++evaluations;
    return TrialEval{syntheticPpl(lp), "synthetic", 1};
  };
  // Interrupted after 5 trials: the 5 finished ones are stored, the search throws Cancelled.
  {
    StoreTrialBackend backend(db, info, "model+eval", fn);
    CancelAfter cancel(5);
    EXPECT_THROW(runSearch(s, sites(), opts(SearchAlgo::Nsga2, 12, 4), backend, cancel), Cancelled);
  }
  EXPECT_EQ(evaluations, 5);
  // The same command again: the first 5 come from the store, 7 more are evaluated.
  StoreTrialBackend backend(db, info, "model+eval", fn);
  EXPECT_EQ(backend.storedTrials(), 5);
  const auto r = runSearch(s, sites(), opts(SearchAlgo::Nsga2, 12, 4), backend);
  EXPECT_EQ(evaluations, 12);
  ASSERT_EQ(r.trials.size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(r.trials[static_cast<size_t>(i)].reused, i < 5) << i;
  // The uninterrupted search makes the same trials (resume does not change the search).
  FakeBackend fresh;
  const auto ref = runSearch(s, sites(), opts(SearchAlgo::Nsga2, 12, 4), fresh);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(r.trials[i].choice, ref.trials[i].choice) << i;
    EXPECT_DOUBLE_EQ(r.trials[i].ppl, ref.trials[i].ppl) << i;
  }
  // A different identity (other model or eval settings) gives other keys and reuses nothing.
  {
    StoreTrialBackend other(db, info, "other model", fn);
    const auto o = runSearch(s, sites(), opts(SearchAlgo::Nsga2, 3, 4), other);
    EXPECT_EQ(evaluations, 15);
    for (const auto& t : o.trials) EXPECT_FALSE(t.reused);
    EXPECT_NE(o.trials[0].key, r.trials[0].key);
    EXPECT_EQ(o.trials[0].choice, r.trials[0].choice);
  }
  // Every trial is a finished search run; the summary run holds the front.
  const int64_t summary = recordSearchSummary(db, dir + "/exports", info, opts(SearchAlgo::Nsga2, 12, 4), s.toYaml(), r);
  runs::RunStore store(db);
  runs::RunFilter f;
  f.kind = "search";
  f.status = "finished";
  EXPECT_EQ(store.listRuns(f).size(), 12u + 3u + 1u);
  const auto rec = store.loadRun(summary, false);
  ASSERT_EQ(rec.artifacts.size(), 1u);
  const std::string json = fs::readText(store.artifactPath(rec.artifacts[0]));
  EXPECT_NE(json.find("\"search_id\": \"s-test\""), std::string::npos);
  EXPECT_NE(rec.info.configYaml.find("role: pareto"), std::string::npos);
}

}  // namespace
}  // namespace qs::algo
