// Per-layer precision emulation on a tiny LLaMA: which weights change and how, which inputs go
// through which format, exact restore, and the bits summary against hand arithmetic.
#include "core/algo/precision_eval.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include "core/model/model.h"
#include "core/quant/format_block.h"
#include "core/quant/format_minifloat.h"
#include "core/quant/format_yaml.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

using qs::quant::LayerPrecision;
using qs::quant::NumberFormat;

constexpr const char* kMlpBfp = R"Y(
precision:
  rules:
    - name: "layers.*.mlp.*"
      weight: "bfp(m=4,e=8,block=16)"
      input: "bfp(m=4,e=8,block=16)"
)Y";

struct Fixture {
  std::string dir = qs::test::writeTinyLlama(qs::test::tempDir("precision_eval"));
  std::unique_ptr<qs::model::Model> model = qs::model::openModel(dir);
  at::Tensor ids = at::arange(0, 24, at::kLong).remainder(200).view({2, 12});
};

TEST(PrecisionEval, WeightsOfMatchedSitesAreQuantizedOthersUntouched) {
  c10::InferenceMode guard;
  Fixture f;
  std::map<std::string, at::Tensor> before;
  for (const auto& s : f.model->sites()) before[s.name] = f.model->siteWeight(s.name);
  qs::algo::PrecisionEmulator emu(*f.model);
  emu.apply(qs::quant::parsePrecisionConfig(kMlpBfp, "p.yaml"));
  const auto bfp = qs::quant::BfpOptions().withMantissaWidth(4);
  int changed = 0;
  for (const auto& s : f.model->sites()) {
    const at::Tensor now = f.model->siteWeight(s.name);
    if (s.name.find(".mlp.") != std::string::npos) {
      EXPECT_TRUE(at::equal(now, qs::quant::quantizeBfp(before[s.name], bfp))) << s.name;
      EXPECT_FALSE(at::equal(now, before[s.name])) << s.name;  // m=4 is coarse enough to change every matrix
      ++changed;
    } else {
      EXPECT_TRUE(at::equal(now, before[s.name])) << s.name;
    }
  }
  EXPECT_EQ(changed, 2 * 3);  // gate, up, down in each of 2 layers
  emu.restore();
  for (const auto& s : f.model->sites()) EXPECT_TRUE(at::equal(f.model->siteWeight(s.name), before[s.name])) << s.name;
}

TEST(PrecisionEval, InputsGoThroughTheirSiteFormatAndRestoreIsExact) {
  c10::InferenceMode guard;
  Fixture f;
  const at::Tensor fp = f.model->forward(f.ids);
  // Reference: the same inputs quantized by a hand-installed transform that names the formats
  // itself (weights quantized by hand as well).
  const auto bfp = qs::quant::BfpOptions().withMantissaWidth(4);
  const auto e4m3 = qs::quant::MinifloatOptions::e4m3();
  std::map<std::string, at::Tensor> orig;
  for (const auto& s : f.model->sites()) orig[s.name] = f.model->siteWeight(s.name);
  for (const auto& s : f.model->sites())
    if (s.name.find(".mlp.") != std::string::npos) f.model->setSiteWeight(s.name, qs::quant::quantizeBfp(orig[s.name], bfp));
  f.model->setInputTransform([&](const std::string& site, const at::Tensor& x) {
    if (site.find(".mlp.") != std::string::npos) return qs::quant::quantizeBfp(x, bfp);
    if (site == "layers.1.self_attn.o_proj") return qs::quant::quantizeMinifloat(x, e4m3);
    return x;
  });
  const at::Tensor expected = f.model->forward(f.ids);
  f.model->setInputTransform({});
  for (const auto& [name, w] : orig) f.model->setSiteWeight(name, w);
  ASSERT_TRUE(at::equal(f.model->forward(f.ids), fp));

  std::string yaml = std::string(kMlpBfp) + "    - name: layers.1.self_attn.o_proj\n      input: e4m3\n";
  qs::algo::PrecisionEmulator emu(*f.model);
  emu.apply(qs::quant::parsePrecisionConfig(yaml, "p.yaml"));
  const at::Tensor got = f.model->forward(f.ids);
  EXPECT_TRUE(at::equal(got, expected));
  EXPECT_FALSE(at::allclose(got, fp, 1e-3, 1e-3));
  // A second config replaces the first (weights from the originals, not re-quantized twice).
  emu.apply(qs::quant::parsePrecisionConfig("rules: []", "empty.yaml"));
  EXPECT_TRUE(at::equal(f.model->forward(f.ids), fp));
  emu.apply(qs::quant::parsePrecisionConfig(yaml, "p.yaml"));
  EXPECT_TRUE(at::equal(f.model->forward(f.ids), expected));
  emu.restore();
  EXPECT_TRUE(at::equal(f.model->forward(f.ids), fp));
}

TEST(PrecisionEval, SummaryBitsMatchHandArithmetic) {
  Fixture f;
  // Tiny LLaMA: hidden 64, ffn 128, 4 heads of 16, 2 kv heads -> q 64x64, k/v 32x64, o 64x64,
  // gate/up 128x64, down 64x128 per layer.
  const LayerPrecision lp = qs::quant::parsePrecisionConfig(
      "precision:\n  default: {weight: 'bfp(m=8,e=8,block=16)'}\n  rules:\n"
      "    - {name: 'layers.*.mlp.*', weight: 'bfp(m=4,e=8,block=16)', input: 'bfp(m=4,e=8,block=32)'}\n"
      "    - {name: 'layers.9.*.*', weight: none}\n",
      "p.yaml");
  const auto s = qs::algo::summarizePrecision(f.model->sites(), lp);
  const double attn = 64 * 64 + 2 * 32 * 64 + 64 * 64, mlp = 3 * 128 * 64;
  // attention at 8 + 8/16 bits, mlp at 4 + 8/16 bits
  EXPECT_DOUBLE_EQ(s.weightBits, (attn * 8.5 + mlp * 4.5) / (attn + mlp));
  EXPECT_EQ(s.weightElements, static_cast<int64_t>(2 * (attn + mlp)));
  // inputs: attention none (32 bits) over in-features 64*4, mlp 4 + 8/32 over 64+64+128
  EXPECT_DOUBLE_EQ(s.inputBits, (4 * 64 * 32.0 + (64 + 64 + 128) * 4.25) / (4 * 64 + 64 + 64 + 128));
  ASSERT_EQ(s.unusedRules.size(), 1u);  // layers.9 does not exist
  EXPECT_EQ(s.unusedRules[0], 1);
  EXPECT_NE(s.describe().find("weights 5.83 bits"), std::string::npos) << s.describe();
}

}  // namespace
