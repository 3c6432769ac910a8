// The Model API beyond plain forward: input hooks on every site, weight get/set in [out, in]
// (GPT-2 Conv1D included), lazy materialize/release keeping overrides, reduced-precision loads,
// RoPE scaling options, GGUF vs Hugging Face folder, tiny fixtures, and user-facing errors.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/io/safetensors.h"
#include "core/io/weight_source.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

namespace fsys = std::filesystem;
using qs::model::openModel;

std::string golden(const std::string& family) { return qs::test::sharedPath("golden/" + family); }

at::Tensor sampleIds(int64_t vocab, int64_t B = 2, int64_t T = 13) {
  return at::arange(B * T, at::kLong).mul(37).remainder(vocab).view({B, T});
}

// Copies a golden folder's config.json (edited by `edit`) and all tensors except `drop`.
std::string copyModel(const std::string& src, const std::string& tag,
                      const std::function<void(nlohmann::json&)>& edit = {}, const std::string& drop = "") {
  std::string dir = qs::test::tempDir(tag);
  nlohmann::json cfg = nlohmann::json::parse(std::ifstream(src + "/config.json"));
  if (edit) edit(cfg);
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  auto w = qs::io::openWeights(src);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& m : w->tensors())
    if (m.name != drop) tensors.emplace_back(m.name, w->load(m.name));
  qs::io::writeSafetensors(dir + "/model.safetensors", tensors);
  return dir;
}

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const qs::Error& e) {
    return e.what();
  }
  return "(no qs::Error thrown)";
}

class FamilyApi : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyApi, HookSeesEverySiteOnceWithItsInputShape) {
  QS_REQUIRE_SHARED();
  c10::InferenceMode guard;
  auto m = openModel(golden(GetParam()));
  std::vector<std::string> seen;
  std::map<std::string, std::vector<int64_t>> shapes;
  m->setInputHook([&](const std::string& site, const at::Tensor& x) {
    seen.push_back(site);
    shapes[site] = x.sizes().vec();
  });
  at::Tensor ids = sampleIds(m->config().vocabSize);
  m->forward(ids);
  std::vector<std::string> expected;
  for (const auto& s : m->sites()) expected.push_back(s.name);
  EXPECT_EQ(seen, expected);  // every site once, in execution order
  for (const auto& s : m->sites())
    EXPECT_EQ(shapes[s.name], (std::vector<int64_t>{2, 13, s.inFeatures})) << s.name;
  m->setInputHook({});
  seen.clear();
  m->forward(ids);
  EXPECT_TRUE(seen.empty());
}

TEST_P(FamilyApi, SiteWeightRoundTripAndOverrideSurvivesRelease) {
  QS_REQUIRE_SHARED();
  c10::InferenceMode guard;
  auto m = openModel(golden(GetParam()));
  at::Tensor ids = sampleIds(m->config().vocabSize);
  at::Tensor base = m->forward(ids);
  const auto& site = m->sites().front();
  at::Tensor w = m->siteWeight(site.name);
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{site.outFeatures, site.inFeatures}));
  w.mul_(0.5);  // a copy: the model is unchanged
  EXPECT_LT((m->forward(ids) - base).abs().max().item<double>(), 1e-6);

  m->setSiteWeight(site.name, w);
  at::Tensor changed = m->forward(ids);
  EXPECT_GT((changed - base).abs().max().item<double>(), 1e-3);
  EXPECT_TRUE(m->siteWeight(site.name).equal(w));
  m->release(site.block);  // the override is kept across release/materialize
  EXPECT_LT((m->forward(ids) - changed).abs().max().item<double>(), 1e-6);
  m->setSiteWeight(site.name, w * 2.0);
  EXPECT_LT((m->forward(ids) - base).abs().max().item<double>(), 1e-5);
  EXPECT_THROW(m->setSiteWeight(site.name, w.narrow(0, 0, w.size(0) - 1)), qs::Error);
  EXPECT_THROW(m->siteWeight("layers.99.nope"), qs::Error);
}

TEST_P(FamilyApi, ReducedPrecisionLoadsStayClose) {
  QS_REQUIRE_SHARED();
  c10::InferenceMode guard;
  at::Tensor ids;
  at::Tensor ref;
  {
    auto m = openModel(golden(GetParam()));
    ids = sampleIds(m->config().vocabSize);
    ref = m->forward(ids);
  }
  const double range = ref.abs().max().item<double>();
  for (auto dtype : {at::kBFloat16, at::kHalf}) {
    qs::model::LoadOptions o;
    o.dtype = dtype;
    auto m = openModel(golden(GetParam()), o);
    EXPECT_EQ(m->dtype(), dtype);
    at::Tensor logits = m->forward(ids);
    EXPECT_EQ(logits.scalar_type(), at::kFloat);
    EXPECT_FALSE(logits.isnan().any().item<bool>());
    const double tol = dtype == at::kBFloat16 ? 0.15 : 0.02;
    EXPECT_LT((logits - ref).abs().max().item<double>(), tol * std::max(1.0, range)) << c10::toString(dtype);
    EXPECT_EQ(m->siteWeight(m->sites().front().name).scalar_type(), dtype);
  }
}

TEST_P(FamilyApi, MatmulOperandsAreSeenOncePerBlockAndTransformsApply) {
  QS_REQUIRE_SHARED();
  c10::InferenceMode guard;
  auto m = openModel(golden(GetParam()));
  const auto& cfg = m->config();
  const int64_t H = cfg.numHeads, Hkv = cfg.numKvHeads, d = cfg.headDim;
  std::vector<std::string> seen;
  std::map<std::string, std::vector<int64_t>> shapes;
  m->setMatmulHook([&](const std::string& site, const at::Tensor& x) {
    seen.push_back(site);
    shapes[site] = x.sizes().vec();
  });
  at::Tensor ids = sampleIds(cfg.vocabSize);
  at::Tensor reference = m->forward(ids);
  EXPECT_EQ(seen, m->matmulSites());
  ASSERT_EQ(seen.size(), static_cast<size_t>(3 * m->numBlocks()));
  for (size_t i = 0; i < seen.size(); i += 3) {
    EXPECT_TRUE(seen[i].size() > 9 && seen[i].substr(seen[i].size() - 9) == ".q_matmul") << seen[i];
    EXPECT_EQ(shapes[seen[i]], (std::vector<int64_t>{2, 13, H * d})) << seen[i];
    EXPECT_EQ(shapes[seen[i + 1]], (std::vector<int64_t>{2, 13, Hkv * d})) << seen[i + 1];
    EXPECT_EQ(shapes[seen[i + 2]], (std::vector<int64_t>{2, 13, Hkv * d})) << seen[i + 2];
  }
  m->setMatmulHook({});
  // A transform that copies changes nothing; one that zeroes v zeroes every output projection's
  // input (the context is probabilities x 0, gated or not).
  m->setMatmulTransform([](const std::string&, const at::Tensor& x) { return x.clone(); });
  EXPECT_TRUE(at::equal(m->forward(ids), reference));
  m->setMatmulTransform([](const std::string& site, const at::Tensor& x) {
    return site.find("v_matmul") != std::string::npos ? at::zeros_like(x) : x;
  });
  // The output projection is the last Linear inside the attention module ("layers.3.self_attn").
  std::set<std::string> outProj;
  for (size_t i = 0; i < seen.size(); i += 3) {
    const std::string attn = seen[i].substr(0, seen[i].size() - 9) + ".";
    std::string last;
    for (const auto& s : m->sites())
      if (s.name.rfind(attn, 0) == 0) last = s.name;
    outProj.insert(last);
  }
  ASSERT_EQ(outProj.size(), static_cast<size_t>(m->numBlocks()));
  double oInputMax = -1;
  m->setInputHook([&](const std::string& site, const at::Tensor& x) {
    if (outProj.count(site)) oInputMax = std::max(oInputMax, x.abs().max().item<double>());
  });
  m->forward(ids);
  m->setInputHook({});
  m->setMatmulTransform({});
  EXPECT_EQ(oInputMax, 0.0);
  EXPECT_TRUE(at::equal(m->forward(ids), reference));
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyApi,
                         ::testing::Values("opt", "opt_350m_like", "bloom", "llama", "mistral_sliding_window",
                                           "falcon", "falcon_new_arch", "gpt2", "gpt_neox"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(ModelSites, NamesFollowHfWithBlockPrefixReplaced) {
  QS_REQUIRE_SHARED();
  auto names = [](const std::string& family) {
    std::vector<std::string> v;
    auto m = openModel(golden(family));
    for (const auto& s : m->sites()) v.push_back(s.name);
    return v;
  };
  auto opt = names("opt");
  ASSERT_EQ(opt.size(), 12u);
  EXPECT_EQ(opt[0], "layers.0.self_attn.q_proj");
  EXPECT_EQ(opt[3], "layers.0.self_attn.out_proj");
  EXPECT_EQ(opt[5], "layers.0.fc2");
  auto llama = names("llama");
  EXPECT_EQ(llama[3], "layers.0.self_attn.o_proj");
  EXPECT_EQ(llama[4], "layers.0.mlp.gate_proj");
  EXPECT_EQ(names("bloom")[0], "layers.0.self_attention.query_key_value");
  EXPECT_EQ(names("gpt2")[6], "layers.1.mlp.c_fc");
  EXPECT_EQ(names("gpt_neox")[1], "layers.0.attention.dense");

  auto m = openModel(golden("llama"));
  const auto& k = m->sites()[1];
  EXPECT_EQ(k.hfWeight, "model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(k.block, 0);
  EXPECT_EQ(k.outFeatures, 32);  // 2 kv heads x 16
  EXPECT_EQ(k.inFeatures, 64);
  EXPECT_FALSE(k.hasBias);
  EXPECT_TRUE(openModel(golden("opt"))->sites()[0].hasBias);
}

TEST(ModelSites, Gpt2ConvWeightsAreOutIn) {
  QS_REQUIRE_SHARED();
  auto m = openModel(golden("gpt2"));
  auto w = qs::io::openWeights(golden("gpt2"));
  at::Tensor stored = w->load("transformer.h.0.mlp.c_fc.weight");  // Conv1D [in, out] = [64, 256]
  at::Tensor site = m->siteWeight("layers.0.mlp.c_fc");
  EXPECT_EQ(site.sizes(), (std::vector<int64_t>{256, 64}));
  EXPECT_TRUE(site.equal(stored.t()));
}

TEST(ModelLazy, ReleaseAndRematerializeGiveSameLogits) {
  QS_REQUIRE_SHARED();
  c10::InferenceMode guard;
  auto m = openModel(golden("mistral"));
  at::Tensor ids = sampleIds(256);
  at::Tensor a = m->forward(ids);
  for (int i = 0; i < m->numBlocks(); ++i) m->release(i);
  EXPECT_TRUE(m->forward(ids).equal(a));
  EXPECT_THROW(m->materialize(m->numBlocks()), qs::Error);
}

TEST(ModelRope, ScalingOptions) {
  QS_REQUIRE_SHARED();
  c10::InferenceMode guard;
  at::Tensor ids = sampleIds(256);
  at::Tensor base = openModel(golden("llama"))->forward(ids);
  auto withScaling = [&](nlohmann::json rs) {
    return openModel(copyModel(golden("llama"), "rope", [&](nlohmann::json& c) { c["rope_scaling"] = rs; }))
        ->forward(ids);
  };
  // Dynamic NTK only changes the base beyond max_position_embeddings (128 here).
  EXPECT_TRUE(withScaling({{"type", "dynamic"}, {"factor", 2.0}}).equal(base));
  EXPECT_GT((withScaling({{"type", "linear"}, {"factor", 2.0}}) - base).abs().max().item<double>(), 1e-4);
  at::Tensor l3 = withScaling({{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                               {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}});
  EXPECT_FALSE(l3.isnan().any().item<bool>());
  EXPECT_GT((l3 - base).abs().max().item<double>(), 1e-4);
  std::string msg = errorOf([&] { withScaling({{"type", "yarn"}, {"factor", 2.0}}); });
  EXPECT_NE(msg.find("rope_scaling.type"), std::string::npos) << msg;
  EXPECT_NE(msg.find("yarn"), std::string::npos) << msg;
}

TEST(ModelStories260K, HfFolderRunsAndMatchesGguf) {
  QS_REQUIRE_SHARED();
  c10::InferenceMode guard;
  auto hf = openModel(qs::test::sharedPath("models/stories260K/hf"));
  EXPECT_EQ(hf->numBlocks(), 5);
  EXPECT_EQ(hf->config().numKvHeads, 4);
  EXPECT_TRUE(hf->config().tieWordEmbeddings);
  at::Tensor ids = at::tensor(std::vector<int64_t>{1, 403, 407, 261, 378, 1291 % 512, 260, 37}, at::kLong).view({1, -1});
  at::Tensor logits = hf->forward(ids);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 8, 512}));
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
  auto gguf = openModel(qs::test::sharedPath("models/stories260K/stories260K.gguf"));
  EXPECT_LT((gguf->forward(ids) - logits).abs().max().item<double>(), 1e-4);
}

TEST(ModelFixtures, TinyOptAndLlamaLoadAndAreDeterministic) {
  c10::InferenceMode guard;
  for (bool llama : {false, true}) {
    std::string a = qs::test::tempDir("tiny-a"), b = qs::test::tempDir("tiny-b");
    if (llama) {
      qs::test::writeTinyLlama(a);
      qs::test::writeTinyLlama(b);
    } else {
      qs::test::writeTinyOpt(a);
      qs::test::writeTinyOpt(b);
    }
    auto ma = openModel(a), mb = openModel(b);
    EXPECT_EQ(ma->config().family, llama ? qs::model::Family::Llama : qs::model::Family::Opt);
    at::Tensor ids = sampleIds(256);
    at::Tensor la = ma->forward(ids);
    EXPECT_TRUE(la.equal(mb->forward(ids)));
    EXPECT_GT(la.std().item<double>(), 0.1);
  }
}

TEST(ModelErrors, MissingConfigUnknownTypeMissingTensor) {
  QS_REQUIRE_SHARED();
  std::string empty = qs::test::tempDir("empty");
  std::string msg = errorOf([&] { openModel(empty); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  msg = errorOf([&] { openModel(empty + "/nope"); });
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;

  std::string foo = copyModel(golden("opt"), "foo", [](nlohmann::json& c) { c["model_type"] = "foo"; });
  msg = errorOf([&] { openModel(foo); });
  EXPECT_NE(msg.find("config.json: unknown model_type 'foo' (supported: opt, bloom, llama, mistral, falcon, "
                     "gpt2, gpt_neox)"),
            std::string::npos)
      << msg;

  std::string noKey = copyModel(golden("llama"), "nokey", [](nlohmann::json& c) { c.erase("hidden_size"); });
  msg = errorOf([&] { openModel(noKey); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'hidden_size'"), std::string::npos) << msg;

  std::string alibi = copyModel(golden("falcon"), "alibi", [](nlohmann::json& c) { c["alibi"] = true; });
  msg = errorOf([&] { openModel(alibi); });
  EXPECT_NE(msg.find("alibi"), std::string::npos) << msg;

  const std::string missing = "model.layers.1.mlp.up_proj.weight";
  std::string dropped = copyModel(golden("llama"), "drop", {}, missing);
  auto m = openModel(dropped);  // lazy: the block is read on first use
  c10::InferenceMode guard;
  msg = errorOf([&] { m->forward(sampleIds(256)); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;

  std::string untied = copyModel(golden("llama"), "nohead", {}, "lm_head.weight");
  msg = errorOf([&] { openModel(untied)->forward(sampleIds(256)); });
  EXPECT_NE(msg.find("lm_head.weight"), std::string::npos) << msg;

  auto ok = openModel(golden("llama"));
  msg = errorOf([&] { ok->forward(at::full({1, 4}, 256, at::kLong)); });
  EXPECT_NE(msg.find("vocabulary"), std::string::npos) << msg;
  msg = errorOf([&] { openModel(golden("gpt2"))->forward(at::zeros({1, 129}, at::kLong)); });
  EXPECT_NE(msg.find("positions"), std::string::npos) << msg;
}

}  // namespace

// The operands against their definition, from the q/k/v projections' own input and weights:
// OPT (HF OPTAttention) scales the query projection by head_dim^-0.5; LLaMA (HF
// LlamaAttention) rotates q and k by RoPE, q * cos + rotate_half(q) * sin with
// inv_freq = theta^(-2i/d), before the 1/sqrt(d) of the scores (folded into q here).
TEST(ModelMatmul, OperandsEqualTheirDefinitionFromTheProjections) {
  c10::InferenceMode guard;
  for (const std::string family : {"opt", "llama"}) {
    SCOPED_TRACE(family);
    const std::string dir = family == "opt" ? qs::test::writeTinyOpt(qs::test::tempDir("mm-opt"))
                                            : qs::test::writeTinyLlama(qs::test::tempDir("mm-llama"));
    auto m = openModel(dir);
    const auto& cfg = m->config();
    const int64_t T = 9, d = cfg.headDim;
    const std::string attn = "layers.1.self_attn";
    at::Tensor x;
    std::map<std::string, at::Tensor> ops;
    m->setInputHook([&](const std::string& site, const at::Tensor& in) {
      if (site == attn + ".q_proj") x = in.clone();
    });
    m->setMatmulHook([&](const std::string& site, const at::Tensor& in) { ops[site] = in.clone(); });
    m->forward(sampleIds(cfg.vocabSize, 1, T));
    ASSERT_TRUE(x.defined());
    auto proj = [&](const std::string& p) {
      at::Tensor y = at::matmul(x, m->siteWeight(attn + "." + p).t());
      at::Tensor b = m->siteBias(attn + "." + p);
      return b.defined() ? y + b : y;
    };
    at::Tensor q = proj("q_proj"), k = proj("k_proj"), v = proj("v_proj");
    if (family == "llama") {
      auto rope = [&](const at::Tensor& t) {  // [1, T, heads * d]
        const int64_t heads = t.size(2) / d;
        at::Tensor inv = at::pow(10000.0, -at::arange(0, d, 2, at::kDouble) / static_cast<double>(d));
        at::Tensor ang = at::outer(at::arange(T, at::kDouble), inv);
        at::Tensor cos = at::cat({ang.cos(), ang.cos()}, -1).to(at::kFloat).view({1, T, 1, d});
        at::Tensor sin = at::cat({ang.sin(), ang.sin()}, -1).to(at::kFloat).view({1, T, 1, d});
        at::Tensor h = t.view({1, T, heads, d});
        at::Tensor rot = at::cat({h.narrow(-1, d / 2, d / 2).neg(), h.narrow(-1, 0, d / 2)}, -1);
        return (h * cos + rot * sin).view({1, T, heads * d});
      };
      q = rope(q);
      k = rope(k);
    }
    q = q / std::sqrt(static_cast<double>(d));
    EXPECT_TRUE(at::allclose(ops.at(attn + ".q_matmul"), q, 1e-5, 1e-5));
    EXPECT_TRUE(at::allclose(ops.at(attn + ".k_matmul"), k, 1e-5, 1e-5));
    EXPECT_TRUE(at::allclose(ops.at(attn + ".v_matmul"), v, 1e-5, 1e-5));
  }
}

// Issue 15: weights that are not the checkpoint's can live on disk. A loader replaces an override,
// offloadOverrides moves a block's overrides into a file, and an override budget offloads on its
// own; the model computes exactly what it computes with the overrides in memory.
TEST(ModelOverrides, LoadersOffloadAndBudgetKeepTheSameWeightsOutOfMemory) {
  const std::string dir = qs::test::writeTinyLlama(qs::test::tempDir("ovr_llama"),
                                                   qs::test::TinyModelOptions().setLayers(3).setSeed(41));
  const at::Tensor ids = sampleIds(256);
  auto reference = openModel(dir);
  auto budgeted = openModel(dir);
  auto offloaded = openModel(dir);
  const std::string spill = qs::test::tempDir("ovr_spill");
  // One block's q/k/v/o weights of the tiny model are 4 x 64 x 64 x 4 B = 64 KiB (k/v smaller).
  budgeted->setOverrideBudget(40 * 1024, spill);
  for (const auto& s : reference->sites()) {
    const at::Tensor w = reference->siteWeight(s.name) * 0.5;  // any change the model must keep
    reference->setSiteWeight(s.name, w);
    budgeted->setSiteWeight(s.name, w);
    offloaded->setSiteWeight(s.name, w);
    EXPECT_LE(budgeted->overrideBytes(), 40 * 1024 + w.numel() * 4) << "spilled once over the budget";
  }
  EXPECT_GT(reference->overrideBytes(), 200 * 1024);
  for (int b = 0; b < offloaded->numBlocks(); ++b) EXPECT_GT(offloaded->offloadOverrides(b, spill), 0);
  EXPECT_EQ(offloaded->overrideBytes(), 0);
  EXPECT_FALSE(fsys::is_empty(spill));
  const at::Tensor expected = reference->forward(ids);
  EXPECT_TRUE(at::equal(budgeted->forward(ids), expected));
  EXPECT_TRUE(at::equal(offloaded->forward(ids), expected));
  for (const auto& s : reference->sites())
    EXPECT_TRUE(at::equal(offloaded->siteWeight(s.name), reference->siteWeight(s.name))) << s.name;

  // A loader: the weight is produced when a block is materialised, and survives release.
  auto lazy = openModel(dir);
  int calls = 0;
  const std::string site = reference->sites().front().name;
  const at::Tensor w0 = reference->siteWeight(site);
  lazy->setSiteWeightLoader(site, [&] {
    ++calls;
    return w0.to(at::kDouble);  // any floating dtype: converted to the model's
  });
  EXPECT_EQ(calls, 0) << "nothing is read until the block is used";
  EXPECT_TRUE(at::equal(lazy->siteWeight(site), w0));
  lazy->materialize(0);
  lazy->release(0);
  lazy->materialize(0);
  EXPECT_EQ(calls, 3);
}
