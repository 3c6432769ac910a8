// GPTQ packing (io/gptq_pack.h): bit-exact round trips for 2/3/4/8 bits including ragged groups,
// the word layout checked against AutoGPTQ's QuantLinear.pack written out by hand (4-bit: eight
// nibbles per word, low first; 3-bit: values 10 and 21 straddle the word boundaries), the v1
// zero - 1 convention, and the dequantize-on-load WeightSource; plus the atomic HF folder writer.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "core/io/gptq_pack.h"
#include "core/io/gptq_weights.h"
#include "core/io/hf_folder.h"
#include "core/io/safetensors.h"
#include "core/io/weight_source.h"
#include "core/util/fs.h"
#include "tests/support/expect_error.h"
#include "tests/support/test_paths.h"

namespace qs::io {
namespace {

at::Tensor randomCodes(int64_t rows, int64_t cols, int bits, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return at::randint(0, int64_t{1} << bits, {rows, cols}, g, at::kInt);
}

TEST(GptqPack, RoundTripsEveryWidthIncludingPartialWords) {
  for (int bits : {2, 3, 4, 8})
    for (int64_t n : {32, 64, 172, 12, 1}) {  // 172 and 12: not multiples of 32 (padded last word)
      const at::Tensor v = randomCodes(n, 5, bits, 100 + bits);
      const at::Tensor p = packBitsRows(v, bits);
      EXPECT_EQ(p.size(0), (n * bits + 31) / 32) << bits << " bits, n " << n;
      EXPECT_TRUE(at::equal(unpackBitsRows(p, bits, n), v)) << bits << " bits, n " << n;
    }
}

TEST(GptqPack, FourBitWordsMatchAutoGptqLayout) {
  // AutoGPTQ: qweight[row] |= intweight[j] << (bits * (j - i)) for the 8 values of a word.
  const at::Tensor v = randomCodes(32, 3, 4, 1);
  const at::Tensor p = packBitsRows(v, 4);
  ASSERT_EQ(p.size(0), 4);
  auto va = v.accessor<int32_t, 2>();
  auto pa = p.accessor<int32_t, 2>();
  for (int64_t word = 0; word < 4; ++word)
    for (int64_t c = 0; c < 3; ++c) {
      uint32_t expect = 0;
      for (int j = 0; j < 8; ++j) expect |= static_cast<uint32_t>(va[word * 8 + j][c]) << (4 * j);
      EXPECT_EQ(static_cast<uint32_t>(pa[word][c]), expect);
    }
}

TEST(GptqPack, ThreeBitWordsMatchAutoGptqLayout) {
  // AutoGPTQ's 3-bit pack: word 0 = values 0..9 at 3j, value 10's low 2 bits at 30; word 1 =
  // value 10's bit 2 at 0, values 11..20 at 3j + 1, value 21's low bit at 31; word 2 = value
  // 21's bits 1..2 at 0, values 22..31 at 3j + 2.
  const at::Tensor v = randomCodes(32, 2, 3, 2);
  const at::Tensor p = packBitsRows(v, 3);
  ASSERT_EQ(p.size(0), 3);
  auto va = v.accessor<int32_t, 2>();
  auto pa = p.accessor<int32_t, 2>();
  for (int64_t c = 0; c < 2; ++c) {
    auto x = [&](int i) { return static_cast<uint32_t>(va[i][c]); };
    uint32_t w0 = 0, w1 = 0, w2 = 0;
    for (int j = 0; j < 10; ++j) w0 |= x(j) << (3 * j);
    w0 |= x(10) << 30;
    w1 |= (x(10) >> 2) & 1;
    for (int j = 0; j < 10; ++j) w1 |= x(11 + j) << (3 * j + 1);
    w1 |= x(21) << 31;
    w2 |= (x(21) >> 1) & 0x3;
    for (int j = 0; j < 10; ++j) w2 |= x(22 + j) << (3 * j + 2);
    EXPECT_EQ(static_cast<uint32_t>(pa[0][c]), w0);
    EXPECT_EQ(static_cast<uint32_t>(pa[1][c]), w1);
    EXPECT_EQ(static_cast<uint32_t>(pa[2][c]), w2);
  }
}

// A grid as the quantizers produce it: codes [out, in], scales/zeros [out, groups], g_idx [in].
struct Grid {
  at::Tensor codes, scales, zeros, gIdx;
};

Grid makeGrid(int64_t out, int64_t in, int64_t group, int bits, bool symmetric, uint64_t seed, bool permuted) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  const int64_t groups = (in + group - 1) / group;
  Grid r;
  const int64_t lo = symmetric ? -(int64_t{1} << (bits - 1)) : 0;
  r.codes = at::add(at::randint(0, int64_t{1} << bits, {out, in}, g, at::kInt), lo);
  r.scales = at::add(at::rand({out, groups}, g, at::kFloat), 0.01);
  r.zeros = symmetric ? at::zeros({out, groups}) : at::randint(1, int64_t{1} << bits, {out, groups}, g, at::kFloat);
  r.gIdx = at::div(at::arange(in, at::kLong), group, "floor").to(at::kInt);
  if (permuted) r.gIdx = r.gIdx.index_select(0, at::randperm(in, g, at::kLong));
  return r;
}

at::Tensor directDequant(const Grid& g) {
  const at::Tensor idx = g.gIdx.to(at::kLong);
  return at::mul(at::sub(g.codes.to(at::kFloat), g.zeros.index_select(1, idx)), g.scales.index_select(1, idx));
}

TEST(GptqPack, DequantizeEqualsTheGridBitExactly) {
  for (int bits : {2, 3, 4, 8})
    for (bool sym : {false, true})
      for (bool perm : {false, true}) {
        // in = 172 with group 32: a ragged last group of 12 columns; out = 40: padded qzeros word.
        const Grid g = makeGrid(40, 172, 32, bits, sym, 7 + bits, perm);
        for (bool v1 : {true, false}) {
          const GptqLinear q = packGptq(g.codes, g.scales, g.zeros, g.gIdx, bits, sym, at::kFloat, v1, "site");
          EXPECT_EQ(q.qweight.sizes(), (std::vector<int64_t>{(172 * bits + 31) / 32, 40}));
          EXPECT_EQ(q.qzeros.sizes(), (std::vector<int64_t>{6, (40 * bits + 31) / 32}));
          EXPECT_EQ(q.scales.sizes(), (std::vector<int64_t>{6, 40}));
          EXPECT_TRUE(at::equal(dequantizeGptq(q, bits, v1), directDequant(g)))
              << bits << " bits sym " << sym << " perm " << perm << " v1 " << v1;
        }
      }
}

TEST(GptqPack, SymmetricUsesZeroPointHalfRangeAndV1StoresZeroMinusOne) {
  const Grid g = makeGrid(32, 64, 32, 4, /*symmetric=*/true, 3, false);
  const GptqLinear q = packGptq(g.codes, g.scales, g.zeros, g.gIdx, 4, true, at::kHalf, true, "s");
  // zero point 8 stored as 7 in every nibble: 0x77777777.
  EXPECT_TRUE(at::all(q.qzeros == static_cast<int32_t>(0x77777777)).item<bool>());
  EXPECT_EQ(q.scales.scalar_type(), at::kHalf);
}

TEST(GptqPack, ZeroPointZeroIsAnErrorInV1Only) {
  Grid g = makeGrid(32, 64, 32, 4, false, 4, false);
  g.zeros[3][1] = 0;
  test::expectError([&] { packGptq(g.codes, g.scales, g.zeros, g.gIdx, 4, false, at::kHalf, true, "layers.0.fc1"); },
                    "layers.0.fc1: 1 group(s) have zero point 0");
  const GptqLinear q = packGptq(g.codes, g.scales, g.zeros, g.gIdx, 4, false, at::kFloat, false, "s");
  EXPECT_TRUE(at::equal(dequantizeGptq(q, 4, false), directDequant(g)));
  test::expectError([&] { packGptq(g.codes, g.scales, g.zeros, g.gIdx, 5, false, at::kHalf, true, "s"); },
                    "bits: 5 is not supported by the GPTQ layout");
}

TEST(GptqWeights, FolderDequantizesOnLoad) {
  const std::string dir = test::tempDir("gptqw");
  const Grid g = makeGrid(64, 96, 32, 3, false, 9, true);
  const GptqLinear q = packGptq(g.codes, g.scales, g.zeros, g.gIdx, 3, false, at::kFloat, true, "s");
  writeSafetensors(dir + "/model.safetensors", {{"a.qweight", q.qweight}, {"a.qzeros", q.qzeros},
                                                 {"a.scales", q.scales}, {"a.g_idx", q.gIdx},
                                                 {"a.bias", at::ones({64})}});
  std::ofstream(dir + "/config.json") << R"({"model_type": "llama", "quantization_config":
      {"quant_method": "gptq", "bits": 3, "group_size": 32, "checkpoint_format": "gptq"}})";
  auto src = openWeights(dir);
  EXPECT_TRUE(src->has("a.weight"));
  EXPECT_FALSE(src->has("a.qweight"));
  EXPECT_TRUE(src->has("a.bias"));
  EXPECT_EQ(src->meta("a.weight").shape, (std::vector<int64_t>{64, 96}));
  EXPECT_TRUE(at::equal(src->load("a.weight"), directDequant(g)));
  std::ofstream(dir + "/config.json") << R"({"quantization_config": {"quant_method": "gptq", "bits": 6}})";
  test::expectError([&] { openWeights(dir); }, "key 'bits': 6 is not supported");
}

TEST(HfFolder, ShardsWithIndexAndCommitsAtomically) {
  const std::string root = test::tempDir("hff");
  const std::string dir = root + "/out";
  {
    HfFolderWriter w(dir, false, /*maxShardBytes=*/1000);
    for (int i = 0; i < 5; ++i) w.addTensor("t" + std::to_string(i), at::full({100}, static_cast<float>(i)));  // 400 B each
    w.writeJson("config.json", nlohmann::json{{"a", 1}});
    EXPECT_FALSE(std::filesystem::exists(dir)) << "nothing at the destination before commit";
    const auto files = w.commit();
    EXPECT_EQ(std::count(files.begin(), files.end(), "model-00001-of-00003.safetensors"), 1);
  }
  const auto index = nlohmann::json::parse(fs::readText(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), 2000);
  EXPECT_EQ(index["weight_map"]["t4"], "model-00003-of-00003.safetensors");
  auto src = openWeights(dir);  // the sharded folder reads back
  EXPECT_TRUE(at::equal(src->load("t3"), at::full({100}, 3.0f)));

  test::expectError([&] { HfFolderWriter again(dir, false); }, "already exists");
  {
    // Abandoned (error / cancel): neither the destination nor a temporary folder remains.
    HfFolderWriter w(root + "/gone", false);
    w.addTensor("x", at::zeros({4}));
  }
  EXPECT_FALSE(std::filesystem::exists(root + "/gone"));
  for (const auto& e : std::filesystem::directory_iterator(root))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  {
    HfFolderWriter w(dir, /*force=*/true);
    w.addTensor("only", at::ones({2}));
    w.commit();
  }
  EXPECT_TRUE(std::filesystem::exists(dir + "/model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/model.safetensors.index.json"));
}

}  // namespace
}  // namespace qs::io
