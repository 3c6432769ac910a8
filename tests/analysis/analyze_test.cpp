// analyzeModel against statistics computed by capturing every site's input with a hook and the
// block outputs by hand, on the golden LLaMA (../shared) and on generated tiny OPT/LLaMA models;
// padding removal, site selection, cancellation and the run-store conversion.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>

#include "core/analysis/analyze.h"
#include "core/analysis/run_stats.h"
#include "core/analysis/stat_names.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

using namespace qs::analysis;

namespace {

CalibrationSet randomSamples(int64_t N, int64_t L, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  CalibrationSet s;
  s.samples = N;
  s.seqlen = L;
  for (int64_t i = 0; i < N * L; ++i) s.ids.push_back(static_cast<int32_t>(uniformIndex(rng, static_cast<uint64_t>(vocab))));
  return s;
}

at::Tensor vec(const std::vector<float>& v) { return at::tensor(at::ArrayRef<float>(v)).to(at::kDouble); }

// Every site's input and every block output, materialised by a hook over a whole forward of
// each batch (the same batches as the pass, so GEMM blocking, and thus every float, is equal).
std::map<std::string, at::Tensor> capture(qs::model::Model& m, const CalibrationSet& s, int64_t batchSize) {
  c10::InferenceMode guard;
  std::map<std::string, std::vector<at::Tensor>> parts;
  m.setInputHook([&](const std::string& site, const at::Tensor& x) { parts[site].push_back(x.clone()); });
  at::Tensor ids = at::from_blob(const_cast<int32_t*>(s.ids.data()), {s.samples, s.seqlen}, at::kInt).to(at::kLong);
  at::Tensor mask;
  if (!s.mask.empty())
    mask = at::from_blob(const_cast<uint8_t*>(s.mask.data()), {s.samples, s.seqlen}, at::kByte).to(at::kLong);
  for (int64_t b0 = 0; b0 < s.samples; b0 += batchSize) {
    int64_t nb = std::min(batchSize, s.samples - b0);
    auto st = m.prepare(ids.narrow(0, b0, nb), mask.defined() ? mask.narrow(0, b0, nb) : at::Tensor());
    at::Tensor h = m.embed(st);
    for (int i = 0; i < m.numBlocks(); ++i) {
      h = m.runBlock(i, h, st);
      parts["layers." + std::to_string(i) + ".block_out"].push_back(h.clone());
    }
  }
  m.setInputHook(nullptr);
  std::map<std::string, at::Tensor> out;
  for (auto& [k, v] : parts) out[k] = at::cat(v, 0);
  return out;
}

void expectMatches(const SiteResult& r, const at::Tensor& x3, const at::Tensor& keep = {}) {
  SCOPED_TRACE(r.fullName + " (" + r.kind + ")");
  const int64_t C = x3.size(-1);
  at::Tensor x = x3.reshape({-1, C}).to(at::kDouble);
  if (keep.defined()) x = x.index_select(0, keep.reshape({-1}).nonzero().squeeze(1));
  ASSERT_EQ(r.channels, C);
  ASSERT_EQ(r.count, x.size(0));
  at::Tensor mean = x.mean(0), var = x.var(0, false);
  at::Tensor kurt = (x - mean).pow(4).mean(0) / var.pow(2);
  EXPECT_TRUE(at::allclose(vec(r.channel.mean), mean, 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(vec(r.channel.var), var, 1e-4, 1e-6));
  EXPECT_TRUE(at::allclose(vec(r.channel.kurtosis), kurt, 1e-3, 1e-4));
  EXPECT_TRUE(at::equal(vec(r.channel.min), std::get<0>(x.min(0))));
  EXPECT_TRUE(at::equal(vec(r.channel.max), std::get<0>(x.max(0))));
  EXPECT_NEAR(r.summary.maxAbs, x.abs().max().item<double>(), 1e-5 * (1 + r.summary.maxAbs));
  EXPECT_NEAR(r.summary.kurtosisMax, kurt.max().item<double>(), 1e-3 * kurt.max().item<double>());
  // Top token: the largest |x| of the whole site.
  ASSERT_FALSE(r.topTokens.empty());
  EXPECT_NEAR(r.topTokens[0].value, x.abs().max().item<double>(), 1e-5 * (1 + r.summary.maxAbs));
  at::Tensor tokAbs = x3.abs().amax(-1);
  if (keep.defined()) tokAbs = tokAbs * keep.to(tokAbs.scalar_type());
  const auto& t = r.topTokens[0];
  EXPECT_FLOAT_EQ(tokAbs[t.sample][t.position].item<float>(), t.value);
}

void checkAgainstCapture(const std::string& modelPath, int64_t vocab, int batchSize) {
  auto model = qs::model::openModel(modelPath);
  CalibrationSet s = randomSamples(5, 17, vocab, 11);
  auto reference = capture(*model, s, batchSize);
  int blocksSeen = 0;
  auto opts = AnalysisOptions().withBatchSize(batchSize).withTopTokens(4).withOnBlock(
      [&](const std::vector<SiteResult>& block) {
        ASSERT_FALSE(block.empty());
        EXPECT_EQ(block.front().layer, blocksSeen++);
      });
  AnalysisResult r = analyzeModel(*model, s, opts);
  EXPECT_EQ(blocksSeen, model->numBlocks());
  EXPECT_EQ(r.tokens, 5 * 17);
  size_t inputs = 0, weights = 0, residuals = 0;
  for (const auto& site : r.sites) {
    if (site.kind == names::kWeight) {
      ++weights;
      at::Tensor w = model->siteWeight(site.fullName).to(at::kDouble);
      EXPECT_TRUE(at::allclose(vec(site.channel.absmax), std::get<0>(w.abs().max(0)), 1e-6, 1e-6));
      EXPECT_TRUE(at::allclose(vec(site.outChannel.absmax), std::get<0>(w.abs().max(1)), 1e-6, 1e-6));
      continue;
    }
    site.kind == names::kInput ? ++inputs : ++residuals;
    ASSERT_TRUE(reference.count(site.fullName)) << site.fullName;
    expectMatches(site, reference.at(site.fullName));
  }
  EXPECT_EQ(inputs, model->sites().size());
  EXPECT_EQ(weights, model->sites().size());
  EXPECT_EQ(residuals, static_cast<size_t>(model->numBlocks()));
}

}  // namespace

TEST(Analyze, SiteMatchesGlobsOnFullLocalAndLastNames) {
  EXPECT_TRUE(siteMatches("*", "layers.0.self_attn.q_proj"));
  EXPECT_TRUE(siteMatches("q_proj", "layers.3.self_attn.q_proj"));
  EXPECT_TRUE(siteMatches("mlp.*", "layers.3.mlp.down_proj"));
  EXPECT_FALSE(siteMatches("mlp.*", "layers.3.self_attn.o_proj"));
  EXPECT_TRUE(siteMatches("layers.1.*", "layers.1.block_out"));
  EXPECT_FALSE(siteMatches("layers.1.*", "layers.11.block_out"));
  EXPECT_TRUE(siteMatches("fc2, block_out", "layers.0.block_out"));
  EXPECT_TRUE(siteMatches("?_proj", "layers.0.self_attn.k_proj"));
  EXPECT_FALSE(siteMatches("", "layers.0.fc1"));
}

TEST(Analyze, GoldenLlamaEqualsHookCapture) {
  QS_REQUIRE_SHARED();
  checkAgainstCapture(qs::test::sharedPath("golden/llama"), 256, 2);
}

TEST(Analyze, TinyOptAndLlamaEqualHookCapture) {
  std::string opt = qs::test::writeTinyOpt(qs::test::tempDir("ana-opt"));
  checkAgainstCapture(opt, 256, 3);
  std::string llama = qs::test::writeTinyLlama(qs::test::tempDir("ana-llama"));
  checkAgainstCapture(llama, 256, 1);
}

TEST(Analyze, SharedInputsAreComputedOnceAndCopied) {
  std::string llama = qs::test::writeTinyLlama(qs::test::tempDir("ana-shared"));
  auto model = qs::model::openModel(llama);
  AnalysisResult r = analyzeModel(*model, randomSamples(2, 8, 256, 1), AnalysisOptions().withWeights(false));
  std::map<std::string, const SiteResult*> by;
  for (const auto& s : r.sites) by[s.fullName] = &s;
  ASSERT_TRUE(by.count("layers.0.self_attn.k_proj"));
  EXPECT_EQ(by["layers.0.self_attn.k_proj"]->sharedWith, "q_proj");
  EXPECT_EQ(by["layers.0.self_attn.k_proj"]->site, "k_proj");
  EXPECT_EQ(by["layers.0.self_attn.q_proj"]->sharedWith, "");
  EXPECT_EQ(by["layers.0.mlp.up_proj"]->sharedWith, "gate_proj");
  EXPECT_EQ(by["layers.0.self_attn.k_proj"]->channel.max, by["layers.0.self_attn.q_proj"]->channel.max);
}

TEST(Analyze, PaddingIsRemovedFromStatistics) {
  std::string llama = qs::test::writeTinyLlama(qs::test::tempDir("ana-pad"));
  auto model = qs::model::openModel(llama);
  CalibrationSet s = randomSamples(3, 10, 256, 2);
  s.mask.assign(s.ids.size(), 1);
  for (int t = 6; t < 10; ++t) s.mask[static_cast<size_t>(10 + t)] = 0;  // sample 1 has 4 pads
  auto reference = capture(*model, s, 2);
  at::Tensor keep = at::from_blob(s.mask.data(), {3, 10}, at::kByte).clone();
  AnalysisResult r = analyzeModel(*model, s, AnalysisOptions().withWeights(false).withBatchSize(2));
  EXPECT_EQ(r.tokens, 26);
  for (const auto& site : r.sites) expectMatches(site, reference.at(site.fullName), keep);
  s.removePadding = false;
  AnalysisResult kept = analyzeModel(*model, s, AnalysisOptions().withWeights(false).withSites("block_out"));
  EXPECT_EQ(kept.tokens, 30);
}

TEST(Analyze, SiteSelectionAndErrors) {
  std::string opt = qs::test::writeTinyOpt(qs::test::tempDir("ana-sel"));
  auto model = qs::model::openModel(opt);
  CalibrationSet s = randomSamples(2, 8, 256, 3);
  AnalysisResult r = analyzeModel(*model, s, AnalysisOptions().withSites("fc1,layers.1.block_out"));
  std::vector<std::string> got;
  for (const auto& x : r.sites) got.push_back(x.fullName + ":" + x.kind);
  EXPECT_EQ(got, (std::vector<std::string>{"layers.0.fc1:input", "layers.0.fc1:weight", "layers.1.fc1:input",
                                           "layers.1.fc1:weight", "layers.1.block_out:residual"}));
  EXPECT_THROW(analyzeModel(*model, s, AnalysisOptions().withSites("nope")), qs::Error);
  CalibrationSet tooLong = randomSamples(1, 200, 256, 4);  // the tiny OPT has 128 positions
  EXPECT_THROW(analyzeModel(*model, tooLong), qs::Error);
}

// Attention matmul operands: the pass's statistics equal those of the operands captured with
// the model's matmul hook over the same batches; off by default.
TEST(Analyze, MatmulOperandsEqualHookCapture) {
  std::string llama = qs::test::writeTinyLlama(qs::test::tempDir("ana-mm"));
  auto model = qs::model::openModel(llama);
  CalibrationSet s = randomSamples(3, 11, 256, 8);
  std::map<std::string, std::vector<at::Tensor>> parts;
  {
    c10::InferenceMode guard;
    model->setMatmulHook([&](const std::string& site, const at::Tensor& x) { parts[site].push_back(x.clone()); });
    at::Tensor ids = at::from_blob(s.ids.data(), {3, 11}, at::kInt).to(at::kLong);
    for (int64_t b0 = 0; b0 < 3; b0 += 2) model->forward(ids.narrow(0, b0, std::min<int64_t>(2, 3 - b0)));
    model->setMatmulHook(nullptr);
  }
  AnalysisResult off = analyzeModel(*model, s, AnalysisOptions().withWeights(false).withBatchSize(2));
  for (const auto& site : off.sites) EXPECT_NE(site.kind, names::kMatmul);
  AnalysisResult r = analyzeModel(*model, s, AnalysisOptions().withWeights(false).withBatchSize(2).withMatmulInputs(true)
                                                 .withTopTokens(3).withSites("*_matmul"));
  ASSERT_EQ(r.sites.size(), model->matmulSites().size());
  for (const auto& site : r.sites) {
    EXPECT_EQ(site.kind, names::kMatmul);
    EXPECT_EQ(site.site, site.fullName.substr(site.fullName.rfind('.') + 1));
    expectMatches(site, at::cat(parts.at(site.fullName), 0));
  }
  // The hook is cleared afterwards: a forward does not call into the finished pass.
  model->forward(at::zeros({1, 4}, at::kLong));
}

TEST(Analyze, CancellationStopsAndClearsTheHook) {
  std::string llama = qs::test::writeTinyLlama(qs::test::tempDir("ana-cancel"));
  auto model = qs::model::openModel(llama);
  struct CancelAfter : qs::jobs::Progress {
    int updates = 0;
    void update(double, const std::string&) override { ++updates; }
    bool cancelRequested() const override { return updates >= 3; }
  } progress;
  EXPECT_THROW(analyzeModel(*model, randomSamples(4, 8, 256, 5), AnalysisOptions().withBatchSize(1), progress),
               qs::Cancelled);
  // The hook is gone: a plain forward afterwards must not call back into the dead pass.
  at::Tensor logits = model->forward(at::randint(0, 256, {1, 8}, at::kLong));
  EXPECT_EQ(logits.size(2), 256);
}

TEST(Analyze, RunStoreRowsCarryArraysSummariesAndTopTokens) {
  std::string llama = qs::test::writeTinyLlama(qs::test::tempDir("ana-rows"));
  auto model = qs::model::openModel(llama);
  AnalysisResult r = analyzeModel(*model, randomSamples(2, 8, 256, 6), AnalysisOptions().withTopTokens(3));
  for (const auto& site : r.sites) {
    auto row = toSiteStat(site);
    EXPECT_EQ(row.site, site.site);
    EXPECT_EQ(row.channels, static_cast<int64_t>(row.arrays.at(names::kAbsmax).size()));
    EXPECT_EQ(row.arrays.at(names::kHalfRange), site.channel.halfRange);
    auto extra = nlohmann::json::parse(row.extraJson);
    if (site.kind == names::kWeight) {
      EXPECT_TRUE(row.arrays.count("out_kurtosis"));
      EXPECT_FALSE(extra.contains("top_tokens"));
    } else {
      EXPECT_EQ(row.arrays.at(names::kTokenAbsmax).size(), 8u);
      ASSERT_EQ(extra["top_tokens"].size(), 3u);
      EXPECT_FLOAT_EQ(extra["top_tokens"][0]["absmax"].get<float>(), static_cast<float>(row.maxAbs));
    }
  }
  auto metrics = analysisMetrics(r);
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(metrics[0].key, "analysis.tokens");
  EXPECT_EQ(metrics[0].value, 16);
}

TEST(Analyze, Gpt2SitesSharingALastNameKeepTheirBlockNames) {
  QS_REQUIRE_SHARED();
  auto model = qs::model::openModel(qs::test::sharedPath("golden/gpt2"));
  AnalysisResult r = analyzeModel(*model, randomSamples(1, 6, 64, 7),
                                  AnalysisOptions().withSites("layers.0.*").withWeights(false));
  std::vector<std::string> got;
  for (const auto& s : r.sites) got.push_back(s.site);
  EXPECT_EQ(got, (std::vector<std::string>{"c_attn", "attn.c_proj", "c_fc", "mlp.c_proj", "block_out"}));
}
