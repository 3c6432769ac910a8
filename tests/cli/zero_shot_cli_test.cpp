// End-to-end zero-shot tasks and stored-run evaluation on the bundled demo model
// (projects/demo/model: 1.1M parameters, its own BPE tokenizer), with task files the test writes
// itself, so nothing outside the repository is needed:
//  - `eval MODEL --tasks --limit` scores the first N docs; on a doc whose choices are identical the
//    harness's argmax (numpy: first index) picks choice 0, so acc and its stderr are known by hand;
//  - `quantize --eval-tasks` stores FP ("fp/<task>/<metric>") and quantized task metrics with n
//    and stderr, and its FP numbers equal `eval MODEL --tasks` (the same arithmetic);
//  - `eval RUN_ID -p PROJECT` rebuilds the run (OS+ folded, W8 grids, A8 ranges recalibrated) and
//    reproduces the quantized perplexity and task numbers the quantize run stored, exactly;
//  - a run without artifact, a run id without a project and an unknown task name are clear errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "tests/support/demo_project.h"
#include "tests/support/cli_runner.h"
#include "tests/support/test_paths.h"

namespace {

qs::test::CliResult qscope(const std::string& args) { return qs::test::runQscope(args); }
std::string quote(const std::string& s) { return qs::test::shellQuote(s); }

using qs::test::demoModel;
using qs::test::demoText;

// A PIQA-layout file: docs 1, 2 and 4 have gold 0, doc 3 gold 1, each with two identical
// choices (so the model's scores tie and the argmax is choice 0); doc 5 has distinct choices.
std::string writePiqa(const std::string& dir) {
  const std::string path = dir + "/my_piqa.jsonl";
  std::ofstream f(path);
  f << R"({"query": "Question: How do you open a door?\nAnswer:", "choices": [" turn the handle", " turn the handle"], "gold": 0})" << "\n"
    << R"({"query": "Question: How do you boil water?\nAnswer:", "choices": [" heat it in a pot", " heat it in a pot"], "gold": 0})" << "\n"
    << R"({"query": "Question: How do you dry a shirt?\nAnswer:", "choices": [" hang it up", " hang it up"], "gold": 1})" << "\n"
    << R"({"query": "Question: How do you read a letter?\nAnswer:", "choices": [" open it", " open it"], "gold": 0})" << "\n"
    << R"({"query": "Question: How do you walk home?\nAnswer:", "choices": [" on foot", " by the sea at night"], "gold": 0})" << "\n";
  return path;
}

std::string writeLambada(const std::string& dir) {
  const std::string path = dir + "/my_lambada.jsonl";
  std::ofstream f(path);
  f << R"({"context": "Anne walked to the house and spoke with her", "continuation": " sister"})" << "\n"
    << R"({"context": "It was a fine morning, and Captain Wentworth came to the", "continuation": " door"})" << "\n"
    << R"({"context": "She could not think of him without", "continuation": " pain"})" << "\n";
  return path;
}

// The demo project, written whole with absolute paths (any working directory works).
std::string makeProject(const std::string& dir) {
  const std::string proj = dir + "/p";
  std::filesystem::create_directories(proj);
  std::ofstream(proj + "/project.yaml") << "name: zs\nmodel: " << demoModel() << "\ndatasets:\n  - " << demoText() << "\n";
  return proj;
}

std::map<std::string, nlohmann::json> storedMetrics(const std::string& proj, int64_t id, std::string* config = nullptr) {
  auto show = qscope("runs show " + std::to_string(id) + " --project " + quote(proj) + " --json");
  EXPECT_EQ(show.code, 0) << show.err;
  std::map<std::string, nlohmann::json> out;
  if (show.code != 0) return out;
  const auto j = nlohmann::json::parse(show.out);
  for (const auto& m : j["metrics"]) out[m["key"].get<std::string>()] = m;
  if (config) *config = j["config_yaml"].get<std::string>();
  return out;
}

double metricValue(const nlohmann::json& tasks, const std::string& task, const std::string& metric) {
  for (const auto& t : tasks)
    if (t["task"] == task) return t["metrics"][metric]["value"].get<double>();
  ADD_FAILURE() << task << "/" << metric << " not in " << tasks;
  return NAN;
}

// Quantize settings small enough for seconds on the demo model (its text is the calibration set
// and the perplexity text; the overlap warning is expected).
std::string smallQuantize(const std::string& text) {
  return " --dataset " + quote(text) + " --eval " + quote(text) +
         " --nsamples 4 --seqlen 64 --eval-seqlen 64 --eval-limit-windows 6 --threads 1 --no-progress";
}

}  // namespace

TEST(ZeroShotCli, EvalTasksLimitScoresTheFirstDocs) {
  QS_REQUIRE_QSCOPE();
  const std::string dir = qs::test::tempDir("zs_eval");
  const std::string piqa = writePiqa(dir);
  const std::string proj = makeProject(dir);
  auto r = qscope("eval " + quote(demoModel()) + " --tasks piqa=" + quote(piqa) + " --limit 3 --threads 1 --json" +
                  " --no-progress --project " + quote(proj));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["tasks"].size(), 1u);
  const auto& t = j["tasks"][0];
  EXPECT_EQ(t["n"], 3);
  EXPECT_EQ(t["total_docs"], 5);
  EXPECT_EQ(t["requests"], 6);  // 2 choices x 3 docs
  // Hand-computed: ties pick choice 0, so docs 1-3 score 1, 1, 0: acc 2/3; the harness's
  // mean_stderr sqrt(sum((x - 2/3)^2) / 2) / sqrt(3) = 1/3.
  EXPECT_NEAR(t["metrics"]["acc"]["value"].get<double>(), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(t["metrics"]["acc"]["stderr"].get<double>(), 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(t["metrics"]["acc_norm"]["value"].get<double>(), 2.0 / 3.0, 1e-12);

  const auto stored = storedMetrics(proj, j["run_id"].get<int64_t>());
  ASSERT_TRUE(stored.count("piqa/acc")) << "eval --project stores piqa/acc";
  EXPECT_EQ(stored.at("piqa/acc")["n"], 3);
  EXPECT_NEAR(stored.at("piqa/acc")["value"].get<double>(), 2.0 / 3.0, 1e-12);

  auto table = qscope("eval " + quote(demoModel()) + " --tasks piqa=" + quote(piqa) + " --limit 4 --threads 1" +
                      " --no-progress");
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("|piqa"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("|0.7500|"), std::string::npos) << "acc 3/4 in the harness table:\n" << table.out;
  EXPECT_NE(table.out.find("first 4 of 5 examples"), std::string::npos) << table.out;
}

TEST(ZeroShotCli, QuantizeEvalTasksThenEvalRunReproducesIt) {
  QS_REQUIRE_QSCOPE();
  const std::string dir = qs::test::tempDir("zs_quant");
  const std::string piqa = writePiqa(dir), lambada = writeLambada(dir);
  const std::string proj = makeProject(dir);
  const std::string tasks = "piqa=" + piqa + ",lambada=" + lambada;

  // FP reference: plain eval of the model.
  auto fp = qscope("eval " + quote(demoModel()) + " --tasks " + quote(tasks) + " --threads 1 --json --no-progress");
  ASSERT_EQ(fp.code, 0) << fp.err;
  const auto fpTasks = nlohmann::json::parse(fp.out)["tasks"];

  // W8A8 (per-tensor static activations) after OS+, tasks before and after in the same job.
  auto q = qscope("quantize " + quote(proj) + " --method rtn --wbits 8 --a-bits 8 --a-quantizer per_tensor" +
                  " --migrate osplus --search-steps 8 --search-tokens 128 --eval-tasks " + quote(tasks) +
                  smallQuantize(demoText()) + " --json");
  ASSERT_EQ(q.code, 0) << q.err;
  const auto qj = nlohmann::json::parse(q.out);
  const int64_t id = qj["run_id"].get<int64_t>();
  ASSERT_EQ(qj["tasks"]["fp"].size(), 2u);
  ASSERT_EQ(qj["tasks"]["quantized"].size(), 2u);
  // The job's FP tasks are `eval MODEL --tasks` (same model, same requests, same arithmetic).
  EXPECT_EQ(metricValue(qj["tasks"]["fp"], "lambada_openai", "perplexity"),
            metricValue(fpTasks, "lambada_openai", "perplexity"));
  EXPECT_EQ(metricValue(qj["tasks"]["fp"], "piqa", "acc"), metricValue(fpTasks, "piqa", "acc"));
  const double qLambada = metricValue(qj["tasks"]["quantized"], "lambada_openai", "perplexity");
  EXPECT_TRUE(std::isfinite(qLambada));
  EXPECT_NE(qLambada, metricValue(fpTasks, "lambada_openai", "perplexity")) << "W8A8 changes the log-likelihoods";

  std::string config;
  const auto stored = storedMetrics(proj, id, &config);
  EXPECT_NE(config.find("eval_tasks: [piqa="), std::string::npos) << config;
  for (const char* key : {"fp/piqa/acc", "fp/piqa/acc_norm", "piqa/acc", "piqa/acc_norm", "fp/lambada_openai/acc",
                          "lambada_openai/perplexity", "fp/lambada_openai/perplexity"})
    ASSERT_TRUE(stored.count(key)) << key;
  EXPECT_EQ(stored.at("piqa/acc")["n"], 5);
  EXPECT_EQ(stored.at("lambada_openai/acc")["n"], 3);
  EXPECT_FALSE(stored.at("piqa/acc")["stderr"].is_null()) << "stderr stored with the metric";
  EXPECT_EQ(stored.at("piqa/acc")["protocol"], stored.at("fp/piqa/acc")["protocol"]);
  EXPECT_EQ(stored.at("lambada_openai/perplexity")["value"].get<double>(), qLambada);

  // The stored run evaluated again: its own perplexity protocol by default, exactly its number.
  const std::string pplKey = qj["perplexity"].begin().key();
  const double qPpl = qj["perplexity"][pplKey]["quantized"].get<double>();
  auto again = qscope("eval " + std::to_string(id) + " -p " + quote(proj) + " --threads 1 --json --no-progress");
  ASSERT_EQ(again.code, 0) << again.err;
  const auto aj = nlohmann::json::parse(again.out);
  EXPECT_EQ(aj["perplexity"].get<double>(), qPpl) << "rebuilt W8A8 + OS+ model = the quantize run's model";
  EXPECT_EQ(aj["source_run"], id);
  std::string evalConfig;
  storedMetrics(proj, aj["run_id"].get<int64_t>(), &evalConfig);
  EXPECT_NE(evalConfig.find("source_run: " + std::to_string(id)), std::string::npos) << evalConfig;

  auto againTasks = qscope("eval " + std::to_string(id) + " -p " + quote(proj) + " --tasks " + quote(tasks) +
                           " --threads 1 --json --no-progress");
  ASSERT_EQ(againTasks.code, 0) << againTasks.err;
  const auto at = nlohmann::json::parse(againTasks.out)["tasks"];
  EXPECT_EQ(metricValue(at, "lambada_openai", "perplexity"), qLambada);
  EXPECT_EQ(metricValue(at, "piqa", "acc"), metricValue(qj["tasks"]["quantized"], "piqa", "acc"));

  // The same weights without activation fake-quant (the fake-quant export, float32) score
  // differently: the A8 ranges eval RUN recalibrated are part of the number it reproduced.
  auto ex = qscope("export " + std::to_string(id) + " -p " + quote(proj) + " --format fake-fp16 --dtype float32 -o " +
                   quote(dir + "/w8") + " --no-progress");
  ASSERT_EQ(ex.code, 0) << ex.err;
  auto w8 = qscope("eval " + quote(dir + "/w8") + " --dataset " + quote(demoText()) +
                   " --seqlen 64 --limit-windows 6 --threads 1 --json --no-progress");
  ASSERT_EQ(w8.code, 0) << w8.err;
  EXPECT_NE(nlohmann::json::parse(w8.out)["perplexity"].get<double>(), qPpl);
}

TEST(ZeroShotCli, ClearErrors) {
  QS_REQUIRE_QSCOPE();
  const std::string dir = qs::test::tempDir("zs_err");
  const std::string proj = makeProject(dir);

  // A quantize-kind run without artifact: `qscope migrate --project` stores only perplexities.
  auto mig = qscope("migrate " + quote(demoModel()) + " --method smoothquant --a-bits 8 --w-bits 8 --samples 2" +
                    " --calib-seqlen 32 --calib " + quote(demoText()) + " --dataset " + quote(demoText()) +
                    " --seqlen 64 --limit-windows 2 --threads 1 --no-progress --json --project " + quote(proj));
  ASSERT_EQ(mig.code, 0) << mig.err;
  const int64_t migId = nlohmann::json::parse(mig.out)["run_id"].get<int64_t>();
  auto noArtifact = qscope("eval " + std::to_string(migId) + " -p " + quote(proj) + " --no-progress");
  EXPECT_EQ(noArtifact.code, 1);
  EXPECT_NE(noArtifact.err.find("run " + std::to_string(migId) + " has no quantized artifact"), std::string::npos)
      << noArtifact.err;

  auto missing = qscope("eval 999 -p " + quote(proj) + " --no-progress");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("999"), std::string::npos) << missing.err;

  auto noProject = qscope("eval 3 --no-progress");
  EXPECT_EQ(noProject.code, 1);
  EXPECT_NE(noProject.err.find("-p PROJECT"), std::string::npos) << noProject.err;

  auto badFlag = qscope("quantize " + quote(proj) + " --eval-tasks piqa,nosuchtask" + smallQuantize(demoText()));
  EXPECT_EQ(badFlag.code, 1);
  EXPECT_NE(badFlag.err.find("--eval-tasks"), std::string::npos) << badFlag.err;
  EXPECT_NE(badFlag.err.find("nosuchtask"), std::string::npos) << badFlag.err;

  const std::string cfg = dir + "/bad.yaml";
  std::ofstream(cfg) << "quantize:\n  method: rtn\n  eval_tasks: [piqa, hellaswagg]\n";
  auto badKey = qscope("quantize " + quote(proj) + " --config " + quote(cfg));
  EXPECT_EQ(badKey.code, 1);
  EXPECT_NE(badKey.err.find("bad.yaml"), std::string::npos) << badKey.err;
  EXPECT_NE(badKey.err.find("quantize.eval_tasks"), std::string::npos) << badKey.err;
  EXPECT_NE(badKey.err.find("hellaswagg"), std::string::npos) << badKey.err;
}
