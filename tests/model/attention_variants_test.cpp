// Quantizable Transformers attention variants: clipped softmax and gate math against closed
// forms, the config.json key round trip and its errors, and the engine hook on a tiny OPT (a
// neutral variant reproduces vanilla logits, a real one changes them, reloads give the same).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cmath>
#include <fstream>

#include "core/io/safetensors.h"
#include "core/model/attention.h"
#include "core/io/weight_source.h"
#include "core/model/config.h"
#include "core/model/decoder_model.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

using qs::model::AttentionVariant;

TEST(AttentionVariants, ClippedSoftmaxClosedForm) {
  at::Tensor s = at::tensor({0.0f, 0.0f, 30.0f, -1e9f, 1.0f, 2.0f, 3.0f, -1e9f}).view({2, 4});
  const double gamma = -0.1, zeta = 1.1;
  at::Tensor got = qs::model::clippedSoftmax(s, gamma, zeta);
  // Dominant key: 1.2 * ~1 - 0.1 > 1 -> exactly 1; the others and the masked key -> exactly 0.
  EXPECT_EQ(got[0][2].item<float>(), 1.0f);
  EXPECT_EQ(got[0][0].item<float>(), 0.0f);
  EXPECT_EQ(got[0][3].item<float>(), 0.0f);
  EXPECT_EQ(got[1][3].item<float>(), 0.0f);
  // Row 2 unclipped entries: (zeta - gamma) * e^i / (e + e^2 + e^3) + gamma.
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  for (int i = 0; i < 3; ++i) {
    const double want = std::min(1.0, std::max(0.0, 1.2 * std::exp(1.0 + i) / z - 0.1));
    EXPECT_NEAR(got[1][i].item<double>(), want, 1e-6) << i;
  }
  // gamma = 0, zeta = 1 is the plain softmax.
  EXPECT_TRUE(at::allclose(qs::model::clippedSoftmax(s, 0.0, 1.0), at::softmax(s, -1)));
}

TEST(AttentionVariants, AlphaGivesGammaOverKeyCount) {
  AttentionVariant v;
  v.softmax = AttentionVariant::Softmax::Clipped;
  v.gamma = -0.5;
  EXPECT_DOUBLE_EQ(v.gammaFor(100), -0.5);
  v.alpha = 12;
  EXPECT_DOUBLE_EQ(v.gammaFor(300), -0.04);
}

TEST(AttentionVariants, ChunkedClippedAttendMatchesNaive) {
  c10::InferenceMode guard;
  at::manual_seed(5);
  const int64_t B = 2, T = 300, H = 4, d = 8;
  at::Tensor mask = at::ones({B, T}, at::kLong);
  at::Tensor pos = (mask.cumsum(1) - 1).clamp_min(0);
  at::Tensor bias = qs::model::attentionBias(mask, pos, 0, {});
  at::Tensor q = at::randn({B, T, H, d}) * 2, k = at::randn({B, T, H, d}), v = at::randn({B, T, H, d});
  AttentionVariant var;
  var.softmax = AttentionVariant::Softmax::Clipped;
  var.alpha = 4;  // gamma = -4 / 300
  var.zeta = 1.05;
  at::Tensor got = qs::model::attend(q, k, v, bias, var);
  at::Tensor s = at::matmul(q.permute({0, 2, 1, 3}), k.permute({0, 2, 3, 1})) + bias;
  at::Tensor p = qs::model::clippedSoftmax(s, -4.0 / 300.0, 1.05);
  at::Tensor want = at::matmul(p, v.permute({0, 2, 1, 3})).permute({0, 2, 1, 3}).reshape({B, T, H * d});
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5);
  EXPECT_GT((got - qs::model::attend(q, k, v, bias)).abs().max().item<double>(), 1e-3);  // clipping acts
}

TEST(AttentionVariants, LinearAndMlpGatesClosedForm) {
  const int64_t H = 2, d = 3;
  at::Tensor x = at::arange(12, at::kFloat).view({1, 2, H * d}) / 10;  // [B=1, T=2, 6]
  AttentionVariant v;
  v.gate = AttentionVariant::Gate::Linear;
  qs::model::GateWeights g;
  g.w1 = at::tensor({1.0f, -1.0f, 0.5f, 0.0f, 2.0f, 0.0f}).view({H, d});
  g.b1 = at::tensor({0.25f, -0.5f});
  at::Tensor gate = qs::model::attentionGate(x, g, v, H);
  ASSERT_EQ(gate.sizes(), (std::vector<int64_t>{1, 2, H}));
  auto sig = [](double z) { return 1.0 / (1.0 + std::exp(-z)); };
  for (int t = 0; t < 2; ++t) {
    const double* w = nullptr;
    const double w0[] = {1.0, -1.0, 0.5}, w1[] = {0.0, 2.0, 0.0}, b[] = {0.25, -0.5};
    for (int h = 0; h < H; ++h) {
      w = h == 0 ? w0 : w1;
      double z = b[h];
      for (int c = 0; c < d; ++c) z += w[c] * (static_cast<double>(t * 6 + h * d + c) / 10);
      EXPECT_NEAR(gate[0][t][h].item<double>(), sig(z), 1e-6) << t << " " << h;
    }
  }
  // Gate applies per head: head h's d context channels scale by gate[h].
  at::Tensor ctx = at::ones({1, 2, H * d});
  at::Tensor out = qs::model::gateContext(ctx, gate);
  EXPECT_NEAR(out[0][1][4].item<double>(), gate[0][1][1].item<double>(), 1e-7);
  EXPECT_NEAR(out[0][0][0].item<double>(), gate[0][0][0].item<double>(), 1e-7);

  // MLP gate, token input: sigmoid(sum_m w2[h,m] relu(w1[h,m,:] . x + b1[h,m]) + b2[h]).
  v.gate = AttentionVariant::Gate::Mlp;
  v.gateInput = AttentionVariant::GateInput::Token;
  v.gateHidden = 2;
  at::manual_seed(1);
  g.w1 = at::randn({H, 2, H * d});
  g.b1 = at::randn({H, 2});
  g.w2 = at::randn({H, 2});
  g.b2 = at::randn({H});
  gate = qs::model::attentionGate(x, g, v, H);
  for (int t = 0; t < 2; ++t)
    for (int h = 0; h < H; ++h) {
      double z = g.b2[h].item<double>();
      for (int m = 0; m < 2; ++m)
        z += g.w2[h][m].item<double>() *
             std::max(0.0, (g.w1[h][m] * x[0][t]).sum().item<double>() + g.b1[h][m].item<double>());
      EXPECT_NEAR(gate[0][t][h].item<double>(), sig(z), 1e-5) << t << " " << h;
    }
}

TEST(AttentionVariants, ConfigKeyRoundTripAndErrors) {
  AttentionVariant v;
  EXPECT_TRUE(qs::model::attentionVariantJson(v).is_null());
  v.softmax = AttentionVariant::Softmax::Clipped;
  v.alpha = 12;
  v.zeta = 1.0;
  v.gate = AttentionVariant::Gate::Mlp;
  v.gateHidden = 4;
  v.gateBiasInit = 1.5;
  nlohmann::json j = qs::model::attentionVariantJson(v);
  EXPECT_EQ(j["softmax"], "clipped");
  AttentionVariant r = qs::model::parseAttentionVariant(j);
  EXPECT_TRUE(r.clipped());
  EXPECT_EQ(r.alpha, 12);
  EXPECT_EQ(r.gate, AttentionVariant::Gate::Mlp);
  EXPECT_EQ(r.gateInput, AttentionVariant::GateInput::Head);
  EXPECT_EQ(r.gateHidden, 4);
  EXPECT_EQ(r.gateBiasInit, 1.5);
  auto message = [](const nlohmann::json& bad) {
    try {
      qs::model::parseAttentionVariant(bad, "cfg.json");
    } catch (const qs::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"softmax", "clipped"}, {"gamma", 0.1}}).find("quantscope_attention.gamma"), std::string::npos);
  EXPECT_NE(message({{"softmax", "sparse"}}).find("cfg.json"), std::string::npos);
  EXPECT_NE(message({{"gatee", "linear"}}).find("unknown key"), std::string::npos);
  EXPECT_NE(message({{"gate", "mlp"}, {"gate_hidden", 0}}).find("gate_hidden"), std::string::npos);
}

// Tiny OPT with the variant key in config.json and gate tensors (w, b) added to every block.
std::string variantOpt(const std::string& tag, const nlohmann::json& variant, double gateWeight, double gateBias) {
  const std::string dir = qs::test::writeTinyOpt(qs::test::tempDir(tag));
  nlohmann::json cfg = nlohmann::json::parse(qs::fs::readText(dir + "/config.json"));
  cfg["quantscope_attention"] = variant;
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  if (variant.contains("gate")) {
    auto f = qs::io::SafetensorsFile::open(dir + "/model.safetensors");
    std::vector<std::pair<std::string, at::Tensor>> t;
    for (const auto& m : f->tensors()) t.emplace_back(m.name, f->load(m.name));
    f.reset();
    at::manual_seed(9);
    for (int i = 0; i < 2; ++i) {
      const std::string a = "model.decoder.layers." + std::to_string(i) + ".self_attn.gate.";
      t.emplace_back(a + "weight", at::randn({4, 16}) * gateWeight);
      t.emplace_back(a + "bias", at::full({4}, gateBias));
    }
    qs::io::writeSafetensors(dir + "/model.safetensors", t);
  }
  return dir;
}

at::Tensor logitsOf(const std::string& dir, const at::Tensor& ids) { return qs::model::openModel(dir)->forward(ids); }

TEST(AttentionVariants, EngineHookNeutralEqualsVanillaAndRealVariantsDiffer) {
  at::Tensor ids = at::randint(0, 256, {2, 40}, at::kLong);
  at::Tensor vanilla = logitsOf(qs::test::writeTinyOpt(qs::test::tempDir("qa_vanilla")), ids);
  // gamma = 0, zeta = 1 and a gate saturated at 1 are exact no-ops.
  EXPECT_LT((logitsOf(variantOpt("qa_neutral_clip", {{"softmax", "clipped"}, {"gamma", 0.0}}, 0, 0), ids) - vanilla)
                .abs().max().item<double>(), 1e-5);
  EXPECT_LT((logitsOf(variantOpt("qa_neutral_gate", {{"gate", "linear"}}, 0.0, 60.0), ids) - vanilla)
                .abs().max().item<double>(), 1e-5);
  // Real variants change the output; reopening gives the same logits.
  for (const auto& [tag, v] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"qa_clip", {{"softmax", "clipped"}, {"gamma", -0.1}, {"zeta", 1.1}}},
           {"qa_gate", {{"gate", "linear"}, {"gate_input", "head"}}}}) {
    const std::string dir = variantOpt(tag, v, 1.0, 0.0);
    at::Tensor a = logitsOf(dir, ids), b = logitsOf(dir, ids);
    EXPECT_GT((a - vanilla).abs().max().item<double>(), 1e-2) << tag;
    EXPECT_TRUE(at::equal(a, b)) << tag;
  }
}

TEST(AttentionVariants, MissingGateTensorNamesFileAndTensor) {
  const std::string dir = variantOpt("qa_missing_gate", {{"softmax", "standard"}}, 0, 0);
  nlohmann::json cfg = nlohmann::json::parse(qs::fs::readText(dir + "/config.json"));
  cfg["quantscope_attention"] = {{"gate", "linear"}};
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  try {
    logitsOf(dir, at::zeros({1, 4}, at::kLong));
    FAIL() << "expected an error";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("self_attn.gate.weight"), std::string::npos) << e.what();
  }
}


// Counts the tensors read by name, to see which forward reads the checkpoint.
class CountingSource : public qs::io::WeightSource {
 public:
  explicit CountingSource(std::unique_ptr<qs::io::WeightSource> inner) : inner_(std::move(inner)) {}
  const std::vector<qs::io::TensorMeta>& tensors() const override { return inner_->tensors(); }
  at::Tensor load(const std::string& name) const override {
    if (name.find(".gate.") != std::string::npos) ++gateLoads;
    return inner_->load(name);
  }
  std::string path() const override { return inner_->path(); }
  mutable std::atomic<int> gateLoads{0};

 private:
  std::unique_ptr<qs::io::WeightSource> inner_;
};

// Regression (issue 7): the gate was read from the checkpoint on every forward instead of being
// materialised with its block. Two forwards must read each block's two gate tensors once.
TEST(AttentionVariants, GateWeightsMaterialisedWithTheBlock) {
  const std::string dir = variantOpt("qa_gate_once", {{"gate", "linear"}}, 1.0, 0.0);
  auto counting = std::make_unique<CountingSource>(qs::io::openWeights(dir));
  CountingSource* counter = counting.get();
  qs::model::DecoderModel m(qs::model::loadConfig(dir + "/config.json"), std::move(counting), {});
  at::Tensor ids = at::randint(0, 256, {1, 12}, at::kLong);
  at::Tensor a = m.forward(ids);
  at::Tensor b = m.forward(ids);
  EXPECT_EQ(counter->gateLoads.load(), 2 * 2);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_TRUE(at::equal(a, logitsOf(dir, ids)));
  // release() drops the gate with the block; the next forward reads it again.
  m.release(0);
  m.forward(ids);
  EXPECT_EQ(counter->gateLoads.load(), 2 * 2 + 2);
}

}  // namespace
