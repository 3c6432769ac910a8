#include "core/quant/format_dispatch.h"

#include <ATen/ATen.h>

#include <atomic>

#include "core/quant/format_detail.h"
#include "core/util/fallback.h"

namespace qs::quant {
namespace {

std::atomic<FormatImpl> g_cudaImpl{nullptr};

// Validates like quantize() does, so both paths report the same qs::Error messages.
void validate(const at::Tensor& x, const NumberFormat& fmt) {
  fmt.validate();
  if (fmt.enabled()) detail::checkFloatInput(x, formatKindName(fmt.kind()));
}

// true when the kernel wrote the result into out.
bool tryKernel(const at::Tensor& x, const NumberFormat& fmt, at::Tensor& out) {
  if (!x.is_cuda() || !fmt.enabled()) return false;
  if (FormatImpl impl = cudaFormat())
    if (impl(x, fmt, out)) return true;
  log::fallbackOnce(std::string("quantize ") + formatKindName(fmt.kind()), x.device().str(), "the LibTorch reference ops");
  return false;
}

}  // namespace

void registerCudaFormat(FormatImpl impl) { g_cudaImpl.store(impl); }

FormatImpl cudaFormat() { return g_cudaImpl.load(); }

at::Tensor quantizeDispatch(const at::Tensor& x, const NumberFormat& fmt) {
  validate(x, fmt);
  if (x.is_cuda() && fmt.enabled()) {
    at::Tensor out = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
    if (tryKernel(x, fmt, out)) return out;
  }
  return quantize(x, fmt);
}

at::Tensor& quantizeDispatchInPlace(at::Tensor& x, const NumberFormat& fmt) {
  validate(x, fmt);
  if (!fmt.enabled()) return x;
  if (x.is_cuda() && x.is_contiguous() && tryKernel(x, fmt, x)) return x;
  x.copy_(quantizeDispatch(x, fmt));  // a layout the kernel cannot overwrite directly
  return x;
}

}  // namespace qs::quant
