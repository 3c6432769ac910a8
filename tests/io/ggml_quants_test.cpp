// core/io/ggml_quants.h and core/io/gguf_writer.h without llama.cpp (tests/llamacpp compares the
// bytes with ggml's own): half/bfloat16 conversions against LibTorch's (IEEE round-to-nearest-
// even), each block type's round trip within half a step of its grid, the GGUF writer read back
// by the GGUF reader, its plan equal to the written size, and a failing producer leaving no file.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/io/ggml_quants.h"
#include "core/io/gguf.h"
#include "core/io/gguf_writer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "tests/support/expect_error.h"
#include "tests/support/test_paths.h"

namespace qs::io {
namespace {

TEST(GgmlQuants, HalfAndBfloat16RoundLikeLibTorch) {
  at::Generator g = at::detail::createCPUGenerator(5);
  at::Tensor x = at::cat({at::randn({4000}, g) * 100, at::randn({4000}, g) * 1e-6,
                          at::tensor({0.0f, -0.0f, 65504.0f, 65520.0f, 1e9f, -1e9f, 5.96e-8f, 2.98e-8f,
                                      std::numeric_limits<float>::infinity()})});
  const at::Tensor h = x.to(at::kHalf), bf = x.to(at::kBFloat16);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = x[i].item<float>();
    uint16_t th, tb;
    std::memcpy(&th, static_cast<const char*>(h.data_ptr()) + 2 * i, 2);
    std::memcpy(&tb, static_cast<const char*>(bf.data_ptr()) + 2 * i, 2);
    ASSERT_EQ(fp32ToFp16(v), th) << v;
    ASSERT_EQ(fp32ToBf16(v), tb) << v;
    ASSERT_EQ(fp16ToFp32(th), h[i].item<float>()) << v;
    ASSERT_EQ(bf16ToFp32(tb), bf[i].item<float>()) << v;
  }
}

TEST(GgmlQuants, BlockRoundTripsStayOnTheGrid) {
  at::Generator g = at::detail::createCPUGenerator(9);
  const int64_t rows = 4, n = 512;
  at::Tensor x = at::randn({rows, n}, g);
  x.index_put_({0, at::indexing::Slice(0, 32)}, 0.0);
  const float* px = x.data_ptr<float>();
  // Largest error relative to the block's largest magnitude: half a step of the grid, plus the
  // rounding of the fp16 scale (2^-11 of up to 127 steps) and of an fp16 minimum.
  const std::vector<std::pair<uint32_t, double>> types = {{ggml::Q8_0, 0.5 / 127}, {ggml::Q4_0, 1.0 / 8},
                                                          {ggml::Q4_1, 0.5 / 15 * 2}, {ggml::Q5_0, 1.0 / 16},
                                                          {ggml::Q5_1, 0.5 / 31 * 2}, {ggml::Q6_K, 0.1},
                                                          {ggml::Q4_K, 0.15}, {ggml::Q5_K, 0.08},
                                                          {ggml::Q3_K, 0.3}, {ggml::Q2_K, 0.5}};
  for (const auto& [type, tol] : types) {
    std::vector<uint8_t> q(ggmlRowBytes(type, n) * rows);
    ggmlQuantizeRows(type, px, rows, n, q.data());
    std::vector<float> back(static_cast<size_t>(rows * n));
    ggmlDequantizeRows(type, q.data(), rows, n, back.data());
    const int64_t bs = static_cast<int64_t>(ggmlTypeTraits(type).blockSize);
    for (int64_t b = 0; b < rows * n / bs; ++b) {
      float amax = 0, err = 0;
      for (int64_t j = b * bs; j < (b + 1) * bs; ++j) {
        amax = std::max(amax, std::fabs(px[j]));
        err = std::max(err, std::fabs(back[static_cast<size_t>(j)] - px[j]));
      }
      ASSERT_LE(err, (tol * 1.15 + 1e-3) * amax + 1e-12) << ggmlTypeTraits(type).name << " block " << b;
      if (amax == 0) {
        ASSERT_EQ(err, 0.0f) << "all-zero blocks stay zero";
      }
    }
  }
  test::expectError([&] {
    std::vector<uint8_t> q(1000);
    ggmlQuantizeRows(ggml::Q4_0, px, 1, 48, q.data());
  }, "do not split into Q4_0 blocks of 32");
  test::expectError([&] {
    std::vector<uint8_t> q(1000);
    ggmlQuantizeRows(16, px, 1, 256, q.data());  // IQ2_XXS: needs an importance matrix, not written
  }, "IQ2_XXS is not supported");
  EXPECT_EQ(ggmlTypeByName("q6_k"), ggml::Q6_K);
  EXPECT_FALSE(ggmlTypeByName("Q9_0").has_value());
}

TEST(GgufWriter, WritesWhatTheReaderReadsAndPlansItsSize) {
  const std::string dir = test::tempDir("gguf-writer");
  const std::string path = dir + "/m.gguf";
  std::vector<float> a(2 * 64);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i) * 0.01f - 0.5f;
  auto fill = [](GgufWriter& w, const std::vector<float>& a) {
    w.setString("general.architecture", "llama");
    w.setU32("llama.block_count", 3);
    w.setF32("llama.rope.freq_base", 10000.0f);
    w.setBool("tokenizer.ggml.add_bos_token", true);
    w.setStringArray("tokenizer.ggml.tokens", {"<unk>", "a"});
    w.setF32Array("tokenizer.ggml.scores", {0.0f, -1.5f});
    w.setI32Array("tokenizer.ggml.token_type", {2, 1});
    w.addTensor("t.f32", ggml::F32, {2, 64}, [&a](uint8_t* d) { std::memcpy(d, a.data(), a.size() * 4); });
    w.addTensor("t.q8", ggml::Q8_0, {2, 64}, [&a](uint8_t* d) { ggmlQuantizeRows(ggml::Q8_0, a.data(), 2, 64, d); });
  };
  GgufWriter plan(GgufWriter::Plan{}, path);
  fill(plan, a);
  plan.commit();
  EXPECT_FALSE(fs::exists(path)) << "a plan writes nothing";
  GgufWriter w(path, /*force=*/false);
  fill(w, a);
  w.commit();
  EXPECT_EQ(std::filesystem::file_size(path), plan.fileBytes());

  auto f = GgufFile::open(path);
  EXPECT_EQ(f->metadata()["general.architecture"], "llama");
  EXPECT_EQ(f->metadata()["llama.block_count"], 3);
  EXPECT_EQ(f->metadata()["tokenizer.ggml.add_bos_token"], true);
  EXPECT_EQ(f->metadata()["tokenizer.ggml.scores"][1], -1.5);
  EXPECT_EQ(f->metadata()["tokenizer.ggml.token_type"][0], 2);
  const GgufTensorInfo* t = f->find("t.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(std::memcmp(f->data(*t), a.data(), a.size() * 4), 0);
  const GgufTensorInfo* q = f->find("t.q8");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->ggmlType, ggml::Q8_0);
  EXPECT_EQ(q->nbytes, 2u * 2 * 34);

  test::expectError([&] { GgufWriter again(path, false); }, "--force");
  // A producer that fails (a cancel, a read error) leaves the old file and no temporary one.
  {
    GgufWriter broken(path, /*force=*/true);
    broken.addTensor("x", ggml::F32, {4}, [](uint8_t*) { throw Error("source tensor unreadable"); });
    test::expectError([&] { broken.commit(); }, "unreadable");
  }
  EXPECT_EQ(std::filesystem::file_size(path), plan.fileBytes());
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) entries += e.path().filename() != "m.gguf";
  EXPECT_EQ(entries, 0) << "no temporary file left";
}

}  // namespace
}  // namespace qs::io
