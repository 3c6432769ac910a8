// Dispatch of the number formats (format_spec.h) to CUDA kernels (DESIGN.md seam 4): integer
// fake-quant of every granularity, minifloat, denormalised minifloat, BFP and block minifloat
// have kernels in gpu/quant/; the logarithmic and fixed-point formats run as ATen ops on any
// device. Out of place (a new tensor) or in place (x overwritten, no extra copy when x is
// contiguous and the kernel covers the format).
#pragma once
#include <ATen/core/Tensor.h>

#include "core/quant/format_spec.h"

namespace qs::quant {

// Writes quantize(x, fmt) into out (same shape and dtype as x, contiguous, on x's CUDA device;
// out may be x itself). Returns false, writing nothing, for a format it has no kernel for.
// fmt is validated and x is a float32/float16/bfloat16 CUDA tensor when it is called.
using FormatImpl = bool (*)(const at::Tensor& x, const NumberFormat& fmt, at::Tensor& out);
void registerCudaFormat(FormatImpl impl);  // nullptr removes; thread-safe
FormatImpl cudaFormat();

// quantize(x, fmt) on the best implementation for x's device (one log line per format kind when
// a CUDA tensor takes the ATen reference). Throws qs::Error naming the key for bad fmt or dtype.
at::Tensor quantizeDispatch(const at::Tensor& x, const NumberFormat& fmt);
// The same, written into x (which must be a float32/float16/bfloat16 tensor); returns x.
at::Tensor& quantizeDispatchInPlace(at::Tensor& x, const NumberFormat& fmt);

}  // namespace qs::quant
