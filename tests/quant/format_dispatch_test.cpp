// Format dispatch on the CPU: every kind takes the reference (quantize) even with a CUDA kernel
// registered; the in-place form writes exactly the out-of-place result into x; bad formats and
// dtypes fail with the reference's messages, before any kernel could run.
#include "core/quant/format_dispatch.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "core/util/error.h"

namespace qs::quant {
namespace {

bool failingImpl(const at::Tensor&, const NumberFormat&, at::Tensor&) {
  ADD_FAILURE() << "a CPU tensor reached the CUDA format kernel";
  return false;
}

TEST(FormatDispatch, CpuTensorsTakeTheReferenceInAndOutOfPlace) {
  const FormatImpl before = cudaFormat();
  registerCudaFormat(&failingImpl);
  at::manual_seed(51);
  const at::Tensor x = at::randn({6, 48}) * 3;
  for (const char* text : {"none", "e4m3", "denorm_minifloat(e=4,m=3)", "bfp(m=5,e=8,block=16,axis=-1)",
                           "block_minifloat(e=2,m=1,se=8,block=16,axis=0)", "block_log(e=3,se=8,block=8,axis=-1)",
                           "int(bits=4,sym=0,granularity=per_token)", "fixed(w=8,f=4)", "log(e=5)"}) {
    const NumberFormat fmt = NumberFormat::parse(text);
    const at::Tensor ref = quantize(x, fmt);
    EXPECT_TRUE(at::equal(quantizeDispatch(x, fmt), ref)) << text;
    at::Tensor y = x.clone();
    const at::Tensor& back = quantizeDispatchInPlace(y, fmt);
    EXPECT_EQ(back.data_ptr(), y.data_ptr()) << text;
    EXPECT_TRUE(at::equal(y, ref)) << text;
  }
  registerCudaFormat(before);
  EXPECT_EQ(cudaFormat(), before);
}

TEST(FormatDispatch, BadInputsFailWithTheReferenceMessages) {
  at::Tensor ints = at::ones({4, 16}, at::kInt);
  EXPECT_THROW(quantizeDispatch(ints, NumberFormat::parse("e4m3")), Error);
  EXPECT_THROW(quantizeDispatchInPlace(ints, NumberFormat::parse("bfp(m=5,e=8,block=16,axis=-1)")), Error);
  try {
    quantizeDispatch(at::randn({4, 16}), NumberFormat::parse("bfp(m=5,e=8,block=16,axis=3)"));
    FAIL() << "no error for an axis beyond the tensor";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("axis:", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace qs::quant
