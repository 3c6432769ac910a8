// GPU kernels against their CPU twins (docs/BENCHMARKS.md, "GPU kernels (issue 8)"): the one-pass
// channel statistics over a [tokens, channels] activation, integer and BFP fake-quant, and one
// QuantEase sweep of a layer. Each *_CUDA benchmark synchronises the device inside the timed
// region and reports an error (not a number) where no CUDA device or no CUDA LibTorch is present;
// the *_CPU twins run everywhere. Built only when gpu/ is (nvcc found).
//
//   QS_BENCH_TOKENS / QS_BENCH_CHANNELS  activation shape (default 8192 x 4096)
//   QS_BENCH_OUT / QS_BENCH_IN           QuantEase layer shape (default 4096 x 4096)
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "core/algo/quantease.h"
#include "core/analysis/channel_moments.h"
#include "core/quant/dispatch.h"
#include "core/quant/format_dispatch.h"
#include "gpu/device.h"
#include "gpu/register.h"

#ifdef QS_GPU_TORCH
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace {

int64_t envInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : fallback;
}

// The device to time on, or an error on the state (false) when there is none.
bool onDevice(benchmark::State& state, c10::Device& device) {
#ifdef QS_GPU_TORCH
  if (qs::gpu::cudaDeviceCount() > 0) {
    static const int registered = qs::gpu::registerKernels();
    (void)registered;
    device = c10::Device(c10::kCUDA, 0);
    return true;
  }
  state.SkipWithError("no CUDA device");
#else
  state.SkipWithError("built without a CUDA LibTorch (kernels not dispatched)");
#endif
  (void)device;
  return false;
}

void sync(const c10::Device& device) {
#ifdef QS_GPU_TORCH
  if (device.is_cuda()) c10::cuda::device_synchronize();
#else
  (void)device;
#endif
}

at::Tensor activations(const c10::Device& device, at::ScalarType dtype) {
  at::manual_seed(7);
  const int64_t t = envInt("QS_BENCH_TOKENS", 8192), c = envInt("QS_BENCH_CHANNELS", 4096);
  return (at::randn({t, c}) * (at::rand({c}) * 3 + 0.1)).to(device, dtype);
}

void channelStats(benchmark::State& state, const c10::Device& device, at::ScalarType dtype) {
  const at::Tensor x = activations(device, dtype);
  for (auto _ : state) {
    const qs::analysis::BatchMoments m = qs::analysis::batchMomentsDispatch(x, {}, true);
    benchmark::DoNotOptimize(m.m4);
    sync(device);
  }
  state.SetBytesProcessed(state.iterations() * x.numel() * x.element_size());
}

void fakeQuant(benchmark::State& state, const c10::Device& device, const qs::quant::NumberFormat& fmt) {
  at::Tensor x = activations(device, at::kHalf);
  for (auto _ : state) {
    at::Tensor y = qs::quant::quantizeDispatch(x, fmt);
    benchmark::DoNotOptimize(y);
    sync(device);
  }
  state.SetBytesProcessed(state.iterations() * x.numel() * x.element_size());
}

void quantEaseSweep(benchmark::State& state, const c10::Device& device) {
  at::manual_seed(8);
  const int64_t out = envInt("QS_BENCH_OUT", 4096), in = envInt("QS_BENCH_IN", 4096);
  const at::Tensor x = at::randn({2048, in});
  const at::Tensor h = (at::matmul(x.t(), x) * (2.0 / 2048)).to(device);
  const at::Tensor w = (at::randn({out, in}) * 0.02).to(device);
  const auto opts = qs::algo::QuantEaseOptions().withBits(4).withNumIter(1);
  for (auto _ : state) {
    const qs::algo::LayerQuantResult r = qs::algo::quantizeQuantEase(w, h, opts);
    benchmark::DoNotOptimize(r.codes);
    sync(device);
  }
}

// Parsed on first use: core's format tables are statics of another translation unit.
qs::quant::NumberFormat int4PerGroup() { return qs::quant::NumberFormat::parse("int(bits=4,sym=0,granularity=per_group,group=128)"); }
qs::quant::NumberFormat bfp5() { return qs::quant::NumberFormat::parse("bfp(m=5,e=8,block=16,axis=-1)"); }

void BM_ChannelStats_CPU(benchmark::State& s) { channelStats(s, c10::kCPU, at::kFloat); }
void BM_ChannelStats_CUDA_F32(benchmark::State& s) {
  c10::Device d(c10::kCPU);
  if (onDevice(s, d)) channelStats(s, d, at::kFloat);
}
void BM_ChannelStats_CUDA_F16(benchmark::State& s) {
  c10::Device d(c10::kCPU);
  if (onDevice(s, d)) channelStats(s, d, at::kHalf);
}
void BM_FakeQuantInt4Group_CPU(benchmark::State& s) { fakeQuant(s, c10::kCPU, int4PerGroup()); }
void BM_FakeQuantInt4Group_CUDA(benchmark::State& s) {
  c10::Device d(c10::kCPU);
  if (onDevice(s, d)) fakeQuant(s, d, int4PerGroup());
}
void BM_Bfp_CPU(benchmark::State& s) { fakeQuant(s, c10::kCPU, bfp5()); }
void BM_Bfp_CUDA(benchmark::State& s) {
  c10::Device d(c10::kCPU);
  if (onDevice(s, d)) fakeQuant(s, d, bfp5());
}
void BM_QuantEaseOneSweep_CPU(benchmark::State& s) { quantEaseSweep(s, c10::kCPU); }
void BM_QuantEaseOneSweep_CUDA(benchmark::State& s) {
  c10::Device d(c10::kCPU);
  if (onDevice(s, d)) quantEaseSweep(s, d);
}

BENCHMARK(BM_ChannelStats_CPU)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ChannelStats_CUDA_F32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ChannelStats_CUDA_F16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_FakeQuantInt4Group_CPU)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_FakeQuantInt4Group_CUDA)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Bfp_CPU)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Bfp_CUDA)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_QuantEaseOneSweep_CPU)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_QuantEaseOneSweep_CUDA)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
