// Outlier metrics (core/eval/outlier_metrics) against a direct computation on a tiny OPT the test
// writes: every block output kept in memory, inf-norms as abs().max(), per-token kurtosis from
// the textbook formula in float64, FFN and attention outputs from fc2 / out_proj weights read
// straight from the safetensors file; perplexity equal to evaluatePerplexity on the same windows.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/eval/outlier_metrics.h"
#include "core/eval/perplexity.h"
#include "core/io/safetensors.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

struct Direct {
  std::vector<double> infNorm, ffnInfNorm, attnInfNorm, kurtosis, ffnKurtosis, attnKurtosis;
};

// Pearson m4 / m2^2 of each token's vector over the last dimension, in float64, mean over tokens.
double meanTokenKurtosis(const at::Tensor& y) {
  at::Tensor x = y.to(at::kDouble);
  at::Tensor xc = x - x.mean(-1, true);
  return (xc.pow(4).mean(-1) / xc.pow(2).mean(-1).pow(2)).mean().item<double>();
}

Direct directMetrics(const std::string& dir, const at::Tensor& windows) {
  auto model = qs::model::openModel(dir);
  auto file = qs::io::SafetensorsFile::open(dir + "/model.safetensors");
  const int L = model->numBlocks();
  std::vector<at::Tensor> fc2In(static_cast<size_t>(L)), outProjIn(static_cast<size_t>(L));
  model->setInputHook([&](const std::string& site, const at::Tensor& x) {
    for (int i = 0; i < L; ++i) {
      if (site == "layers." + std::to_string(i) + ".fc2") fc2In[static_cast<size_t>(i)] = x.clone();
      if (site == "layers." + std::to_string(i) + ".self_attn.out_proj") outProjIn[static_cast<size_t>(i)] = x.clone();
    }
  });
  std::vector<std::vector<at::Tensor>> outs(static_cast<size_t>(L)), ffn(static_cast<size_t>(L)),
      attn(static_cast<size_t>(L));
  c10::InferenceMode guard;
  for (int64_t w = 0; w < windows.size(0); ++w) {  // one window per forward
    at::Tensor ids = windows.narrow(0, w, 1);
    auto s = model->prepare(ids, {});
    at::Tensor h = model->embed(s);
    for (int i = 0; i < L; ++i) {
      h = model->runBlock(i, h, s);
      outs[static_cast<size_t>(i)].push_back(h.clone());
      const std::string p = "model.decoder.layers." + std::to_string(i) + ".fc2.";
      ffn[static_cast<size_t>(i)].push_back(
          at::linear(fc2In[static_cast<size_t>(i)], file->load(p + "weight"), file->load(p + "bias")));
      const std::string o = "model.decoder.layers." + std::to_string(i) + ".self_attn.out_proj.";
      attn[static_cast<size_t>(i)].push_back(
          at::linear(outProjIn[static_cast<size_t>(i)], file->load(o + "weight"), file->load(o + "bias")));
    }
  }
  model->setInputHook({});
  Direct d;
  for (int i = 0; i < L; ++i) {
    at::Tensor x = at::cat(outs[static_cast<size_t>(i)], 0).to(at::kDouble);  // [W, T, D]
    d.infNorm.push_back(x.abs().max().item<double>());
    at::Tensor f = at::cat(ffn[static_cast<size_t>(i)], 0), a = at::cat(attn[static_cast<size_t>(i)], 0);
    d.ffnInfNorm.push_back(f.abs().max().item<double>());
    d.attnInfNorm.push_back(a.abs().max().item<double>());
    d.kurtosis.push_back(meanTokenKurtosis(x));
    d.ffnKurtosis.push_back(meanTokenKurtosis(f));
    d.attnKurtosis.push_back(meanTokenKurtosis(a));
  }
  return d;
}

TEST(OutlierMetrics, MatchDirectComputationAndPerplexity) {
  const std::string dir = qs::test::writeTinyOpt(qs::test::tempDir("outlier_metrics_opt"));
  at::manual_seed(3);
  const int seqlen = 24, windows = 5;
  at::Tensor ids = at::randint(0, 256, {windows * seqlen + 7}, at::kLong);  // 7 tokens of remainder
  std::vector<int32_t> tokens(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  auto model = qs::model::openModel(dir);
  const auto opts = qs::eval::PerplexityOptions().setSeqlen(seqlen).setBatchSize(2);
  const qs::eval::OutlierMetrics m = qs::eval::evaluateOutlierMetrics(*model, tokens, opts);
  const qs::eval::PerplexityResult ref = qs::eval::evaluatePerplexity(*model, tokens, opts);
  EXPECT_NEAR(m.perplexity.perplexity, ref.perplexity, 1e-9 * ref.perplexity);
  EXPECT_EQ(m.perplexity.windows, windows);
  EXPECT_EQ(m.perplexity.tokensEvaluated, windows * seqlen);

  const Direct d = directMetrics(dir, ids.narrow(0, 0, windows * seqlen).view({windows, seqlen}));
  ASSERT_EQ(m.layers.size(), 2u);
  double maxInf = 0, maxFfn = 0, maxAttn = 0, kSum = 0, kMax = 0, fkSum = 0, fkMax = 0, akSum = 0, akMax = 0;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(m.layers[i].infNorm, d.infNorm[i], 1e-6 * d.infNorm[i]) << i;
    EXPECT_NEAR(m.layers[i].ffnInfNorm, d.ffnInfNorm[i], 1e-5 * d.ffnInfNorm[i]) << i;
    EXPECT_NEAR(m.layers[i].attnInfNorm, d.attnInfNorm[i], 1e-5 * d.attnInfNorm[i]) << i;
    EXPECT_NEAR(m.layers[i].ffnKurtosis, d.ffnKurtosis[i], 1e-5 * d.ffnKurtosis[i]) << i;
    EXPECT_NEAR(m.layers[i].attnKurtosis, d.attnKurtosis[i], 1e-5 * d.attnKurtosis[i]) << i;
    maxAttn = std::max(maxAttn, d.attnInfNorm[i]);
    fkSum += d.ffnKurtosis[i];
    fkMax = std::max(fkMax, d.ffnKurtosis[i]);
    akSum += d.attnKurtosis[i];
    akMax = std::max(akMax, d.attnKurtosis[i]);
    EXPECT_NEAR(m.layers[i].kurtosis, d.kurtosis[i], 1e-6 * d.kurtosis[i]) << i;
    EXPECT_GE(m.layers[i].kurtosisTokenMax, m.layers[i].kurtosis);
    maxInf = std::max(maxInf, d.infNorm[i]);
    maxFfn = std::max(maxFfn, d.ffnInfNorm[i]);
    kSum += d.kurtosis[i];
    kMax = std::max(kMax, d.kurtosis[i]);
  }
  EXPECT_NEAR(m.maxInfNorm, maxInf, 1e-6 * maxInf);
  EXPECT_NEAR(m.ffnMaxInfNorm, maxFfn, 1e-5 * maxFfn);
  EXPECT_NEAR(m.kurtosisAvg, kSum / 2, 1e-6 * kSum);
  EXPECT_NEAR(m.kurtosisMax, kMax, 1e-6 * kMax);
  EXPECT_NEAR(m.attnMaxInfNorm, maxAttn, 1e-5 * maxAttn);
  EXPECT_NEAR(m.ffnKurtosisAvg, fkSum / 2, 1e-5 * fkSum);
  EXPECT_NEAR(m.ffnKurtosisMax, fkMax, 1e-5 * fkMax);
  EXPECT_NEAR(m.attnKurtosisAvg, akSum / 2, 1e-5 * akSum);
  EXPECT_NEAR(m.attnKurtosisMax, akMax, 1e-5 * akMax);
  // The stored keys carry the per-module numbers.
  const auto named = m.namedValues(true);
  auto value = [&](const std::string& key) -> double {
    for (const auto& [k, v] : named)
      if (k == key) return v;
    ADD_FAILURE() << "no key " << key;
    return NAN;
  };
  EXPECT_EQ(value("outlier.attn_max_inf_norm"), m.attnMaxInfNorm);
  EXPECT_EQ(value("outlier.ffn_kurtosis_max"), m.ffnKurtosisMax);
  EXPECT_EQ(value("outlier.layer1.attn_kurtosis"), m.layers[1].attnKurtosis);
  EXPECT_NE(m.protocol().find("seqlen=24"), std::string::npos);
  // The pass leaves no hook behind: a plain forward gives the same perplexity again.
  EXPECT_NEAR(qs::eval::evaluatePerplexity(*model, tokens, opts).perplexity, ref.perplexity, 1e-12 * ref.perplexity);
}

TEST(OutlierMetrics, FfnSitesAndCancel) {
  const std::string dir = qs::test::writeTinyOpt(qs::test::tempDir("outlier_metrics_cancel"));
  auto model = qs::model::openModel(dir);
  EXPECT_EQ(qs::eval::ffnOutputSites(*model), (std::vector<std::string>{"layers.0.fc2", "layers.1.fc2"}));
  EXPECT_EQ(qs::eval::attentionOutputSites(*model),
            (std::vector<std::string>{"layers.0.self_attn.out_proj", "layers.1.self_attn.out_proj"}));
  struct Cancel : qs::jobs::Progress {
    bool cancelRequested() const override { return true; }
  } cancel;
  std::vector<int32_t> tokens(64, 5);
  EXPECT_THROW(qs::eval::evaluateOutlierMetrics(*model, tokens, qs::eval::PerplexityOptions().setSeqlen(16), cancel),
               qs::Cancelled);
  EXPECT_THROW(qs::eval::evaluateOutlierMetrics(*model, std::vector<int32_t>(8, 1),
                                                qs::eval::PerplexityOptions().setSeqlen(16)),
               qs::Error);
}

}  // namespace
