// `--target gguf:Q4_0|Q5_0|Q8_0` (observer ggml): QuantScope's block scales are exactly the fp16 d
// that ggml's own Q4_0/Q5_0/Q8_0 quantization stores (core/io/ggml_quants.cpp, itself byte-equal
// to libggml in tests/llamacpp), codes stay on the type's range, and the spec refuses settings the
// grid cannot have, naming the key. `--target gguf:Q2_K|Q3_K|Q4_K|Q5_K|Q6_K` (observer ggml_k): every
// value ggml's own K quantization gives lies on QuantScope's grid, codes chosen on it encode to
// blocks that dequantize to the grid's values, and on Q3_K and Q6_K (integer zeros) rounding to
// nearest gives ggml's own blocks.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cstring>
#include <tuple>
#include <vector>

#include "core/algo/gguf_export.h"
#include "core/algo/layer_quant.h"
#include "core/algo/quantize_config.h"
#include "core/io/ggml_quants.h"
#include "core/quant/quant_spec.h"
#include "core/model/model.h"
#include "tests/support/expect_error.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs::algo {
namespace {

TEST(GgufTarget, BlockScalesAreGgmlsFp16Scales) {
  at::Generator gen = at::detail::createCPUGenerator(11);
  at::Tensor w = at::randn({16, 256}, gen) * 0.1;
  w.index_put_({0, at::indexing::Slice(0, 32)}, 0.0);  // an all-zero block
  w.index_put_({1, 40}, 2.5);                          // a positive extreme: d < 0
  for (const auto& [target, type, offset] : std::vector<std::tuple<const char*, uint32_t, int>>{
           {"gguf:Q4_0", io::ggml::Q4_0, 0}, {"gguf:Q5_0", io::ggml::Q5_0, 0}, {"gguf:Q8_0", io::ggml::Q8_0, 0}}) {
    quant::QuantSpec spec;
    applyGridTarget(spec, target);
    spec.validate();
    EXPECT_EQ(gridTargetType(spec), std::string(target).substr(5));
    const quant::QuantParams p = quant::observeGroups(w, spec);
    ASSERT_EQ(p.scale.sizes(), (std::vector<int64_t>{16, 8}));
    std::vector<uint8_t> blocks(io::ggmlRowBytes(type, 256) * 16);
    const at::Tensor wc = w.contiguous();
    io::ggmlQuantizeRows(type, wc.data_ptr<float>(), 16, 256, blocks.data());
    const auto bytes = io::ggmlTypeTraits(type).typeSize;
    for (int64_t r = 0; r < 16; ++r)
      for (int64_t b = 0; b < 8; ++b) {
        uint16_t h;
        std::memcpy(&h, blocks.data() + (r * 8 + b) * bytes, 2);
        const float d = io::fp16ToFp32(h);
        const float ours = p.scale[r][b].item<float>();
        if (d == 0.0f) EXPECT_EQ(ours, 1.0f) << "all-zero block: scale 1 keeps codes finite";
        else EXPECT_EQ(ours, d) << target << " row " << r << " block " << b;
        EXPECT_EQ(p.zero[r][b].item<float>(), static_cast<float>(1 << (spec.bits - 1)));
      }
    const at::Tensor codes = quant::quantizeCodes(w, p.scale.repeat_interleave(32, 1), p.zero.repeat_interleave(32, 1), spec);
    EXPECT_GE(codes.min().item<float>(), 0.0f);
    EXPECT_LE(codes.max().item<float>(), static_cast<float>((1 << spec.bits) - 1));
  }
}

TEST(GgufTarget, SettingsTheGridCannotHaveAreRefused) {
  quant::QuantSpec spec;
  applyGridTarget(spec, "GGUF:q4_0");
  EXPECT_EQ(spec.bits, 4);
  EXPECT_EQ(spec.groupSize, 32);
  spec.groupSize = 128;
  test::expectError([&] { spec.validate(); }, "group_size 32");
  applyGridTarget(spec, "gguf:Q8_0");
  spec.bits = 3;
  test::expectError([&] { spec.validate(); }, "bit must be 4, 5 or 8");
  applyGridTarget(spec, "gguf:Q4_0");
  spec.actOrder = true;
  test::expectError([&] { spec.validate(); }, "act_order");
  spec.staticGroups = true;
  spec.validate();
  test::expectError([&] { applyGridTarget(spec, "gguf:IQ3_S"); }, "--target");
  applyGridTarget(spec, "gguf:Q4_K");
  EXPECT_TRUE(spec.staticGroups) << "a super-block's factors are fixed before the method runs";
  EXPECT_EQ(gridTargetType(spec), "Q4_K");
  spec.validate();
  spec.staticGroups = false;
  test::expectError([&] { spec.validate(); }, "static_groups true");
  applyGridTarget(spec, "gguf:Q5_K");
  spec.bits = 6;
  test::expectError([&] { spec.validate(); }, "group_size 16");
  spec.bits = 7;
  test::expectError([&] { spec.validate(); }, "bit must be 2 to 6");
  applyGridTarget(spec, "gguf:Q3_K");
  EXPECT_EQ(spec.groupSize, 16);
  EXPECT_EQ(gridTargetType(spec), "Q3_K");
  EXPECT_FALSE(quant::roundsWithZeroInside(spec)) << "Q3_K's zero is the integer 4";
  applyGridTarget(spec, "gguf:Q2_K");
  EXPECT_EQ(spec.bits, 2);
  EXPECT_TRUE(quant::roundsWithZeroInside(spec)) << "Q2_K's minimums are not whole steps";
  quant::QuantSpec plain;
  EXPECT_EQ(gridTargetType(plain), "");
}

TEST(GgufTarget, KGridHoldsGgmlsOwnQuantizationAndEncodesExactly) {
  at::Generator gen = at::detail::createCPUGenerator(12);
  at::Tensor w = at::randn({8, 512}, gen) * 0.05;
  w.index_put_({0, at::indexing::Slice(0, 32)}, 0.0);    // an all-zero sub-block
  w.index_put_({1, at::indexing::Slice(256, 512)}, 0.3);  // a constant super-block
  w.index_put_({2, 7}, 1.5);                               // an outlier
  const at::Tensor wc = w.contiguous();
  for (const auto& [target, type, top] : std::vector<std::tuple<const char*, uint32_t, int>>{
           {"gguf:Q4_K", io::ggml::Q4_K, 15}, {"gguf:Q5_K", io::ggml::Q5_K, 31}, {"gguf:Q6_K", io::ggml::Q6_K, 63},
           {"gguf:Q3_K", io::ggml::Q3_K, 7}, {"gguf:Q2_K", io::ggml::Q2_K, 3}}) {
    SCOPED_TRACE(target);
    quant::QuantSpec spec;
    applyGridTarget(spec, target);
    const int64_t g = spec.groupSize;
    const quant::QuantParams p = quant::observeGroups(w, spec);
    ASSERT_EQ(p.scale.sizes(), (std::vector<int64_t>{8, 512 / g}));
    EXPECT_GT(p.scale.abs().min().item<float>(), 0.0f) << "every sub-block has a step";
    if (type == io::ggml::Q6_K || type == io::ggml::Q3_K) {
      const float zero = type == io::ggml::Q6_K ? 32.0f : 4.0f;
      EXPECT_TRUE(at::equal(p.zero, at::full_like(p.zero, zero))) << "Q6_K's zero is 32, Q3_K's 4";
    }
    const at::Tensor s = p.scale.repeat_interleave(g, 1), z = p.zero.repeat_interleave(g, 1);
    // ggml's own quantization of w (byte-equal to libggml's, tests/llamacpp) lies on the grid:
    // (value + minimum) / scale is a code in range.
    std::vector<uint8_t> blocks(io::ggmlRowBytes(type, 512) * 8);
    io::ggmlQuantizeRows(type, wc.data_ptr<float>(), 8, 512, blocks.data());
    at::Tensor theirs = at::empty({8, 512}, at::kFloat);
    io::ggmlDequantizeRows(type, blocks.data(), 8, 512, theirs.data_ptr<float>());
    const at::Tensor steps = at::div(theirs, s) + z;
    EXPECT_LT((steps - steps.round()).abs().max().item<float>(), 2e-3f);
    EXPECT_GE(steps.round().min().item<float>(), 0.0f);
    EXPECT_LE(steps.round().max().item<float>(), static_cast<float>(top));
    // Codes QuantScope chooses on the grid encode to blocks that dequantize to (q - z) s.
    const at::Tensor codes = quant::quantizeCodes(w, s, z, spec).contiguous();
    EXPECT_GE(codes.min().item<float>(), 0.0f);
    EXPECT_LE(codes.max().item<float>(), static_cast<float>(top));
    const at::Tensor scales = p.scale.contiguous(), mins = at::mul(p.zero, p.scale).contiguous();
    std::vector<uint8_t> ours(blocks.size());
    io::ggmlEncodeKBlocks(type, codes.data_ptr<float>(), scales.data_ptr<float>(), mins.data_ptr<float>(), 8, 512,
                          ours.data(), "w");
    if (type == io::ggml::Q6_K || type == io::ggml::Q3_K) {
      // Integer zero: round to nearest on the grid is ggml's own rounding.
      const size_t block = io::ggmlRowBytes(type, 256);
      EXPECT_EQ(std::memcmp(ours.data() + block * 2, blocks.data() + block * 2, block * 14), 0)
          << "rows 1-7 (row 0's all-zero sub-block has a step of 1 here, 0 in ggml)";
    }
    at::Tensor back = at::empty({8, 512}, at::kFloat);
    io::ggmlDequantizeRows(type, ours.data(), 8, 512, back.data_ptr<float>());
    const at::Tensor emulated = quant::dequantizeCodes(codes, s, z);
    EXPECT_LT((back - emulated).abs().max().item<float>(), 1e-6f * w.abs().max().item<float>());
    EXPECT_LT((emulated - w).abs().max().item<float>(), type == io::ggml::Q2_K ? 0.5f : 0.2f) << "the codes are close to w";
    // Off-grid scales are refused, naming the weight.
    at::Tensor bad = scales.clone();
    bad[3][2] = bad[3][2] * 1.01f;
    test::expectError([&] {
      io::ggmlEncodeKBlocks(type, codes.data_ptr<float>(), bad.data_ptr<float>(), mins.data_ptr<float>(), 8, 512,
                            ours.data(), "w");
    }, "w: sub-block scale");
  }
}

// A K mix as the target (gguf_mix): the config takes the mix's main grid and the mix, round-trips
// through YAML and refuses a mix without its grid, naming the key; the per-site grids are the types
// llama-quantize's mix gives each matrix (gguf_export.cpp's table, itself checked tensor by tensor
// against llama-quantize in tests/llamacpp): in a 4-layer LLaMA under Q4_K_M, attn_v and ffn_down
// of layer 2 ((2 - 4 / 8) % 3 == 2) and layer 3 (>= 7 * 4 / 8) get Q6_K, every other matrix Q4_K.
TEST(GgufTarget, AMixTargetGivesEachSiteTheMixsType) {
  QuantizeConfig c;
  applyGridTarget(c, "gguf:q4_k_m");
  EXPECT_EQ(c.ggufMix, "Q4_K_M");
  EXPECT_EQ(gridTargetType(c.layer.spec), "Q4_K");
  c.validate();
  const QuantizeConfig back = parseQuantizeConfig(toYaml(c), "round trip");
  EXPECT_EQ(back.ggufMix, "Q4_K_M");
  applyGridTarget(c, "gguf:Q4_K");
  EXPECT_EQ(c.ggufMix, "") << "a plain type clears the mix";
  test::expectError([&] { parseQuantizeConfig("quantize:\n  gguf_mix: Q4_K_M\n  wbits: 3\n", "cfg.yaml"); }, "gguf_mix");
  test::expectError([&] { applyGridTarget(c, "gguf:Q4_K_L"); }, "K mix");

  const std::string dir = test::writeTinyLlama(
      test::tempDir("gguf_mix_sites"),
      test::TinyModelOptions().setLayers(4).setHidden(256).setHeads(4, 4).setFfn(512).setSeed(5));
  auto m = model::openModel(dir);
  applyGridTarget(c, "gguf:Q4_K_M");
  const auto types = ggufMixSiteTypes(*m, "Q4_K_M");
  const auto specs = ggufMixSiteSpecs(*m, "Q4_K_M", c.layer.spec);
  ASSERT_EQ(types.size(), m->sites().size());
  std::vector<std::string> q6;
  for (const auto& [site, type] : types) {
    if (type == "Q4_K") {
      EXPECT_EQ(specs.count(site), 0u) << site;
      continue;
    }
    EXPECT_EQ(type, "Q6_K") << site;
    q6.push_back(site);
    ASSERT_EQ(specs.count(site), 1u) << site;
    EXPECT_EQ(specs.at(site).bits, 6);
    EXPECT_EQ(specs.at(site).groupSize, 16);
  }
  EXPECT_EQ(q6, (std::vector<std::string>{"layers.2.mlp.down_proj", "layers.2.self_attn.v_proj", "layers.3.mlp.down_proj",
                                          "layers.3.self_attn.v_proj"}));
  // OPT has no llama.cpp architecture: the mix is refused before any work, naming the key.
  auto opt = model::openModel(test::writeTinyOpt(test::tempDir("gguf_mix_opt")));
  test::expectError([&] { ggufMixSiteSpecs(*opt, "Q4_K_M", c.layer.spec); }, "gguf_mix: llama.cpp has no");
}

// Bits per weight on a llama.cpp grid are what its blocks store: Q4_0 18 bytes per 32 (4.5),
// Q5_0 22 per 32 (5.5), Q8_0 34 per 32 (8.5), Q4_K 144 per 256 (4.5), Q5_K 176 per 256 (5.5),
// Q6_K 210 per 256 (6.5625), Q3_K 110 per 256 (3.4375), Q2_K 84 per 256 (2.625).
TEST(GgufTarget, BitsPerWeightAreTheBlocksBits) {
  at::Generator gen = at::detail::createCPUGenerator(13);
  const at::Tensor w = at::randn({8, 512}, gen) * 0.05;
  for (const auto& [target, bpw] : std::vector<std::pair<const char*, double>>{
           {"gguf:Q4_0", 4.5}, {"gguf:Q5_0", 5.5}, {"gguf:Q8_0", 8.5}, {"gguf:Q4_K", 4.5}, {"gguf:Q5_K", 5.5},
           {"gguf:Q6_K", 6.5625}, {"gguf:Q3_K", 3.4375}, {"gguf:Q2_K", 2.625}}) {
    LayerQuantOptions o;
    o.method = Method::Rtn;
    applyGridTarget(o.spec, target);
    EXPECT_DOUBLE_EQ(quantizeLayer(w, at::Tensor(), o).bitsPerWeight, bpw) << target;
  }
}

}  // namespace
}  // namespace qs::algo
