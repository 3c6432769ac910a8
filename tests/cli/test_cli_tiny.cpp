// qscope end to end on a tiny OPT the test writes itself (no ../shared needed): a byte-level
// tokenizer with no merges makes token counts exact (one token per UTF-8 byte), so the
// perplexity protocol's window arithmetic can be checked to the token; the same model split
// into two safetensors shards must give the same numbers.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "core/io/weight_source.h"
#include "core/util/fs.h"
#include "tests/support/cli_runner.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

qs::test::CliResult run(const std::string& args) { return qs::test::runQscope(args); }

// A folder with a 2-layer OPT (vocab 256) and a byte-level BPE tokenizer without merges.
std::string tinyModel() {
  static std::string dir;
  if (!dir.empty()) return dir;
  dir = qs::test::tempDir("tinyopt");
  qs::test::writeTinyOpt(dir, qs::test::TinyModelOptions().setVocab(256));
  qs::test::writeByteTokenizer(dir);
  return dir;
}

std::string textFile() {
  static std::string path;
  if (!path.empty()) return path;
  path = qs::test::tempDir("tinytext") + "/text.txt";
  std::string text;
  for (int i = 0; i < 40; ++i) text += "The quick brown fox jumps over the lazy dog. ";  // 45 bytes each
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST(CliTiny, InfoCountsSitesAndBlocks) {
  auto r = run("info --json " + tinyModel());
  ASSERT_EQ(r.code, 0) << r.err;
  auto m = nlohmann::json::parse(r.out)["model"];
  EXPECT_EQ(m["model_type"], "opt");
  EXPECT_EQ(m["layers"], 2);
  EXPECT_EQ(m["blocks"].size(), 2u);
  EXPECT_EQ(m["sites"].size(), 12u);  // q k v out_proj fc1 fc2 per block
}

TEST(CliTiny, EvalWindowArithmeticIsExact) {
  auto r = run("eval " + tinyModel() + " --dataset " + textFile() + " --seqlen 64 --json --no-progress");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["dataset_tokens"], 40 * 45);          // one token per byte
  EXPECT_EQ(j["total_windows"], (40 * 45) / 64);    // remainder dropped
  EXPECT_EQ(j["windows"], (40 * 45) / 64);
  EXPECT_EQ(j["tokens_evaluated"], ((40 * 45) / 64) * 64);
  double ppl = j["perplexity"];
  EXPECT_TRUE(std::isfinite(ppl));
  EXPECT_GT(ppl, 1.0);
  EXPECT_NEAR(std::log(ppl), j["mean_loss"].get<double>(), 1e-9);
}

TEST(CliTiny, ShardedCheckpointGivesTheSamePerplexity) {
  auto sharded = qs::test::tempDir("tinysharded");
  {
    auto src = qs::io::openWeights(tinyModel());
    std::vector<std::pair<std::string, at::Tensor>> a, b;
    nlohmann::json index;
    int i = 0;
    for (auto& m : src->tensors()) {
      bool first = i++ % 2 == 0;
      (first ? a : b).emplace_back(m.name, src->load(m.name));
      index["weight_map"][m.name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    }
    qs::io::writeSafetensors(sharded + "/model-00001-of-00002.safetensors", a);
    qs::io::writeSafetensors(sharded + "/model-00002-of-00002.safetensors", b);
    std::ofstream(sharded + "/model.safetensors.index.json") << index.dump(1);
    for (const char* f : {"config.json", "vocab.json", "merges.txt"})
      qs::fs::writeAtomic(sharded + "/" + f, qs::fs::readText(tinyModel() + "/" + f));
  }
  std::string args = " --dataset " + textFile() + " --seqlen 32 --json --no-progress";
  auto one = run("eval " + tinyModel() + args);
  auto two = run("eval " + sharded + args);
  ASSERT_EQ(one.code, 0) << one.err;
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(one.out)["perplexity"].get<double>(),
                   nlohmann::json::parse(two.out)["perplexity"].get<double>());
  auto info = run("info --json " + sharded);
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(nlohmann::json::parse(info.out)["model"]["format"].get<std::string>().find("2 shards"), std::string::npos)
      << info.out;
}

TEST(CliTiny, GenerateProducesTheRequestedTokens) {
  auto r = run("generate " + tinyModel() + " --prompt 'The quick' --max-new 7 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt_ids"].size(), 9u);  // 9 bytes, no BOS for a GPT-2 style tokenizer
  EXPECT_LE(j["ids"].size(), 7u);
  EXPECT_GE(j["ids"].size(), 1u);
}

TEST(CliTiny, MissingTokenizerAndUnknownArchitectureAreNamed) {
  auto noTok = qs::test::tempDir("notok");
  qs::test::writeTinyOpt(noTok, qs::test::TinyModelOptions().setVocab(256));
  auto r = run("eval " + noTok + " --dataset " + textFile() + " --no-progress");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(noTok), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokenizer.json"), std::string::npos) << r.err;

  auto weird = qs::test::tempDir("weird");
  qs::test::writeTinyOpt(weird, qs::test::TinyModelOptions().setVocab(256));
  std::string cfg = qs::fs::readText(weird + "/config.json");
  cfg.replace(cfg.find("\"opt\""), 5, "\"mamba\"");
  qs::fs::writeAtomic(weird + "/config.json", cfg);
  for (const char* f : {"vocab.json", "merges.txt"})
    qs::fs::writeAtomic(weird + "/" + f, qs::fs::readText(tinyModel() + "/" + f));
  auto g = run("generate " + weird + " --max-new 1");
  EXPECT_EQ(g.code, 1) << g.err;
  EXPECT_NE(g.err.find("mamba"), std::string::npos) << g.err;
  EXPECT_NE(g.err.find("config.json"), std::string::npos) << g.err;
}
