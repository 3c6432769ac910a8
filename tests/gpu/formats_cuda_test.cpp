// The number-format kernels (minifloat, denormalised minifloat, BFP, block minifloat) against
// their CPU twins in core/quant: the kernels repeat the twins' float32 operations (exponents from
// frexp, powers of two from bit patterns, ties to even), so results must be bit-identical
// (compared as bit patterns, so -0 != +0; any NaN matches any NaN), in place and out of place, for fp32,
// fp16 and bf16 inputs. *_CUDA tests skip without a device.
#include "gpu/quant/formats.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "core/quant/format_block.h"
#include "core/quant/format_minifloat.h"
#include "core/quant/format_spec.h"
#include "tests/support/cuda_support.h"

#ifdef QS_GPU_TORCH
#include "core/quant/format_dispatch.h"
#include "gpu/register.h"
#endif

namespace qs::gpu {
namespace {

ElementType typeOf(const at::Tensor& t) {
  if (t.scalar_type() == at::kHalf) return ElementType::F16;
  if (t.scalar_type() == at::kBFloat16) return ElementType::BF16;
  return ElementType::F32;
}

// Values that exercise every branch: zeros of both signs, subnormals of float32 and of the
// formats, exact ties, powers of two, saturation, inf and NaN, plus random magnitudes.
at::Tensor probe(int64_t rows, int64_t cols, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor x = at::randn({rows, cols}) * at::exp2(at::randint(-12, 12, {rows, cols}).to(at::kFloat));
  const float specials[] = {0.f, -0.f, 1.5f, 2.5f, -3.5f, 0.75f, 1.f, 448.f, 500.f, 1e-40f, -1e-41f, 6e-5f,
                            std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), 1.0625f, 0.09375f};
  at::Tensor flat = x.view({-1});
  for (int64_t i = 0; i < 17 && i < flat.numel(); ++i) flat[i * 7 % flat.numel()] = specials[i];
  return x;
}

at::Tensor bits(const at::Tensor& t) {
  return t.scalar_type() == at::kFloat ? t.view(at::kInt).to(at::kLong) : t.view(at::kShort).to(at::kLong);
}

// Runs fn(dx, dy) on a device copy of x; inPlace passes the same buffer twice.
template <class F>
at::Tensor onDevice(const at::Tensor& x, bool inPlace, F fn) {
  const size_t bytes = x.numel() * x.element_size();
  void *dx = nullptr, *dy = nullptr;
  EXPECT_EQ(cudaMalloc(&dx, bytes), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&dy, bytes), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(dx, x.data_ptr(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
  void* target = inPlace ? dx : dy;
  const cudaError_t err = fn(dx, target);
  EXPECT_EQ(err, cudaSuccess) << cudaGetErrorString(err);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  at::Tensor out = at::empty_like(x);
  EXPECT_EQ(cudaMemcpy(out.data_ptr(), target, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  cudaFree(dx);
  cudaFree(dy);
  return out;
}

// Bit patterns equal, except that any two NaNs match (their payload and sign are not specified:
// the GPU produces the canonical 0x7fffffff, x86 the "default NaN" or the input's).
void expectSameBits(const at::Tensor& gpu, const at::Tensor& cpu, const std::string& what) {
  const at::Tensor bothNan = at::logical_and(at::isnan(gpu.to(at::kFloat)), at::isnan(cpu.to(at::kFloat)));
  const at::Tensor bad = at::logical_and(at::ne(bits(gpu), bits(cpu)), at::logical_not(bothNan));
  EXPECT_EQ(bad.sum().item<int64_t>(), 0) << what << ": first mismatch at flat index "
                                          << (bad.any().item<bool>() ? bad.view({-1}).nonzero()[0].item<int64_t>() : -1);
}

void checkMinifloat(const quant::MinifloatOptions& o, const at::Tensor& x) {
  const FloatGrid g{o.minExponent(), o.maxExponent(), o.mantissaWidth, static_cast<float>(o.maxValue()),
                    o.minExponent()};
  for (bool inPlace : {false, true}) {
    const at::Tensor gpu = onDevice(x, inPlace, [&](void* dx, void* dy) {
      return quantizeFloatGrid(dx, dy, typeOf(x), x.numel(), g);
    });
    expectSameBits(gpu, quant::quantizeMinifloat(x, o),
                   quant::NumberFormat(o).toString() + " " + c10::toString(x.scalar_type()));
  }
}

TEST(Formats_CUDA, MinifloatMatchesCpuTwin) {
  QS_REQUIRE_CUDA();
  const at::Tensor x = probe(64, 257, 41);
  for (const auto& o : {quant::MinifloatOptions::e4m3(), quant::MinifloatOptions::e5m2(),
                        quant::MinifloatOptions::e3m2(), quant::MinifloatOptions().withExponentWidth(3).withMantissaWidth(0),
                        quant::MinifloatOptions().withExponentWidth(5).withMantissaWidth(10)})
    checkMinifloat(o, x);
  for (auto dt : {at::kHalf, at::kBFloat16}) checkMinifloat(quant::MinifloatOptions::e4m3(), x.to(dt));
}

TEST(Formats_CUDA, DenormMinifloatMatchesCpuTwin) {
  QS_REQUIRE_CUDA();
  const at::Tensor x = probe(32, 300, 42);
  for (const auto& o : {quant::DenormMinifloatOptions(), quant::DenormMinifloatOptions().withExponentWidth(3).withMantissaWidth(1)}) {
    const FloatGrid g{o.minExponent() - 1, o.maxExponent() - 1, o.mantissaWidth - 1, static_cast<float>(o.maxValue()),
                      o.minExponent()};
    const at::Tensor gpu = onDevice(x, false, [&](void* dx, void* dy) {
      return quantizeFloatGrid(dx, dy, ElementType::F32, x.numel(), g);
    });
    expectSameBits(gpu, quant::quantizeDenormMinifloat(x, o), quant::NumberFormat(o).toString());
  }
}

void checkBlock(const quant::NumberFormat& fmt, const BlockGrid& g, const at::Tensor& x) {
  for (bool inPlace : {false, true}) {
    const at::Tensor gpu = onDevice(x, inPlace, [&](void* dx, void* dy) {
      return quantizeBlockGrid(dx, dy, typeOf(x), x.size(0), x.size(1), g);
    });
    expectSameBits(gpu, quant::quantize(x, fmt), fmt.toString() + " " + c10::toString(x.scalar_type()));
  }
}

TEST(Formats_CUDA, BfpMatchesCpuTwin) {
  QS_REQUIRE_CUDA();
  const at::Tensor x = probe(48, 200, 43);  // 200 = 12 blocks of 16 + a ragged block of 8
  for (int m : {2, 4, 8, 24})
    for (int e : {4, 8})
      for (int64_t bs : {16, 32, 200}) {
        const auto o = quant::BfpOptions().withMantissaWidth(m).withSharedExponentWidth(e).withBlockSize(static_cast<int>(bs));
        if (m == 24 && e == 8) continue;  // below float32's smallest subnormal: rejected by validate()
        try {
          o.validate();
        } catch (const std::exception&) {
          continue;
        }
        checkBlock(o, {BlockKind::Bfp, m, 0, quant::sharedExponentMin(e), quant::sharedExponentMax(e), bs}, x);
      }
  const auto o = quant::BfpOptions().withMantissaWidth(5);
  checkBlock(o, {BlockKind::Bfp, 5, 0, quant::sharedExponentMin(8), quant::sharedExponentMax(8), 16},
             x.to(at::kHalf));
}

TEST(Formats_CUDA, BlockMinifloatMatchesCpuTwin) {
  QS_REQUIRE_CUDA();
  const at::Tensor x = probe(40, 96, 44);
  for (int e : {1, 2, 4})
    for (int m : {0, 1, 3}) {
      const auto o = quant::BlockMinifloatOptions().withExponentWidth(e).withMantissaWidth(m);
      checkBlock(o, {BlockKind::BlockMinifloat, m, e, quant::sharedExponentMin(8), quant::sharedExponentMax(8), 16}, x);
    }
}

#ifdef QS_GPU_TORCH
TEST(Formats_CUDA, DispatchUsesKernelsInAndOutOfPlace) {
  QS_REQUIRE_CUDA();
  ASSERT_GE(registerKernels(), 4);
  ASSERT_NE(quant::cudaFormat(), nullptr);
  const at::Tensor x = probe(8, 4 * 64, 45).view({8, 4, 64});
  for (const char* text : {"e4m3", "bfp(m=5,e=8,block=16,axis=-1)", "bfp(m=4,e=8,block=8,axis=1)",
                           "block_minifloat(e=2,m=3,se=8,block=16,axis=-1)", "int(bits=4,sym=0,granularity=per_token)"}) {
    quant::NumberFormat fmt;
    try {
      fmt = quant::NumberFormat::parse(text);
    } catch (const std::exception& e) {
      ADD_FAILURE() << text << ": " << e.what();
      continue;
    }
    const at::Tensor cpu = quant::quantize(x, fmt);
    expectSameBits(quant::quantizeDispatch(x.cuda(), fmt).cpu(), cpu, std::string(text) + " out of place");
    at::Tensor inPlace = x.cuda();
    quant::quantizeDispatchInPlace(inPlace, fmt);
    expectSameBits(inPlace.cpu(), cpu, std::string(text) + " in place");
  }
}
#endif

TEST(FormatsKernel, RejectsBadArgumentsWithoutLaunching) {
  float v = 0.f;
  EXPECT_EQ(quantizeFloatGrid(&v, &v, ElementType::F32, -1, FloatGrid{-6, 8, 3, 448.f, -6}), cudaErrorInvalidValue);
  EXPECT_EQ(quantizeFloatGrid(&v, &v, ElementType::F32, 1, FloatGrid{-6, 8, 30, 448.f, -6}), cudaErrorInvalidValue);
  EXPECT_EQ(quantizeFloatGrid(nullptr, nullptr, ElementType::F32, 4, FloatGrid{-6, 8, 3, 448.f, -6}),
            cudaErrorInvalidValue);
  BlockGrid g;
  g.blockSize = 0;
  EXPECT_EQ(quantizeBlockGrid(&v, &v, ElementType::F32, 1, 1, g), cudaErrorInvalidValue);
  g.blockSize = 16;
  g.mantissaWidth = 1;
  EXPECT_EQ(quantizeBlockGrid(&v, &v, ElementType::F32, 1, 1, g), cudaErrorInvalidValue);
  EXPECT_EQ(quantizeBlockGrid(nullptr, nullptr, ElementType::F32, 0, 16, BlockGrid{}), cudaSuccess);
}

}  // namespace
}  // namespace qs::gpu
