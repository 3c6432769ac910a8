#include "gpu/register.h"

#include "gpu/device.h"

#include "core/util/memory.h"

#ifdef QS_GPU_TORCH
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <string>
#include <variant>

#include "core/algo/quantease_sweep.h"
#include "core/analysis/channel_moments.h"
#include "core/quant/dispatch.h"
#include "core/quant/format_dispatch.h"
#include "core/util/error.h"
#include "gpu/algo/quantease.h"
#include "gpu/analysis/channel_stats.h"
#include "gpu/quant/fake_quant.h"
#include "gpu/quant/formats.h"
#endif

namespace qs::gpu {

#ifdef QS_GPU_TORCH
namespace {

// at::Tensor wrapper: core's row layout in, one kernel launch, core's layout back. Options
// were validated by qs::quant::fakeQuantDispatch.
at::Tensor fakeQuantCuda(const at::Tensor& x, const quant::FakeQuantOptions& opts) {
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor rows = quant::toQuantRows(x, opts);  // contiguous
  at::Tensor out = at::empty_like(rows);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const int64_t r = rows.size(0), c = rows.size(1);
  cudaError_t err = cudaSuccess;
  switch (x.scalar_type()) {
    case at::kFloat:
      err = fakeQuantPerChannelF32(rows.data_ptr<float>(), out.data_ptr<float>(), r, c, opts.bits,
                                   opts.symmetric, 0, stream);
      break;
    case at::kHalf:
      err = fakeQuantPerChannelF16(static_cast<const uint16_t*>(rows.data_ptr()),
                                   static_cast<uint16_t*>(out.data_ptr()), r, c, opts.bits,
                                   opts.symmetric, 0, stream);
      break;
    case at::kBFloat16:
      err = fakeQuantPerChannelBF16(static_cast<const uint16_t*>(rows.data_ptr()),
                                    static_cast<uint16_t*>(out.data_ptr()), r, c, opts.bits,
                                    opts.symmetric, 0, stream);
      break;
    default:
      throw Error(std::string("dtype: fake_quant needs a float32, float16 or bfloat16 tensor, got ") +
                  c10::toString(x.scalar_type()));
  }
  if (err != cudaSuccess)
    throw Error(std::string("fake_quant: CUDA kernel launch failed: ") + cudaGetErrorString(err));
  return quant::fromQuantRows(out, x, opts);
}

// One pass of the channel statistics kernel over x [N, C]; float64 results on x's device. A
// float64 x (no kernel instantiation) takes the reference ops, which are exact for it anyway.
analysis::BatchMoments channelMomentsCuda(const at::Tensor& xIn, const at::Tensor& keepIn) {
  if (xIn.scalar_type() == at::kDouble) return analysis::batchMoments(xIn, keepIn, true);
  const c10::cuda::CUDAGuard guard(xIn.device());
  const at::Tensor x = xIn.contiguous();
  const int64_t n = x.size(0), c = x.size(1);
  const auto f64 = x.options().dtype(at::kDouble);
  analysis::BatchMoments r;
  r.mean = at::empty({c}, f64);
  r.m2 = at::empty({c}, f64);
  r.m3 = at::empty({c}, f64);
  r.m4 = at::empty({c}, f64);
  r.min = at::empty({c}, f64);
  r.max = at::empty({c}, f64);
  r.tokenAbsmax = at::empty({n}, x.options().dtype(at::kFloat));
  const at::Tensor count = at::empty({1}, x.options().dtype(at::kLong));
  const size_t wsBytes = channelMomentsWorkspaceBytes(n, c);
  // float64 elements keep the scratch 8-byte aligned.
  const at::Tensor ws = at::empty({static_cast<int64_t>((wsBytes + 7) / 8)}, f64);
  const at::Tensor keep = keepIn.defined() ? keepIn.to(x.device(), at::kBool).contiguous() : at::Tensor();
  const auto* keepPtr = keep.defined() ? static_cast<const uint8_t*>(keep.data_ptr()) : nullptr;
  ChannelMomentsOut out;
  out.mean = r.mean.data_ptr<double>();
  out.m2 = r.m2.data_ptr<double>();
  out.m3 = r.m3.data_ptr<double>();
  out.m4 = r.m4.data_ptr<double>();
  out.min = r.min.data_ptr<double>();
  out.max = r.max.data_ptr<double>();
  out.tokenAbsmax = r.tokenAbsmax.data_ptr<float>();
  out.count = count.data_ptr<int64_t>();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  cudaError_t err = cudaSuccess;
  switch (x.scalar_type()) {
    case at::kFloat:
      err = channelMomentsF32(x.data_ptr<float>(), keepPtr, n, c, out, ws.data_ptr(), wsBytes, stream);
      break;
    case at::kHalf:
      err = channelMomentsF16(static_cast<const uint16_t*>(x.data_ptr()), keepPtr, n, c, out, ws.data_ptr(),
                              wsBytes, stream);
      break;
    case at::kBFloat16:
      err = channelMomentsBF16(static_cast<const uint16_t*>(x.data_ptr()), keepPtr, n, c, out, ws.data_ptr(),
                               wsBytes, stream);
      break;
    default:
      throw Error(std::string("channel statistics: no CUDA kernel for dtype ") + c10::toString(x.scalar_type()));
  }
  if (err != cudaSuccess)
    throw Error(std::string("channel statistics: CUDA kernel launch failed: ") + cudaGetErrorString(err));
  r.count = count.item<int64_t>();  // the host merge needs the row count (one sync per batch)
  if (r.count == 0) {
    r.mean = r.m2 = r.m3 = r.m4 = r.min = r.max = at::Tensor();
  }
  return r;
}

// The column loop of one QuantEase block on the device (the caller's GEMMs do the rest). All
// tensors are float32 contiguous on one device (CoordinateDescent keeps them so).
bool sweepBlockCuda(algo::SweepBlock& b) {
  // The kernel rounds every weight: relaxed sweeps and free (outlier) weights take the reference.
  if (b.cnt > kMaxSweepBlock || !b.quantize || b.free.defined() || b.zeroInside) return false;
  const c10::cuda::CUDAGuard guard(b.p.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(b.p.device().index()).stream();
  const cudaError_t err = quantEaseSweepBlockF32(
      b.p.data_ptr<float>(), b.wq.data_ptr<float>(), b.codes.data_ptr<float>(), b.delta.data_ptr<float>(),
      b.h.data_ptr<float>(), b.scale.data_ptr<float>(), b.zero.data_ptr<float>(), b.wq.size(0), b.wq.size(1), b.b0,
      static_cast<int>(b.cnt), static_cast<float>(b.grid.qmin), static_cast<float>(b.grid.qmax), stream);
  if (err != cudaSuccess)
    throw Error(std::string("quantease: CUDA sweep kernel launch failed: ") + cudaGetErrorString(err));
  return true;
}

ElementType elementType(const at::Tensor& x) {
  switch (x.scalar_type()) {
    case at::kHalf: return ElementType::F16;
    case at::kBFloat16: return ElementType::BF16;
    default: return ElementType::F32;  // validated as float32 by quantizeDispatch
  }
}

cudaError_t integerKernel(const at::Tensor& rows, at::Tensor& y, const quant::FakeQuantOptions& o, cudaStream_t st) {
  const int64_t r = rows.size(0), c = rows.size(1);
  switch (rows.scalar_type()) {
    case at::kHalf:
      return fakeQuantPerChannelF16(static_cast<const uint16_t*>(rows.data_ptr()), static_cast<uint16_t*>(y.data_ptr()),
                                    r, c, o.bits, o.symmetric, 0, st);
    case at::kBFloat16:
      return fakeQuantPerChannelBF16(static_cast<const uint16_t*>(rows.data_ptr()),
                                     static_cast<uint16_t*>(y.data_ptr()), r, c, o.bits, o.symmetric, 0, st);
    default:
      return fakeQuantPerChannelF32(rows.data_ptr<float>(), y.data_ptr<float>(), r, c, o.bits, o.symmetric, 0, st);
  }
}

// Block formats along `axis`: the kernel wants the blocks' axis last and contiguous.
bool blockFormat(const at::Tensor& x, int axis, const BlockGrid& g, at::Tensor& out, cudaStream_t st) {
  const int64_t d = x.dim();
  if (d == 0 || axis < -d || axis >= d) return false;  // the reference throws the "axis" error
  const int64_t a = axis < 0 ? axis + d : axis;
  const int64_t length = x.size(a), rows = length == 0 ? 0 : x.numel() / length;
  cudaError_t err = cudaSuccess;
  if (a == d - 1) {
    const at::Tensor xc = x.contiguous();
    err = quantizeBlockGrid(xc.data_ptr(), out.data_ptr(), elementType(x), rows, length, g, st);
  } else {
    const at::Tensor xm = x.movedim(a, d - 1).contiguous();
    at::Tensor ym = at::empty_like(xm);
    err = quantizeBlockGrid(xm.data_ptr(), ym.data_ptr(), elementType(x), rows, length, g, st);
    if (err == cudaSuccess) out.copy_(ym.movedim(d - 1, a));
  }
  if (err != cudaSuccess) throw Error(std::string("quantize: CUDA block-format kernel failed: ") + cudaGetErrorString(err));
  return true;
}

// quantize(x, fmt) into out for the kinds with kernels (format_dispatch.h).
bool formatCuda(const at::Tensor& x, const quant::NumberFormat& fmt, at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(x.device());
  const cudaStream_t st = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const bool inPlace = out.data_ptr() == x.data_ptr();
  cudaError_t err = cudaSuccess;
  switch (fmt.kind()) {
    case quant::FormatKind::Integer: {
      const auto& o = std::get<quant::FakeQuantOptions>(fmt.options);
      quant::validateFakeQuant(x, o);
      const at::Tensor rows = quant::toQuantRows(x, o);
      if (inPlace && rows.data_ptr() != x.data_ptr()) return false;  // rows had to be a copy
      at::Tensor y = inPlace ? rows : at::empty_like(rows);
      err = integerKernel(rows, y, o, st);
      if (err == cudaSuccess && !inPlace) out.copy_(quant::fromQuantRows(y, x, o));
      break;
    }
    case quant::FormatKind::Minifloat: {
      const auto& o = std::get<quant::MinifloatOptions>(fmt.options);
      const FloatGrid g{o.minExponent(), o.maxExponent(), o.mantissaWidth, static_cast<float>(o.maxValue()),
                        o.minExponent()};
      const at::Tensor xc = x.contiguous();
      err = quantizeFloatGrid(xc.data_ptr(), out.data_ptr(), elementType(x), x.numel(), g, st);
      break;
    }
    case quant::FormatKind::DenormMinifloat: {
      const auto& o = std::get<quant::DenormMinifloatOptions>(fmt.options);
      const FloatGrid g{o.minExponent() - 1, o.maxExponent() - 1, o.mantissaWidth - 1,
                        static_cast<float>(o.maxValue()), o.minExponent()};
      const at::Tensor xc = x.contiguous();
      err = quantizeFloatGrid(xc.data_ptr(), out.data_ptr(), elementType(x), x.numel(), g, st);
      break;
    }
    case quant::FormatKind::Bfp: {
      const auto& o = std::get<quant::BfpOptions>(fmt.options);
      const BlockGrid g{BlockKind::Bfp, o.mantissaWidth, 0, quant::sharedExponentMin(o.sharedExponentWidth),
                        quant::sharedExponentMax(o.sharedExponentWidth), o.blockSize};
      return blockFormat(x, o.axis, g, out, st);
    }
    case quant::FormatKind::BlockMinifloat: {
      const auto& o = std::get<quant::BlockMinifloatOptions>(fmt.options);
      const BlockGrid g{BlockKind::BlockMinifloat, o.mantissaWidth, o.exponentWidth,
                        quant::sharedExponentMin(o.sharedExponentWidth), quant::sharedExponentMax(o.sharedExponentWidth),
                        o.blockSize};
      return blockFormat(x, o.axis, g, out, st);
    }
    default:
      return false;  // fixed-point and logarithmic formats: ATen ops
  }
  if (err != cudaSuccess) throw Error(std::string("quantize: CUDA kernel failed: ") + cudaGetErrorString(err));
  return true;
}

}  // namespace
#endif

int registerKernels() {
  if (cudaDeviceCount() > 0) registerDeviceMemoryQuery(&cudaMemory);
#ifdef QS_GPU_TORCH
  if (cudaDeviceCount() == 0) return 0;
  quant::registerCudaFakeQuant(&fakeQuantCuda);
  analysis::registerCudaBatchMoments(&channelMomentsCuda);
  algo::registerCudaSweepBlock(&sweepBlockCuda);
  quant::registerCudaFormat(&formatCuda);
  return 4;
#else
  return 0;
#endif
}

}  // namespace qs::gpu
