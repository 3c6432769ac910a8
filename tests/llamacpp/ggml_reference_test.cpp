// QuantScope's GGML conversions (core/io/ggml_quants.h) against llama.cpp's own ggml — the
// libggml-base.so node-llama-cpp ships, called through tests/llamacpp/ggml_ref.c: for every type
// QuantScope writes, ggml_quantize_chunk (no importance matrix, what llama-quantize uses) gives
// byte-identical blocks, and ggml's to_float gives bit-identical floats of them. Rows mix normal
// values, outliers, all-zero and constant blocks, denormal-small values and negative extremes.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/io/ggml_quants.h"
#include "core/util/fs.h"
#include "tests/support/llamacpp.h"
#include "tests/support/test_paths.h"

namespace qs::io {
namespace {

std::vector<float> testRows(int64_t rows, int64_t n) {
  at::Generator g = at::detail::createCPUGenerator(17);
  at::Tensor x = at::randn({rows, n}, g, at::kFloat) * 0.05;
  x.index_put_({0, at::indexing::Slice(0, 32)}, 0.0);                     // an all-zero block
  x.index_put_({0, at::indexing::Slice(32, 64)}, 0.25);                   // a constant block
  x.index_put_({1, 5}, 3.0);                                              // outliers
  x.index_put_({1, 300}, -4.5);
  x.index_put_({2, at::indexing::Slice(0, 256)}, x.index({2, at::indexing::Slice(0, 256)}) * 1e-18);  // tiny
  x.index_put_({3}, -x.index({3}).abs());                                 // all negative
  x.index_put_({4, at::indexing::Slice(0, 256)}, 0.0);                    // an all-zero K super-block
  std::vector<float> v(static_cast<size_t>(rows * n));
  std::memcpy(v.data(), x.contiguous().data_ptr<float>(), v.size() * 4);
  return v;
}

template <typename T>
void writeFile(const std::string& path, const std::vector<T>& v) {
  fs::writeAtomic(path, std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)));
}

TEST(GgmlReference, QuantizedBytesAndDequantizedFloatsEqualGgmls) {
  QS_REQUIRE_LLAMACPP();
  const int64_t rows = 8, n = 512;
  const std::vector<float> x = testRows(rows, n);
  const std::string dir = test::tempDir("ggml-ref");
  writeFile(dir + "/x.f32", x);
  for (uint32_t type : {ggml::F16, ggml::BF16, ggml::Q8_0, ggml::Q4_0, ggml::Q4_1, ggml::Q5_0, ggml::Q5_1, ggml::Q4_K, ggml::Q5_K,
                        ggml::Q6_K, ggml::Q2_K, ggml::Q3_K}) {
    const std::string name = ggmlTypeTraits(type).name;
    std::vector<uint8_t> ours(ggmlRowBytes(type, n) * rows);
    ggmlQuantizeRows(type, x.data(), rows, n, ours.data());
    std::string err;
    ASSERT_EQ(test::runLlamaTool("ggml_ref", "quantize " + std::to_string(type) + " " + std::to_string(n) + " " +
                                                 test::shellQuote(dir + "/x.f32") + " " + test::shellQuote(dir + "/q.bin"), &err),
              0) << err;
    const std::string theirs = fs::readText(dir + "/q.bin");
    ASSERT_EQ(theirs.size(), ours.size()) << name;
    size_t firstDiff = ours.size();
    for (size_t i = 0; i < ours.size() && firstDiff == ours.size(); ++i)
      if (ours[i] != static_cast<uint8_t>(theirs[i])) firstDiff = i;
    EXPECT_EQ(firstDiff, ours.size()) << name << ": first differing byte " << firstDiff << " (row "
                                      << firstDiff / ggmlRowBytes(type, n) << ")";

    std::vector<float> back(static_cast<size_t>(rows * n));
    ggmlDequantizeRows(type, ours.data(), rows, n, back.data());
    writeFile(dir + "/q.bin", ours);
    ASSERT_EQ(test::runLlamaTool("ggml_ref", "dequantize " + std::to_string(type) + " " + std::to_string(n) + " " +
                                                 test::shellQuote(dir + "/q.bin") + " " + test::shellQuote(dir + "/d.f32"), &err),
              0) << err;
    const std::string deq = fs::readText(dir + "/d.f32");
    ASSERT_EQ(deq.size(), back.size() * 4) << name;
    EXPECT_EQ(std::memcmp(deq.data(), back.data(), deq.size()), 0) << name << ": dequantized floats differ";
  }
}

}  // namespace
}  // namespace qs::io
