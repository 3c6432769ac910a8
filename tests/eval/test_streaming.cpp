// Streaming block by block (core/model/layerwise.h) against the whole-model path: the same
// batches through the same blocks, so perplexity, task log-likelihoods and outlier metrics are
// bit-identical; the memory budget picks the path; and the peak tensor allocation of a streamed
// evaluation is about one block, measured with a counting allocator, not the model.
// References: the whole-model path (itself checked against Hugging Face's logits and loss in
// test_perplexity.cpp / golden_test.cpp) and, streamed, the golden fixtures' HF loss.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/eval/loglikelihood.h"
#include "core/eval/outlier_metrics.h"
#include "core/eval/perplexity.h"
#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "tests/support/counting_allocator.h"
#include "tests/support/streaming_checks.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs::eval {
namespace {

std::string tinyLlama() {
  static std::string d = test::writeTinyLlama(
      test::tempDir("stream_llama"),
      test::TinyModelOptions().setLayers(4).setSeed(21));
  return d;
}

std::string tinyOpt() {
  static std::string d = test::writeTinyOpt(test::tempDir("stream_opt"), test::TinyModelOptions().setLayers(3).setSeed(22));
  return d;
}

std::vector<int32_t> randomTokens(size_t n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return t;
}

model::ExecOptions whole() { return model::ExecOptions().withMode(model::ExecMode::Whole); }
model::ExecOptions stream(int64_t budget = 0) {
  return model::ExecOptions().withMode(model::ExecMode::Streaming).withMaxMemory(budget);
}

std::unique_ptr<model::Model> open(const std::string& dir, const model::ExecOptions& exec) {
  auto m = model::openModel(dir);
  m->setExecOptions(exec);
  return m;
}

TEST(Streaming, PerplexityEqualsTheWholeModelBitForBit) {
  const auto tokens = randomTokens(7 * 32 + 5, 256, 1);
  for (const std::string& dir : {tinyLlama(), tinyOpt()}) {
    for (int batch : {1, 3}) {
      const auto opts = PerplexityOptions().setSeqlen(32).setBatchSize(batch);
      auto w = open(dir, whole());
      const PerplexityResult a = evaluatePerplexity(*w, tokens, opts);
      auto s = open(dir, stream());
      const PerplexityResult b = evaluatePerplexity(*s, tokens, opts);
      // A budget of one byte leaves one batch per pass: every pass re-reads the weights.
      auto g = open(dir, stream(1));
      const PerplexityResult c = evaluatePerplexity(*g, tokens, opts);
      EXPECT_FALSE(a.streamed);
      EXPECT_TRUE(b.streamed);
      EXPECT_TRUE(c.streamed);
      EXPECT_EQ(a.windows, 7);
      EXPECT_EQ(a.meanLoss, b.meanLoss) << dir << " batch " << batch;
      EXPECT_EQ(a.meanLoss, c.meanLoss) << dir << " batch " << batch;
      EXPECT_NE(c.execution.find(batch == 1 ? "7 passes" : "3 passes"), std::string::npos) << c.execution;
    }
  }
}

TEST(Streaming, AutoStreamsOnlyWhenTheModelDoesNotFit) {
  const auto tokens = randomTokens(4 * 32, 256, 2);
  auto roomy = open(tinyLlama(), model::ExecOptions().withMaxMemory(int64_t{1} << 34));
  const PerplexityResult a = evaluatePerplexity(*roomy, tokens, PerplexityOptions().setSeqlen(32));
  EXPECT_FALSE(a.streamed) << a.execution;
  EXPECT_NE(a.execution.find("whole model"), std::string::npos) << a.execution;

  auto m = model::openModel(tinyLlama());
  const int64_t weights = m->footprint().totalBytes();
  ASSERT_GT(weights, 0);
  auto tight = open(tinyLlama(), model::ExecOptions().withMaxMemory(weights / 2));
  const PerplexityResult b = evaluatePerplexity(*tight, tokens, PerplexityOptions().setSeqlen(32));
  EXPECT_TRUE(b.streamed) << b.execution;
  EXPECT_NE(b.execution.find("--max-memory"), std::string::npos) << b.execution;
  EXPECT_EQ(a.meanLoss, b.meanLoss);
}

TEST(Streaming, FootprintAddsUpToTheCheckpoint) {
  auto m = model::openModel(tinyLlama());
  const model::Model::Footprint f = m->footprint();
  ASSERT_EQ(f.blockBytes.size(), 4u);
  // LLaMA block: q, k, v, o, gate, up, down + two RMSNorm gains, all float32 here.
  const int64_t D = 64, kv = 2 * 16, I = 128;
  const int64_t block = (D * D + 2 * kv * D + D * D + 3 * I * D + 2 * D) * 4;
  for (int64_t b : f.blockBytes) EXPECT_EQ(b, block);
  EXPECT_EQ(f.embeddingBytes, 256 * D * 4);
  EXPECT_EQ(f.headBytes, D * 4 + 256 * D * 4) << "final norm + the tied lm_head (the embedding table)";
  EXPECT_EQ(f.sharedBytes, 256 * D * 4);
  EXPECT_EQ(f.totalBytes(), 4 * block + 256 * D * 4 + D * 4) << "the tied table once";
}

TEST(Streaming, TaskLoglikelihoodsEqualTheWholeModel) {
  std::mt19937 rng(3);
  std::vector<TokenizedRequest> requests;
  for (int i = 0; i < 23; ++i) {
    TokenizedRequest r;
    for (int k = 0; k < 3 + static_cast<int>(rng() % 20); ++k) r.context.push_back(static_cast<int32_t>(rng() % 256));
    for (int k = 0; k < 1 + static_cast<int>(rng() % 5); ++k) r.continuation.push_back(static_cast<int32_t>(rng() % 256));
    requests.push_back(r);
  }
  const auto opts = LoglikelihoodOptions().withBatchSize(4);
  for (const std::string& dir : {tinyLlama(), tinyOpt()}) {
    auto w = open(dir, whole());
    auto s = open(dir, stream(1));
    LoglikelihoodStats sa, sb;
    const auto a = computeLoglikelihoods(*w, requests, opts, jobs::Progress::none(), &sa);
    const auto b = computeLoglikelihoods(*s, requests, opts, jobs::Progress::none(), &sb);
    EXPECT_FALSE(sa.streamed);
    EXPECT_TRUE(sb.streamed);
    EXPECT_EQ(sa.forwards, sb.forwards);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].logprob, b[i].logprob) << dir << " request " << i;
      EXPECT_EQ(a[i].isGreedy, b[i].isGreedy) << dir << " request " << i;
    }
  }
}

TEST(Streaming, OutlierMetricsEqualTheWholeModel) {
  const auto tokens = randomTokens(5 * 32, 256, 4);
  const auto opts = PerplexityOptions().setSeqlen(32).setBatchSize(2);
  auto w = open(tinyOpt(), whole());
  auto s = open(tinyOpt(), stream(1));
  const OutlierMetrics a = evaluateOutlierMetrics(*w, tokens, opts);
  const OutlierMetrics b = evaluateOutlierMetrics(*s, tokens, opts);
  EXPECT_TRUE(b.perplexity.streamed);
  EXPECT_EQ(a.perplexity.meanLoss, b.perplexity.meanLoss);
  const auto va = a.namedValues(), vb = b.namedValues();
  ASSERT_EQ(va.size(), vb.size());
  for (size_t i = 0; i < va.size(); ++i) {
    EXPECT_EQ(va[i].first, vb[i].first);
    if (std::isnan(va[i].second)) {
      EXPECT_TRUE(std::isnan(vb[i].second)) << va[i].first;
    } else {
      EXPECT_EQ(va[i].second, vb[i].second) << va[i].first;
    }
  }
}

TEST(Streaming, GoldenFamiliesStreamedGiveHuggingFacesLoss) {
  QS_REQUIRE_SHARED();
  for (const char* family : {"opt", "opt_350m_like", "llama", "mistral_sliding_window", "bloom", "falcon",
                             "falcon_new_arch", "gpt2", "gpt_neox"}) {
    const auto j = nlohmann::json::parse(fs::readText(test::sharedPath(std::string("golden/") + family + "/reference.json")));
    std::vector<int32_t> tokens;
    int rowLength = 0;
    for (auto& row : j["input_ids"]) {
      rowLength = static_cast<int>(row.size());
      for (auto& id : row) tokens.push_back(id.get<int32_t>());
    }
    auto s = open(test::sharedPath(std::string("golden/") + family), stream());
    const PerplexityResult r = evaluatePerplexity(*s, tokens, PerplexityOptions().setSeqlen(rowLength));
    EXPECT_TRUE(r.streamed);
    // HF transformers v4.36.2's mean loss over both rows (reference.json), as the whole path.
    EXPECT_NEAR(r.meanLoss, j["loss"].get<double>(), 1e-4) << family;
  }
}

TEST(StreamingMemory, PeakAllocationIsAboutOneBlockNotTheModel) {
  // 8 blocks of 0.8 MiB: the whole path holds them all, the streaming path one at a time. The
  // counting allocator sees every tensor the evaluation allocates (weights copied out of the
  // mmapped checkpoint included).
  auto& counter = test::CountingCpuAllocator::install();
  const std::string dir = test::writeTinyLlama(
      test::tempDir("stream_mem"),
      test::TinyModelOptions().setLayers(8).setHidden(128).setHeads(4, 4).setFfn(512).setVocab(256).setSeed(23));
  const auto tokens = randomTokens(4 * 64, 256, 5);
  const auto opts = PerplexityOptions().setSeqlen(64).setBatchSize(1);

  auto measure = [&](const model::ExecOptions& exec, PerplexityResult& r) {
    auto m = open(dir, exec);
    counter.resetPeak();
    const int64_t before = counter.current();
    r = evaluatePerplexity(*m, tokens, opts);
    return counter.peak() - before;
  };
  PerplexityResult a, b;
  const int64_t wholePeak = measure(whole(), a);
  const int64_t streamPeak = measure(stream(), b);
  auto m = model::openModel(dir);
  EXPECT_EQ(a.meanLoss, b.meanLoss);
  test::expectStreamedPeakAboutOneBlock(*m, stream(), 4, 64, wholePeak, streamPeak);
}

}  // namespace
}  // namespace qs::eval
