// The softmax-input site (analyze --softmax-inputs): its statistics against the attention scores
// materialised by hand from the q/k matmul operands (q.k^T, per head, masked entries dropped by
// the definition: causal, padding keys, removed padding queries), on tiny OPT, LLaMA (RoPE, GQA)
// and clipped-softmax + gated OPT models, with padded samples over more than one query chunk;
// and that the site is absent and the model untouched when the option is off.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

#include "core/analysis/analyze.h"
#include "core/analysis/run_stats.h"
#include "core/analysis/stat_names.h"
#include "core/io/safetensors.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

using namespace qs::analysis;

namespace {

// 4 samples of L tokens: sample 1 right-padded (last 30), sample 2 left-padded (first 20).
CalibrationSet paddedSamples(int64_t L, int64_t vocab, bool removePadding) {
  CalibrationSet s;
  s.samples = 4;
  s.seqlen = L;
  s.removePadding = removePadding;
  for (int64_t i = 0; i < 4 * L; ++i) s.ids.push_back(static_cast<int32_t>((i * 7919 + 13) % vocab));
  s.mask.assign(static_cast<size_t>(4 * L), 1);
  for (int64_t t = L - 30; t < L; ++t) s.mask[static_cast<size_t>(L + t)] = 0;
  for (int64_t t = 0; t < 20; ++t) s.mask[static_cast<size_t>(2 * L + t)] = 0;
  return s;
}

at::Tensor vec(const std::vector<float>& v) { return at::tensor(at::ArrayRef<float>(v)).to(at::kDouble); }

// The reference: per attention module, scores [B, H, T, T] in float64 from the q/k operands the
// matmul hook sees (q already scaled), and which entries are real: key j visible to query i iff
// j <= i and key j is a real token, and (padding removed) query i is a real token.
struct Scores {
  std::map<std::string, std::vector<at::Tensor>> scores, valid;
};

Scores materialise(qs::model::Model& m, const CalibrationSet& s, int64_t batchSize) {
  c10::InferenceMode guard;
  const auto& cfg = m.config();
  const int64_t H = cfg.numHeads, Hkv = cfg.numKvHeads, d = cfg.headDim, T = s.seqlen;
  Scores out;
  at::Tensor ids = at::from_blob(const_cast<int32_t*>(s.ids.data()), {s.samples, T}, at::kInt).to(at::kLong);
  at::Tensor mask = at::from_blob(const_cast<uint8_t*>(s.mask.data()), {s.samples, T}, at::kByte).to(at::kBool);
  for (int64_t b0 = 0; b0 < s.samples; b0 += batchSize) {
    const int64_t nb = std::min(batchSize, s.samples - b0);
    std::map<std::string, at::Tensor> q;
    at::Tensor mb = mask.narrow(0, b0, nb);
    m.setMatmulHook([&](const std::string& site, const at::Tensor& x) {
      const std::string attn = site.substr(0, site.rfind('.'));
      if (site.size() > 9 && site.substr(site.size() - 9) == ".q_matmul") {
        q[attn] = x.to(at::kDouble).view({nb, T, H, d});
      } else if (site.size() > 9 && site.substr(site.size() - 9) == ".k_matmul") {
        at::Tensor k = x.to(at::kDouble).view({nb, T, Hkv, d}).repeat_interleave(H / Hkv, 2);
        out.scores[attn].push_back(at::einsum("bihd,bjhd->bhij", {q.at(attn), k}));
        at::Tensor causal = at::ones({T, T}, at::kBool).tril();
        at::Tensor v = causal.view({1, 1, T, T}).logical_and(mb.view({nb, 1, 1, T}));
        if (s.removePadding) v = v.logical_and(mb.view({nb, 1, T, 1}));
        out.valid[attn].push_back(v.expand({nb, H, T, T}));
      }
    });
    m.forward(ids.narrow(0, b0, nb), mask.narrow(0, b0, nb).to(at::kLong));
  }
  m.setMatmulHook(nullptr);
  return out;
}

void expectSoftmaxSite(const SiteResult& r, const at::Tensor& scores, const at::Tensor& valid, int64_t heads) {
  SCOPED_TRACE(r.fullName);
  EXPECT_EQ(r.kind, names::kSoftmax);
  EXPECT_EQ(r.site, names::kSoftmaxIn);
  ASSERT_EQ(r.channels, heads);
  // Channel = head; its values = every real (query, key) score of that head.
  at::Tensor x = scores.permute({0, 2, 3, 1}).reshape({-1, heads});
  at::Tensor v = valid.permute({0, 2, 3, 1}).reshape({-1, heads}).select(1, 0);
  x = x.index_select(0, v.nonzero().squeeze(1));
  ASSERT_EQ(r.count, x.size(0));
  at::Tensor mean = x.mean(0), var = x.var(0, false);
  at::Tensor kurt = (x - mean).pow(4).mean(0) / var.pow(2);
  const double scale = x.abs().max().item<double>();
  EXPECT_TRUE(at::allclose(vec(r.channel.mean), mean, 1e-4, 1e-5 * scale));
  EXPECT_TRUE(at::allclose(vec(r.channel.var), var, 1e-4, 1e-5 * scale * scale));
  EXPECT_TRUE(at::allclose(vec(r.channel.kurtosis), kurt, 1e-3, 1e-3));
  EXPECT_TRUE(at::allclose(vec(r.channel.min), std::get<0>(x.min(0)), 1e-5, 1e-5 * scale));
  EXPECT_TRUE(at::allclose(vec(r.channel.max), std::get<0>(x.max(0)), 1e-5, 1e-5 * scale));
  EXPECT_NEAR(r.summary.maxAbs, scale, 1e-5 * scale);
  // Tokens are queries: absmax over heads and visible keys, 0 for a query with nothing counted.
  at::Tensor tok = scores.abs().masked_fill(valid.logical_not(), 0).amax({1, 3});  // [N, T]
  at::Tensor pos = tok.amax(0);
  ASSERT_EQ(r.tokenAbsmax.size(), static_cast<size_t>(pos.size(0)));
  EXPECT_TRUE(at::allclose(vec(r.tokenAbsmax), pos, 1e-5, 1e-5 * scale));
  ASSERT_FALSE(r.topTokens.empty());
  const TopToken& t = r.topTokens[0];
  EXPECT_NEAR(t.value, scale, 1e-5 * scale);
  EXPECT_NEAR(tok[t.sample][t.position].item<double>(), t.value, 1e-5 * scale);
  // The head named holds that maximum.
  at::Tensor headMax = scores[t.sample].select(1, t.position).abs().masked_fill(
      valid[t.sample].select(1, t.position).logical_not(), 0).amax(1);  // [H]
  EXPECT_NEAR(headMax[t.channel].item<double>(), t.value, 1e-5 * scale);
}

void checkModel(const std::string& dir, bool removePadding) {
  auto m = qs::model::openModel(dir);
  const int64_t L = 140;  // > 128: two query chunks in attend()
  CalibrationSet s = paddedSamples(L, m->config().vocabSize, removePadding);
  Scores ref = materialise(*m, s, 3);
  AnalysisResult r = analyzeModel(*m, s,
                                  AnalysisOptions().withBatchSize(3).withTopTokens(5).withSoftmaxInputs(true)
                                      .withWeights(false).withSites("softmax_in,block_out"));
  ASSERT_EQ(r.sites.size(), static_cast<size_t>(2 * m->numBlocks()));
  std::vector<std::string> expected;
  for (int i = 0; i < m->numBlocks(); ++i) {
    const SiteResult& sm = r.sites[static_cast<size_t>(2 * i)];
    EXPECT_EQ(sm.fullName, m->softmaxSites()[static_cast<size_t>(i)]);
    EXPECT_EQ(sm.layer, i);
    const std::string attn = sm.fullName.substr(0, sm.fullName.rfind('.'));
    expectSoftmaxSite(sm, at::cat(ref.scores.at(attn), 0), at::cat(ref.valid.at(attn), 0), m->config().numHeads);
    EXPECT_EQ(r.sites[static_cast<size_t>(2 * i + 1)].kind, names::kResidual);
  }
  // The run's token count is that of the activation sites, not the number of scores.
  int64_t real = 0;
  for (uint8_t v : s.mask) real += removePadding ? v : 1;
  EXPECT_EQ(r.tokens, real);
}

std::string tinyOpt(const std::string& tag) {
  qs::test::TinyModelOptions o;
  o.maxPositions = 256;
  return qs::test::writeTinyOpt(qs::test::tempDir(tag), o);
}

// Tiny OPT with clipped softmax and a per-head linear gate (gate tensors added to every block).
std::string variantOpt(const std::string& tag) {
  qs::test::TinyModelOptions o;
  o.maxPositions = 256;
  const std::string dir = qs::test::writeTinyOpt(qs::test::tempDir(tag), o);
  nlohmann::json cfg = nlohmann::json::parse(qs::fs::readText(dir + "/config.json"));
  cfg["quantscope_attention"] = {{"softmax", "clipped"}, {"gamma", -0.05}, {"zeta", 1.0}, {"gate", "linear"},
                                 {"gate_input", "head"}};
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  auto f = qs::io::SafetensorsFile::open(dir + "/model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> t;
  for (const auto& meta : f->tensors()) t.emplace_back(meta.name, f->load(meta.name));
  f.reset();
  at::manual_seed(5);
  for (int i = 0; i < o.layers; ++i) {
    const std::string a = "model.decoder.layers." + std::to_string(i) + ".self_attn.gate.";
    t.emplace_back(a + "weight", at::randn({o.heads, o.hidden / o.heads}));
    t.emplace_back(a + "bias", at::zeros({o.heads}));
  }
  qs::io::writeSafetensors(dir + "/model.safetensors", t);
  return dir;
}

}  // namespace

TEST(SoftmaxInput, TinyOptEqualsMaterialisedScoresWithoutMaskedEntries) {
  checkModel(tinyOpt("sm-opt"), true);
}

TEST(SoftmaxInput, TinyLlamaGqaEqualsMaterialisedScores) {
  qs::test::TinyModelOptions o;
  o.maxPositions = 256;
  const std::string dir = qs::test::writeTinyLlama(qs::test::tempDir("sm-llama"), o);
  checkModel(dir, true);
  checkModel(dir, false);  // --keep-padding: padding queries count, padding keys never do
}

TEST(SoftmaxInput, ClippedGatedVariantSeesTheScoresBeforeTheClippedSoftmax) {
  checkModel(variantOpt("sm-variant"), true);
}

// Off by default: no softmax rows, and no hook left behind; the hook being set changes no logit.
TEST(SoftmaxInput, OffByDefaultAndReadOnly) {
  auto m = qs::model::openModel(tinyOpt("sm-off"));
  CalibrationSet s = paddedSamples(40, 256, true);
  AnalysisResult off = analyzeModel(*m, s, AnalysisOptions().withWeights(false));
  for (const auto& site : off.sites) EXPECT_NE(site.kind, names::kSoftmax) << site.fullName;
  EXPECT_THROW(analyzeModel(*m, s, AnalysisOptions().withSites("softmax_in")), qs::Error);  // option off: no match
  at::Tensor ids = at::arange(40, at::kLong).view({1, 40});
  at::Tensor plain = m->forward(ids);
  int calls = 0;
  m->setSoftmaxHook([&](const std::string&, const at::Tensor&, int64_t, int64_t) { ++calls; });
  at::Tensor hooked = m->forward(ids);
  m->setSoftmaxHook(nullptr);
  EXPECT_EQ(calls, m->numBlocks());  // one chunk of 40 queries per block
  EXPECT_TRUE(at::equal(plain, hooked));
  AnalysisResult on = analyzeModel(*m, s, AnalysisOptions().withWeights(false).withSoftmaxInputs(true));
  m->forward(ids);  // the pass removed its hook: nothing calls into it after it returned
  // Run-store rows: kind softmax, site softmax_in, a metric of its own.
  bool row = false;
  for (const auto& site : on.sites)
    if (site.kind == names::kSoftmax) {
      row = true;
      auto st = toSiteStat(site);
      EXPECT_EQ(st.site, "softmax_in");
      EXPECT_EQ(st.arrays.at(names::kAbsmax).size(), 4u);  // 4 heads
    }
  EXPECT_TRUE(row);
  bool metric = false;
  for (const auto& mt : analysisMetrics(on)) metric = metric || mt.key == "analysis.max_abs.softmax";
  EXPECT_TRUE(metric);
}
