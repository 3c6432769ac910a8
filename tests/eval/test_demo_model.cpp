// The bundled demo project (projects/demo, in the repository, so nothing is skipped): the model
// loads with its own tokenizer and its perplexity on the project's text sample equals the number
// recorded when it was made (README "Demo model" and docs/BENCHMARKS.md: `qscope eval
// projects/demo/model --dataset projects/demo/sample.txt --seqlen 256` gave 108.3442 over 35
// windows of 9,003 tokens, on one CPU thread).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/config/project_config.h"
#include "core/eval/perplexity.h"
#include "core/io/safetensors.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"
#include "core/util/fs.h"

namespace {

const std::string kDemo = std::string(QS_SOURCE_DIR) + "/projects/demo";

// The recorded numbers (the command above, on the machine that trained the model).
constexpr int64_t kSampleTokens = 9003;
constexpr double kSamplePerplexity = 108.344231;

TEST(DemoModel, PerplexityOnItsSampleEqualsTheRecordedNumber) {
  const std::string modelDir = kDemo + "/model";
  auto tokenizer = qs::io::loadTokenizer(modelDir);
  EXPECT_EQ(tokenizer->vocabSize(), 2048);
  const std::vector<int32_t> tokens = tokenizer->encode(qs::fs::readText(kDemo + "/sample.txt"), true);
  EXPECT_EQ(static_cast<int64_t>(tokens.size()), kSampleTokens);
  auto model = qs::model::openModel(modelDir);
  const auto r = qs::eval::evaluatePerplexity(*model, tokens, qs::eval::PerplexityOptions().setSeqlen(256));
  EXPECT_EQ(r.windows, kSampleTokens / 256);
  // Same weights, same windows: only float summation order (BLAS threads) can differ.
  EXPECT_NEAR(r.perplexity, kSamplePerplexity, 1e-4 * kSamplePerplexity);
}

TEST(DemoModel, IsSmallFloat16AndTheProjectPointsAtIt) {
  auto file = qs::io::SafetensorsFile::open(kDemo + "/model/model.safetensors");
  for (const auto& t : file->tensors()) EXPECT_EQ(t.dtype, qs::io::DType::F16) << t.name;
  EXPECT_LT(std::filesystem::file_size(kDemo + "/model/model.safetensors"), 4u << 20);
  const auto cfg = qs::config::loadProjectConfig(kDemo + "/project.yaml");
  EXPECT_EQ(cfg.model, "model");
  ASSERT_EQ(cfg.datasets.size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(kDemo + "/" + cfg.datasets[0]));
}

}  // namespace
