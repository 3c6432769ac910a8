#include "core/quant/fake_quant.h"

#include <ATen/ATen.h>

#include <string>

#include "core/util/error.h"

namespace qs::quant {
namespace {

constexpr int kMinBits = 2;
constexpr int kMaxBits = 16;  // 2^16-1 is still exact in float32, and nobody fakes wider ints

int64_t normalizedAxis(const at::Tensor& x, int chAxis) {
  return chAxis < 0 ? chAxis + x.dim() : chAxis;
}

int64_t lastDim(const at::Tensor& x) { return x.dim() == 0 ? 1 : x.size(-1); }

// The shape QuantParams have for x (documented in the header).
std::vector<int64_t> paramShape(const at::Tensor& x, const FakeQuantOptions& opts) {
  switch (opts.granularity) {
    case Granularity::PerTensor: return {};
    case Granularity::PerChannel: return {x.size(normalizedAxis(x, opts.chAxis))};
    case Granularity::PerToken: return {x.numel() / lastDim(x)};
    case Granularity::PerGroup: return {x.numel() / lastDim(x), lastDim(x) / opts.groupSize};
  }
  return {};
}

}  // namespace

const char* granularityName(Granularity g) {
  switch (g) {
    case Granularity::PerTensor: return "per_tensor";
    case Granularity::PerChannel: return "per_channel";
    case Granularity::PerGroup: return "per_group";
    case Granularity::PerToken: return "per_token";
  }
  return "?";
}

IntGrid intGrid(int bits, bool symmetric) {
  if (symmetric) return {-(int64_t{1} << (bits - 1)), (int64_t{1} << (bits - 1)) - 1};
  return {0, (int64_t{1} << bits) - 1};
}

void validateFakeQuant(const at::Tensor& x, const FakeQuantOptions& opts) {
  if (opts.bits < kMinBits || opts.bits > kMaxBits)
    throw Error("bit: " + std::to_string(opts.bits) + " is out of range " +
                std::to_string(kMinBits) + ".." + std::to_string(kMaxBits));
  if (!x.defined()) throw Error("fake_quant: the input tensor is undefined");
  const auto dt = x.scalar_type();
  if (dt != at::kFloat && dt != at::kHalf && dt != at::kBFloat16)
    throw Error(std::string("dtype: fake_quant needs a float32, float16 or bfloat16 tensor, got ") +
                c10::toString(dt));
  if (opts.granularity == Granularity::PerChannel) {
    const int64_t d = x.dim();
    if (d == 0 || opts.chAxis < -d || opts.chAxis >= d)
      throw Error("ch_axis: " + std::to_string(opts.chAxis) + " is out of range for a " +
                  std::to_string(d) + "-D tensor" +
                  (d == 0 ? std::string(" (per_channel needs at least 1 dimension)")
                          : " (valid " + std::to_string(-d) + ".." + std::to_string(d - 1) + ")"));
  }
  if (opts.granularity == Granularity::PerGroup) {
    if (opts.groupSize <= 0)
      throw Error("group_size: " + std::to_string(opts.groupSize) + " must be positive");
    if (x.dim() == 0)
      throw Error("group_size: per_group needs a tensor with at least 1 dimension");
    if (x.size(-1) % opts.groupSize != 0)
      throw Error("group_size: " + std::to_string(opts.groupSize) +
                  " does not divide the last dimension (" + std::to_string(x.size(-1)) + ")");
  }
}

at::Tensor toQuantRows(const at::Tensor& x, const FakeQuantOptions& opts) {
  const int64_t n = x.numel();
  switch (opts.granularity) {
    case Granularity::PerTensor: return x.reshape({1, n}).contiguous();
    case Granularity::PerToken: {
      const int64_t cols = lastDim(x);
      return x.reshape({cols == 0 ? 0 : n / cols, cols}).contiguous();
    }
    case Granularity::PerGroup: return x.reshape({n / opts.groupSize, opts.groupSize}).contiguous();
    case Granularity::PerChannel: {
      const int64_t axis = normalizedAxis(x, opts.chAxis);
      const int64_t ch = x.size(axis);
      const int64_t cols = ch == 0 ? 0 : n / ch;
      if (axis == 0) return x.reshape({ch, cols}).contiguous();
      return x.movedim(axis, 0).contiguous().reshape({ch, cols});
    }
  }
  return x;
}

at::Tensor fromQuantRows(const at::Tensor& rows, const at::Tensor& like, const FakeQuantOptions& opts) {
  if (opts.granularity == Granularity::PerChannel) {
    const int64_t axis = normalizedAxis(like, opts.chAxis);
    if (axis != 0) {
      std::vector<int64_t> moved(like.sizes().begin(), like.sizes().end());
      moved.erase(moved.begin() + axis);
      moved.insert(moved.begin(), like.size(axis));
      return rows.reshape(moved).movedim(0, axis).contiguous();
    }
  }
  return rows.reshape(like.sizes());
}

QuantParams paramsFromRange(const at::Tensor& loIn, const at::Tensor& hiIn, int bits, bool symmetric) {
  at::Tensor lo = loIn.to(at::kFloat);
  at::Tensor hi = hiIn.to(at::kFloat);
  at::Tensor scale, zero;
  // Divisions are tensor / tensor so every backend does one correctly rounded float32 divide,
  // exactly what the CUDA kernel does (some ATen backends turn "/ scalar" into "* (1/scalar)").
  if (symmetric) {
    const at::Tensor absmax = at::maximum(at::abs(lo), at::abs(hi));
    const double qmax = static_cast<double>(intGrid(bits, true).qmax);
    scale = at::div(absmax, at::full_like(absmax, qmax));
  } else {
    lo = at::clamp_max(lo, 0.0);
    hi = at::clamp_min(hi, 0.0);
    // An all-zero row or group (lo = hi = 0) takes AutoGPTQ's range [-1, 1]: scale 2 / (2^bits - 1)
    // and zero point round(1 / scale) in float32 (2, 3, 7, 127 for 2, 3, 4, 8 bits), so the GPTQ v1
    // format (zero - 1 stored) holds it as AutoGPTQ and GPTQModel write it; its values stay 0.
    const at::Tensor empty = at::logical_and(lo == 0, hi == 0);
    lo = at::where(empty, at::full_like(lo, -1.0), lo);
    hi = at::where(empty, at::full_like(hi, 1.0), hi);
    const double levels = static_cast<double>(intGrid(bits, false).qmax);
    scale = at::div(at::sub(hi, lo), at::full_like(hi, levels));
  }
  scale = at::where(scale == 0, at::ones_like(scale), scale);  // symmetric: an all-zero row
  zero = symmetric ? at::zeros_like(scale) : at::round(at::div(at::neg(lo), scale));
  return {scale, zero};
}

QuantParams computeParams(const at::Tensor& x, const FakeQuantOptions& opts) {
  validateFakeQuant(x, opts);
  if (x.numel() == 0) throw Error("fake_quant: cannot compute quantization params of an empty tensor");
  const at::Tensor rows = toQuantRows(x, opts).to(at::kFloat);
  QuantParams p = paramsFromRange(at::amin(rows, 1), at::amax(rows, 1), opts.bits, opts.symmetric);
  const auto shape = paramShape(x, opts);
  return {p.scale.reshape(shape), p.zero.reshape(shape)};
}

at::Tensor fakeQuant(const at::Tensor& x, const QuantParams& params, const FakeQuantOptions& opts) {
  validateFakeQuant(x, opts);
  if (x.numel() == 0) return x.clone();
  const at::Tensor rows = toQuantRows(x, opts).to(at::kFloat);
  const int64_t r = rows.size(0);
  if (!params.scale.defined() || !params.zero.defined() || params.scale.numel() != r ||
      params.zero.numel() != r)
    throw Error(std::string("fake_quant: params do not fit the tensor for ") +
                granularityName(opts.granularity) + " (expected " + std::to_string(r) +
                " scales and zero-points)");
  const at::Tensor s = params.scale.to(rows.device(), at::kFloat).reshape({r, 1});
  const at::Tensor z = params.zero.to(rows.device(), at::kFloat).reshape({r, 1});
  const IntGrid g = intGrid(opts.bits, opts.symmetric);
  at::Tensor q = at::add(at::round(at::div(rows, s)), z);
  q = at::clamp(q, static_cast<double>(g.qmin), static_cast<double>(g.qmax));
  const at::Tensor y = at::mul(at::sub(q, z), s);
  return fromQuantRows(y.to(x.scalar_type()), x, opts);
}

at::Tensor fakeQuant(const at::Tensor& x, const FakeQuantOptions& opts) {
  validateFakeQuant(x, opts);
  if (x.numel() == 0) return x.clone();
  return fakeQuant(x, computeParams(x, opts), opts);
}

}  // namespace qs::quant
