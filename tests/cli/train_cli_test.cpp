// End-to-end `qscope train-tokenizer` and `qscope train` on a text the test writes (no ../shared
// needed): the trained tokenizer folder drives a tiny training run stored in a project, whose
// validation outlier metrics `qscope runs show` lists; bad input is a one-line error naming it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "tests/support/cli_runner.h"
#include "tests/support/test_paths.h"

namespace {

qs::test::CliResult qscope(const std::string& args) { return qs::test::runQscope(args); }
std::string quote(const std::string& s) { return qs::test::shellQuote(s); }

std::string textFile(const std::string& dir) {
  const std::string path = dir + "/text.txt";
  std::ofstream out(path);
  const char* words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away"};
  uint32_t s = 5;
  for (int i = 0; i < 6000; ++i) {
    s = s * 1103515245u + 12345u;
    out << words[(s >> 16) % 11] << ((i % 12 == 11) ? ".\n" : " ");
  }
  return path;
}

TEST(TrainCli, TokenizerThenTrainStoresOutlierMetrics) {
  QS_REQUIRE_QSCOPE();
  const std::string dir = qs::test::tempDir("train_cli");
  const std::string text = textFile(dir);
  auto tok = qscope("train-tokenizer --text " + quote(text) + " --vocab-size 270 -o " + quote(dir + "/tok") +
                    " --json --no-progress");
  ASSERT_EQ(tok.code, 0) << tok.err;
  auto tj = nlohmann::json::parse(tok.out);
  EXPECT_EQ(tj["vocab_size"], 270);
  EXPECT_EQ(tj["bos_id"], 0);

  const std::string proj = dir + "/proj";
  ASSERT_EQ(qscope("project init " + quote(proj) + " --model " + quote(std::string(QS_SOURCE_DIR) +
                                                                        "/projects/demo/model")).code, 0);
  auto tr = qscope("train --text " + quote(text) + " --tokenizer " + quote(dir + "/tok") + " --out " +
                   quote(dir + "/model") + " --hidden 16 --layers 2 --heads 2 --ffn 32 --seqlen 32 --batch 2" +
                   " --steps 6 --warmup 1 --val-every 3 --checkpoint-every 3 --threads 1 --outlier-metrics" +
                   " --project " + quote(proj) + " --json");
  ASSERT_EQ(tr.code, 0) << tr.err;
  auto j = nlohmann::json::parse(tr.out);
  ASSERT_EQ(j["validation"].size(), 2u);
  EXPECT_GT(j["validation"][1]["max_inf_norm"].get<double>(), 0);
  EXPECT_TRUE(std::filesystem::exists(dir + "/model/tokenizer.json"));

  auto show = qscope("runs show " + std::to_string(j["run_id"].get<int64_t>()) + " --project " + quote(proj) + " --json");
  ASSERT_EQ(show.code, 0) << show.err;
  const std::string shown = show.out;
  for (const char* key : {"\"ppl.val\"", "\"outlier.max_inf_norm\"", "\"outlier.kurtosis_avg\"",
                          "\"outlier.layer1.ffn_inf_norm\"", "\"step3.outlier.max_inf_norm\"",
                          "\"outlier.attn_max_inf_norm\"", "\"outlier.layer0.attn_kurtosis\"",
                          "\"outlier.ffn_kurtosis_avg\""})
    EXPECT_NE(shown.find(key), std::string::npos) << key;
}

TEST(TrainCli, BadInputIsAOneLineErrorNamingIt) {
  QS_REQUIRE_QSCOPE();
  const std::string dir = qs::test::tempDir("train_cli_bad");
  auto missing = qscope("train-tokenizer --text " + quote(dir + "/nope.txt") + " -o " + quote(dir + "/tok"));
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("nope.txt"), std::string::npos) << missing.err;
  auto small = qscope("train-tokenizer --text " + quote(textFile(dir)) + " --vocab-size 100 -o " + quote(dir + "/tok"));
  EXPECT_EQ(small.code, 1);
  EXPECT_NE(small.err.find("--vocab-size"), std::string::npos) << small.err;
  auto arch = qscope("train --text " + quote(dir + "/text.txt") + " --tokenizer " + quote(dir + "/tok") + " --out " +
                     quote(dir + "/m") + " --arch gpt9");
  EXPECT_EQ(arch.code, 1);
}

// --dataset resolves names through --data-dir (<dir>/text/<file>, the evaluation datasets' search
// path) and says which file it read; unknown names, missing files and --device cuda on a CPU-only
// LibTorch are one-line errors naming the flag.
TEST(TrainCli, NamedDatasetThroughDataDirAndItsErrors) {
  QS_REQUIRE_QSCOPE();
  const std::string dir = qs::test::tempDir("train_cli_dataset");
  std::filesystem::create_directories(dir + "/data/text");
  std::filesystem::rename(textFile(dir), dir + "/data/text/brown.txt");
  auto tok = qscope("train-tokenizer --text " + quote(dir + "/data/text/brown.txt") + " --vocab-size 270 -o " +
                    quote(dir + "/tok") + " --json --no-progress");
  ASSERT_EQ(tok.code, 0) << tok.err;
  const std::string base = "train --tokenizer " + quote(dir + "/tok") + " --out " + quote(dir + "/model") +
                           " --hidden 16 --layers 1 --heads 2 --ffn 32 --seqlen 32 --batch 2 --steps 2 --warmup 1" +
                           " --threads 1 --data-dir " + quote(dir + "/data");
  auto tr = qscope(base + " --dataset brown --dtype bfloat16 --json");
  ASSERT_EQ(tr.code, 0) << tr.err;
  auto j = nlohmann::json::parse(tr.out);
  ASSERT_EQ(j["text"].size(), 1u);
  EXPECT_EQ(j["text"][0]["name"], "brown");
  EXPECT_EQ(j["text"][0]["path"], dir + "/data/text/brown.txt");
  EXPECT_EQ(j["dtype"], "bfloat16");
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["steps"], 2);

  auto unknown = qscope(base + " --dataset wikitext103");
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("--dataset"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("wikitext103"), std::string::npos) << unknown.err;
  auto missing = qscope(base + " --dataset ptb");
  if (missing.code != 0) {  // ptb.valid.txt may still be found through ../shared/data; that is fine
    EXPECT_NE(missing.err.find("--dataset"), std::string::npos) << missing.err;
    EXPECT_NE(missing.err.find("--data-dir"), std::string::npos) << missing.err;
  }
  auto none = qscope("train --tokenizer " + quote(dir + "/tok") + " --out " + quote(dir + "/m3"));
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("--dataset"), std::string::npos) << none.err;
  auto cuda = qscope(base + " --dataset brown --device cuda");
  if (cuda.code != 0) {  // a CUDA LibTorch trains instead
    EXPECT_NE(cuda.err.find("--device cpu"), std::string::npos) << cuda.err;
  }
}

}  // namespace
