// Task accuracy as a mixed-precision search objective (acc:TASK, maximised) and the min-accuracy
// constraint: parsing and the errors that name the flag or key; a synthetic accuracy (seeded
// reproducibility, -acc as the minimised objective, min_acc keeping trials off the front, the
// front checked by brute force); and a real search on a tiny LLaMA with a PIQA-layout task file
// written here, whose stored <task>/acc (n, stderr) must equal eval::evaluateTask run directly on
// the same emulated config (the reference), and whose rerun reuses every trial.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/algo/precision_eval.h"
#include "core/algo/precision_search.h"
#include "core/algo/search_space.h"
#include "core/algo/search_store.h"
#include "core/eval/perplexity.h"
#include "core/eval/task_metrics.h"
#include "core/eval/tasks.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"
#include "core/quant/format_density.h"
#include "core/quant/format_yaml.h"
#include "core/runs/run_store.h"
#include "tests/support/expect_error.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs::algo {
namespace {

using qs::test::expectError;

TEST(SearchAccuracy, ObjectivesAndConstraintErrorsNameTheFlagOrKey) {
  EXPECT_EQ(parseObjectives("acc:piqa,bits"), (std::vector<std::string>{"acc:piqa", "bits"}));
  // An alias resolves to the harness name, which is what the trial metric is called.
  EXPECT_EQ(parseObjectives("bits,acc:lambada"), (std::vector<std::string>{"bits", "acc:lambada_openai"}));
  EXPECT_EQ(accuracyTask(parseObjectives("ppl,acc:boolq,bits")), "boolq");
  EXPECT_EQ(accuracyTask(parseObjectives("ppl,bits")), "");
  expectError([] { parseObjectives("acc:piqaa,bits"); }, "--objectives: 'acc:piqaa'");
  expectError([] { parseObjectives("acc:,bits"); }, "--objectives: 'acc:' needs a task name");
  expectError([] { parseObjectives("acc:piqa,acc:boolq"); }, "--objectives: one accuracy objective at most");
  expectError([] { parseObjectives("accuracy,bits"); }, "'accuracy' is not an objective (ppl, bits, abits, acc:TASK)");

  const char* base = "search: {space: [{name: 'layers.*.*.*', weight: ['bfp(m=4)', 'bfp(m=8)']}]";
  const SearchSpace s = parseSearchSpace(std::string(base) +
                                             ", eval: {tasks_limit: 12}, constraints: {min_acc: 0.55}}",
                                         "s.yaml");
  EXPECT_EQ(s.eval.tasksLimit, 12);
  EXPECT_DOUBLE_EQ(s.constraints.minAcc, 0.55);
  EXPECT_EQ(parseSearchSpace(s.toYaml(), "back.yaml").toYaml(), s.toYaml());
  expectError([&] { parseSearchSpace(std::string(base) + ", constraints: {min_acc: 1.5}}", "s.yaml"); },
              "s.yaml: key 'search.constraints.min_acc': must be an accuracy between 0 and 1");
  expectError([&] { parseSearchSpace(std::string(base) + ", eval: {tasks_limit: -1}}", "s.yaml"); },
              "s.yaml: key 'search.eval.tasks_limit'");

  // A min-acc constraint without an accuracy objective is refused before any trial.
  class Never : public TrialBackend {
   public:
    std::string identity() const override { return "never"; }
    std::optional<StoredTrial> find(const std::string&) override { return std::nullopt; }
    StoredTrial evaluate(const TrialRequest&, jobs::Progress&) override {
      ADD_FAILURE() << "evaluated";
      return {};
    }
  } never;
  SearchOptions o;
  o.constraints.minAcc = 0.5;
  std::vector<model::SiteInfo> sites(1);
  sites[0].name = "layers.0.mlp.up_proj";
  sites[0].outFeatures = sites[0].inFeatures = 16;
  expectError([&] { runSearch(s, sites, o, never); }, "--min-acc / constraints.min_acc: needs an accuracy objective");
}

// Eight sites with hand-picked shapes; a synthetic accuracy that falls as the weight formats
// get coarser, so accuracy and bits trade off.
std::vector<model::SiteInfo> sites() {
  std::vector<model::SiteInfo> out;
  for (int b = 0; b < 2; ++b)
    for (const char* n : {"self_attn.q_proj", "self_attn.o_proj", "mlp.up_proj", "mlp.down_proj"}) {
      model::SiteInfo s;
      s.name = "layers." + std::to_string(b) + "." + n;
      s.block = b;
      s.outFeatures = 64;
      s.inFeatures = std::string(n) == "mlp.down_proj" ? 128 : 64;
      out.push_back(s);
    }
  return out;
}

constexpr const char* kSpace = R"Y(
search:
  space:
    - name: "layers.*.self_attn.*"
      weight: {format: bfp, mantissa_width: [3, 4, 6, 8], block_size: 16}
    - name: "layers.*.mlp.*"
      per_site: true
      weight: {format: bfp, mantissa_width: [3, 4, 5, 6, 7, 8], block_size: 16}
)Y";

double syntheticAcc(const quant::LayerPrecision& lp) {
  double acc = 0.8;
  for (const auto& s : sites()) acc -= 0.4 * std::pow(2.0, -quant::formatDensity(lp.precisionFor(s.name).weight).bitsPerElement);
  return acc;
}

class AccBackend : public TrialBackend {
 public:
  std::string identity() const override { return "acc"; }
  std::optional<StoredTrial> find(const std::string&) override { return std::nullopt; }
  StoredTrial evaluate(const TrialRequest& r, jobs::Progress&) override {
    requests.push_back(r.choice);
    StoredTrial t;
    t.ppl = 10;
    t.acc = syntheticAcc(*r.config);
    t.accStderr = 0.01;
    t.accN = 100;
    return t;
  }
  std::vector<std::vector<int>> requests;
};

SearchOptions accOptions(SearchAlgo algo, int trials, uint64_t seed) {
  SearchOptions o;
  o.algo = algo;
  o.trials = trials;
  o.seed = seed;
  o.objectives = parseObjectives("acc:piqa,bits");
  return o;
}

TEST(SearchAccuracy, AccuracyIsMaximisedSeededAndMinAccIsRespected) {
  const SearchSpace s = parseSearchSpace(kSpace, "space.yaml");
  AccBackend a, b, c;
  const auto ra = runSearch(s, sites(), accOptions(SearchAlgo::Nsga2, 32, 5), a);
  runSearch(s, sites(), accOptions(SearchAlgo::Nsga2, 32, 5), b);
  runSearch(s, sites(), accOptions(SearchAlgo::Nsga2, 32, 6), c);
  ASSERT_EQ(ra.trials.size(), 32u);
  EXPECT_EQ(a.requests, b.requests);
  EXPECT_NE(a.requests, c.requests);
  for (const auto& t : ra.trials) {
    EXPECT_DOUBLE_EQ(t.objectives[0], -t.acc);  // maximised: the optimiser minimises -acc
    EXPECT_DOUBLE_EQ(t.objectives[1], t.weightBits);
    EXPECT_EQ(t.accN, 100);
  }
  // The front by brute force: no other trial has acc >= and bits <= with one strictly better.
  auto dominated = [](const Trial& p, const Trial& q) {
    return p.acc >= q.acc && p.weightBits <= q.weightBits && (p.acc > q.acc || p.weightBits < q.weightBits);
  };
  for (const auto& q : ra.trials) {
    bool dom = false;
    for (const auto& p : ra.trials) dom = dom || dominated(p, q);
    EXPECT_EQ(q.onFront, !dom) << "trial " << q.index;
  }

  // min_acc: random proposals do not depend on the values, so the constrained search makes the
  // same trials as the free one; those under the median accuracy are infeasible, off the front.
  AccBackend free, bound;
  auto o = accOptions(SearchAlgo::Random, 30, 9);
  const auto rf = runSearch(s, sites(), o, free);
  std::vector<double> accs;
  for (const auto& t : rf.trials) accs.push_back(t.acc);
  std::sort(accs.begin(), accs.end());
  o.constraints.minAcc = accs[accs.size() / 2];
  const auto rb = runSearch(s, sites(), o, bound);
  EXPECT_EQ(free.requests, bound.requests);
  int infeasible = 0;
  for (const auto& t : rb.trials) {
    EXPECT_EQ(t.feasible, t.acc >= o.constraints.minAcc) << t.index;
    if (!t.feasible) {
      ++infeasible;
      EXPECT_FALSE(t.onFront);
    }
  }
  EXPECT_GT(infeasible, 0);
  ASSERT_FALSE(rb.front.empty());
  for (size_t i : rb.front) EXPECT_GE(rb.trials[i].acc, o.constraints.minAcc);
}

// Bytes as token ids (the tiny model's vocabulary is 256); no BOS.
class ByteTokenizer : public io::Tokenizer {
 public:
  std::vector<int32_t> encode(const std::string& text, bool) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(const std::vector<int32_t>&, bool) const override { return ""; }
  std::string tokenText(int32_t) const override { return ""; }
  int32_t vocabSize() const override { return 256; }
  std::optional<int32_t> bosId() const override { return std::nullopt; }
  std::optional<int32_t> eosId() const override { return std::nullopt; }
  std::string kind() const override { return "bytes"; }
};

TEST(SearchAccuracy, TinyModelTrialsStoreTheTaskAccuracyEvaluateTaskGives) {
  c10::InferenceMode guard;
  const std::string dir = qs::test::tempDir("search_acc");
  std::filesystem::create_directories(dir + "/model");
  const std::string modelDir = qs::test::writeTinyLlama(dir + "/model");
  // A PIQA-layout file (llm-foundry's {"query", "choices", "gold"}) of 10 two-choice examples.
  std::filesystem::create_directories(dir + "/tasks");
  {
    std::ofstream f(dir + "/tasks/piqa.jsonl");
    const char* goals[] = {"open a jar", "dry a shirt", "cool soup", "light a room", "cut paper",
                           "fix a tire", "warm hands", "wake up early", "clean a pan", "plant a seed"};
    for (int i = 0; i < 10; ++i)
      f << R"({"query": "Question: How do I )" << goals[i] << R"(?\n", "choices": ["use a tool )" << i
        << R"(", "wait for day )" << (i * 7 % 10) << R"("], "gold": )" << (i % 2) << "}\n";
  }
  const eval::Task task = eval::loadTask({"piqa", ""}, eval::TaskLoadOptions().withTaskDir(dir + "/tasks").withLimit(8));
  ASSERT_EQ(task.docs.size(), 8u);
  auto model = model::openModel(modelDir);
  const ByteTokenizer tok;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 200; ++i) tokens.push_back((i * 37 + 11) % 256);
  eval::PerplexityOptions ppl;
  ppl.seqlen = 32;
  ppl.limitWindows = 2;
  ppl.batchSize = 2;

  SearchRunInfo info;
  info.searchId = "s-acc";
  info.modelPath = modelDir;
  info.dataset = "synthetic";
  info.evalYaml = "eval: {dataset: synthetic, tasks: piqa, limit: 8}\n";
  info.algo = "random";
  info.accTask = "piqa";
  PrecisionEmulator emulator(*model);
  int evaluations = 0;
  auto fn = [&](const quant::LayerPrecision& lp, jobs::Progress&) {
    ++evaluations;
    emulator.apply(lp);
    const auto r = eval::evaluatePerplexity(*model, tokens, ppl);
    const auto tr = eval::evaluateTask(*model, tok, task);
    TrialEval e{r.perplexity, "synthetic", r.windows};
    e.acc = tr.metric("acc")->value;
    e.accStderr = tr.metric("acc")->stdError;
    e.accN = tr.n;
    e.accProtocol = eval::taskProtocol(tr.task);
    return e;
  };
  const SearchSpace s = parseSearchSpace(R"Y(
search:
  space:
    - name: "layers.*.mlp.*"
      weight: {format: bfp, mantissa_width: [2, 3, 8], block_size: 16}
    - name: "layers.*.self_attn.*"
      weight: {format: bfp, mantissa_width: [2, 8], block_size: 16}
)Y",
                                         "space.yaml");
  SearchOptions o;
  o.algo = SearchAlgo::Random;
  o.trials = 4;
  o.seed = 3;
  o.objectives = parseObjectives("acc:piqa,bits");
  SearchResult r;
  {
    StoreTrialBackend backend(dir + "/runs.sqlite", info, "tiny+piqa8", fn);
    r = runSearch(s, model->sites(), o, backend);
  }
  ASSERT_EQ(r.trials.size(), 4u);
  EXPECT_EQ(evaluations, 4);
  runs::RunStore store(dir + "/runs.sqlite");
  for (const auto& t : r.trials) {
    // Reference: the task scored directly on a fresh copy of the model under the trial's config.
    auto fresh = model::openModel(modelDir);
    PrecisionEmulator emu(*fresh);
    emu.apply(quant::parsePrecisionConfig(t.config, "trial.yaml"));
    const auto ref = eval::evaluateTask(*fresh, tok, task);
    EXPECT_DOUBLE_EQ(t.acc, ref.metric("acc")->value) << t.index;
    EXPECT_EQ(t.accN, 8);
    const auto rec = store.loadRun(t.runId, false);
    bool found = false;
    for (const auto& m : rec.metrics)
      if (m.key == "piqa/acc") {
        found = true;
        EXPECT_DOUBLE_EQ(m.value, ref.metric("acc")->value);
        EXPECT_DOUBLE_EQ(m.stdError, ref.metric("acc")->stdError);
        EXPECT_EQ(m.n, 8);
        EXPECT_EQ(m.protocol, eval::taskProtocol("piqa"));
      }
    EXPECT_TRUE(found) << "run " << t.runId << " has no piqa/acc";
  }
  // The same search again reuses every stored trial with its accuracy.
  StoreTrialBackend again(dir + "/runs.sqlite", info, "tiny+piqa8", fn);
  const auto r2 = runSearch(s, model->sites(), o, again);
  EXPECT_EQ(evaluations, 4);
  ASSERT_EQ(r2.trials.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(r2.trials[i].reused);
    EXPECT_DOUBLE_EQ(r2.trials[i].acc, r.trials[i].acc);
    EXPECT_DOUBLE_EQ(r2.trials[i].accStderr, r.trials[i].accStderr);
  }
}

}  // namespace
}  // namespace qs::algo
