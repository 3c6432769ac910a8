#include "core/quant/quant_spec.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "core/io/ggml_quants.h"
#include "core/quant/option_parse.h"
#include "core/util/error.h"
#include "core/util/strings.h"

namespace qs::quant {
namespace {

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

Observer parseObserver(const std::string& v) {
  const std::string l = str::toLower(v);
  if (l == "minmax" || l == "minmaxobserver") return Observer::MinMax;
  if (l == "mse" || l == "mseobserver") return Observer::Mse;
  if (l == "percentile" || l == "percentileobserver") return Observer::Percentile;
  if (l == "ggml" || l == "ggmlobserver") return Observer::Ggml;
  if (l == "ggml_k" || l == "ggmlk") return Observer::GgmlK;
  throw Error("observer: '" + v + "' is not supported (minmax/MinMaxObserver, mse/MSEObserver, "
              "percentile/PercentileObserver, ggml, ggml_k)");
}

// llama.cpp's Q4_0/Q5_0/Q8_0 block scale for each row (a block of 32), rounded to fp16 as the GGUF
// file stores it, so the codes chosen on it are exactly what the file holds: (code - zero) * d.
QuantParams ggmlParams(const at::Tensor& rows, int bits) {
  at::Tensor d;
  if (bits == 8) {
    d = at::div(at::amax(rows.abs(), 1), 127.0);
  } else {
    const at::Tensor signedMax = rows.gather(1, rows.abs().argmax(1, /*keepdim=*/true)).squeeze(1);
    d = at::div(signedMax, static_cast<double>(-(1 << (bits - 1))));
  }
  d = d.to(at::kHalf).to(at::kFloat);
  d = at::where(d == 0, at::ones_like(d), d);  // an all-zero block is 0 on any scale; 1 keeps codes finite
  return {d.contiguous(), at::full_like(d, static_cast<float>(1 << (bits - 1)))};
}

// llama.cpp's Q4_K/Q5_K (groups of 32) or Q2_K/Q3_K/Q6_K (groups of 16) grid: rows are groups in
// row-major order, 256 / group of them a super-block of one output row (observeGroups' view of a
// weight whose columns fill 256s).
QuantParams ggmlKParams(const at::Tensor& rows, int bits) {
  const int64_t g = ggmlKGroupSize(bits), per = 256 / g;
  if (rows.size(1) != g || rows.size(0) % per != 0)
    throw Error("observer: ggml_k needs whole super-blocks of 256 columns (" + std::to_string(per) + " groups of " +
                std::to_string(g) + "); got rows of " + std::to_string(rows.size(1)) + " in " +
                std::to_string(rows.size(0)) + " groups");
  const at::Tensor x = rows.to(at::kCPU).contiguous();  // ggml's scalar rule runs on the host
  at::Tensor scale = at::empty({rows.size(0)}, at::kFloat), minimum = at::empty({rows.size(0)}, at::kFloat);
  const uint32_t type = bits == 2   ? io::ggml::Q2_K
                        : bits == 3 ? io::ggml::Q3_K
                        : bits == 4 ? io::ggml::Q4_K
                        : bits == 5 ? io::ggml::Q5_K
                                    : io::ggml::Q6_K;
  for (int64_t b = 0; b < rows.size(0) / per; ++b)
    io::ggmlKGrid(type, x.data_ptr<float>() + b * 256, scale.data_ptr<float>() + b * per,
                  minimum.data_ptr<float>() + b * per);
  return {scale.to(rows.device()), at::div(minimum, scale).to(rows.device())};
}

// GPTQ's --mse search: shrink [lo, hi] by p = 1 - i/grid and keep, per row, the p with the
// smallest sum |x - q(x)|^norm.
QuantParams mseSearch(const at::Tensor& rows, const QuantSpec& spec) {
  at::Tensor lo = at::clamp_max(at::amin(rows, 1), 0.0);
  at::Tensor hi = at::clamp_min(at::amax(rows, 1), 0.0);
  if (spec.symmetric) {
    hi = at::maximum(at::abs(lo), hi);
    lo = at::neg(hi);
  }
  QuantParams best = paramsFromRange(lo, hi, spec.bits, spec.symmetric);
  at::Tensor bestErr = at::full({rows.size(0)}, std::numeric_limits<float>::infinity(), rows.options());
  const int steps = static_cast<int>(spec.mseMaxShrink * spec.mseGrid);
  for (int i = 0; i < steps; ++i) {
    const double p = 1.0 - static_cast<double>(i) / spec.mseGrid;
    QuantParams c = paramsFromRange(at::mul(lo, p), at::mul(hi, p), spec.bits, spec.symmetric);
    const at::Tensor s = c.scale.unsqueeze(1), z = c.zero.unsqueeze(1);
    const at::Tensor q = dequantizeCodes(quantizeCodes(rows, s, z, spec), s, z);
    const at::Tensor err = at::sum(at::pow(at::abs(at::sub(q, rows)), spec.mseNorm), 1);
    const at::Tensor better = err < bestErr;
    bestErr = at::where(better, err, bestErr);
    best.scale = at::where(better, c.scale, best.scale);
    best.zero = at::where(better, c.zero, best.zero);
  }
  return best;
}

}  // namespace

const char* observerName(Observer o) {
  switch (o) {
    case Observer::MinMax: return "minmax";
    case Observer::Mse: return "mse";
    case Observer::Percentile: return "percentile";
    case Observer::Ggml: return "ggml";
    case Observer::GgmlK: return "ggml_k";
  }
  return "?";
}

void QuantSpec::validate() const {
  if (!((bits >= 2 && bits <= 8) || bits == 16))
    throw Error("bit: " + std::to_string(bits) + " is not supported (2..8, or 16 = not quantized)");
  if (chAxis != 0 && chAxis != -1)
    throw Error("ch_axis: " + std::to_string(chAxis) +
                " is not supported for weights (0 = per output channel, -1 = per tensor)");
  if (str::toLower(quantizer) != "fixedfakequantize" && str::toLower(quantizer) != "fixed")
    throw Error("quantizer: '" + quantizer + "' is not supported (FixedFakeQuantize: uniform integer)");
  if (groupSize == 0 || groupSize < -1)
    throw Error("group_size: " + std::to_string(groupSize) + " must be positive, or -1 for whole rows");
  if (groupSize > 0 && chAxis == -1)
    throw Error("group_size: groups split output channels, so they need ch_axis 0 (got ch_axis -1)");
  if (staticGroups && groupSize <= 0)
    throw Error("static_groups: needs a group_size (static groups fix per-group params before GPTQ)");
  if (actOrder && chAxis == -1 && groupSize > 0)
    throw Error("act_order: per-tensor quantization has no groups to reorder");
  if (observer == Observer::Mse) {
    if (!(mseMaxShrink > 0 && mseMaxShrink < 1))
      throw Error("mse_maxshrink: " + fmt(mseMaxShrink) + " must lie in (0, 1)");
    if (mseGrid <= 0) throw Error("mse_grid: " + std::to_string(mseGrid) + " must be positive");
    if (!(mseNorm > 0)) throw Error("mse_norm: " + fmt(mseNorm) + " must be positive");
  }
  if (observer == Observer::Percentile && !(percentile > 0.5 && percentile <= 1.0))
    throw Error("percentile: " + fmt(percentile) + " must lie in (0.5, 1]");
  if (observer == Observer::Ggml && bits < 16) {
    if (bits != 4 && bits != 5 && bits != 8)
      throw Error("observer: ggml is llama.cpp's Q4_0, Q5_0 or Q8_0 grid: bit must be 4, 5 or 8 (got " +
                  std::to_string(bits) + ")");
    if (groupSize != 32 || symmetric || chAxis != 0)
      throw Error("observer: ggml is llama.cpp's block grid: it needs group_size 32, symmetric false and ch_axis 0 "
                  "(qscope quantize --target gguf:Q4_0 sets them)");
    if (actOrder && !staticGroups)
      throw Error("act_order: a llama.cpp grid's blocks are 32 consecutive columns; with observer ggml act_order "
                  "needs static_groups");
  }
  if (observer == Observer::GgmlK && bits < 16) {
    if (bits < 2 || bits > 6)
      throw Error("observer: ggml_k is llama.cpp's Q2_K, Q3_K, Q4_K, Q5_K or Q6_K grid: bit must be 2 to 6 (got " +
                  std::to_string(bits) + ")");
    const int group = ggmlKGroupSize(bits);
    if (groupSize != group || symmetric || chAxis != 0 || !staticGroups)
      throw Error("observer: ggml_k is llama.cpp's K-quant grid: it needs group_size " + std::to_string(group) +
                  " (for bit " + std::to_string(bits) + "), symmetric false, ch_axis 0 and static_groups true "
                  "(qscope quantize --target gguf:Q4_K sets them)");
  }
}

void QuantSpec::validateFor(int64_t outFeatures, int64_t inFeatures) const {
  validate();
  if (outFeatures <= 0 || inFeatures <= 0)
    throw Error("weight: shape [" + std::to_string(outFeatures) + ", " + std::to_string(inFeatures) +
                "] has no elements");
}

void QuantSpec::set(const std::string& key, const std::string& value) {
  if (key == "bit" || key == "bits") bits = parseInt(key, value);
  else if (key == "symmetric") symmetric = parseBool(key, value);
  else if (key == "ch_axis") chAxis = parseInt(key, value);
  else if (key == "quantizer") quantizer = value;
  else if (key == "observer") observer = parseObserver(value);
  else if (key == "group_size") groupSize = parseInt(key, value);
  else if (key == "act_order") actOrder = parseBool(key, value);
  else if (key == "static_groups") staticGroups = parseBool(key, value);
  else if (key == "mse_maxshrink") mseMaxShrink = parseDouble(key, value);
  else if (key == "mse_grid") mseGrid = parseInt(key, value);
  else if (key == "mse_norm") mseNorm = parseDouble(key, value);
  else if (key == "percentile") percentile = parseDouble(key, value);
  else
    throw Error(key + ": unknown weight quantization key (known: bit, symmetric, ch_axis, quantizer, "
                      "observer, group_size, act_order, static_groups, mse_maxshrink, mse_grid, mse_norm, "
                      "percentile)");
}

std::map<std::string, std::string> QuantSpec::toMap() const {
  return {{"bit", std::to_string(bits)},
          {"symmetric", symmetric ? "true" : "false"},
          {"ch_axis", std::to_string(chAxis)},
          {"quantizer", quantizer},
          {"observer", observerName(observer)},
          {"group_size", std::to_string(groupSize)},
          {"act_order", actOrder ? "true" : "false"},
          {"static_groups", staticGroups ? "true" : "false"},
          {"mse_maxshrink", fmt(mseMaxShrink)},
          {"mse_grid", std::to_string(mseGrid)},
          {"mse_norm", fmt(mseNorm)},
          {"percentile", fmt(percentile)}};
}

QuantSpec QuantSpec::fromMap(const std::map<std::string, std::string>& values) {
  QuantSpec s;
  for (const auto& [k, v] : values) s.set(k, v);
  s.validate();
  return s;
}

QuantParams observeRows(const at::Tensor& rowsIn, const QuantSpec& spec) {
  if (rowsIn.dim() != 2 || rowsIn.numel() == 0)
    throw Error("observer: needs a non-empty [rows, columns] tensor");
  const at::Tensor rows = rowsIn.to(at::kFloat);
  switch (spec.observer) {
    case Observer::MinMax:
      return paramsFromRange(at::amin(rows, 1), at::amax(rows, 1), spec.bits, spec.symmetric);
    case Observer::Mse: return mseSearch(rows, spec);
    case Observer::Ggml: return ggmlParams(rows, spec.bits);
    case Observer::GgmlK: return ggmlKParams(rows, spec.bits);
    case Observer::Percentile: {
      // Sorted rows with linear interpolation (numpy's default); at::quantile refuses rows of
      // more than 2^24 elements, which a per-tensor 4096x4096 weight reaches.
      const at::Tensor sorted = std::get<0>(at::sort(rows, 1));
      const int64_t n = rows.size(1);
      auto at_level = [&](double level) {
        const double pos = level * static_cast<double>(n - 1);
        const int64_t i0 = static_cast<int64_t>(std::floor(pos));
        const int64_t i1 = std::min(i0 + 1, n - 1);
        const double f = pos - static_cast<double>(i0);
        return at::add(at::mul(sorted.select(1, i0), 1.0 - f), at::mul(sorted.select(1, i1), f));
      };
      return paramsFromRange(at_level(1.0 - spec.percentile), at_level(spec.percentile), spec.bits,
                             spec.symmetric);
    }
  }
  return {};
}

QuantParams observeGroups(const at::Tensor& wIn, const QuantSpec& spec) {
  if (wIn.dim() != 2 || wIn.numel() == 0) throw Error("weight: expected a non-empty 2-D [out, in] tensor");
  const at::Tensor w = wIn.to(at::kFloat);
  const int64_t out = w.size(0), in = w.size(1);
  if (spec.chAxis == -1) {
    const QuantParams p = observeRows(w.reshape({1, -1}), spec);
    return {p.scale.expand({out}).reshape({out, 1}).contiguous(), p.zero.expand({out}).reshape({out, 1}).contiguous()};
  }
  if (!spec.grouped()) {
    const QuantParams p = observeRows(w, spec);
    return {p.scale.reshape({out, 1}), p.zero.reshape({out, 1})};
  }
  const int64_t g = spec.groupSize, full = in / g, rest = in - full * g;
  std::vector<at::Tensor> scales, zeros;
  if (full > 0) {
    // Full groups as rows of one [out * full, g] view: one observer call for all of them.
    const QuantParams p = observeRows(w.narrow(1, 0, full * g).reshape({out * full, g}), spec);
    scales.push_back(p.scale.reshape({out, full}));
    zeros.push_back(p.zero.reshape({out, full}));
  }
  if (rest > 0) {
    const QuantParams p = observeRows(w.narrow(1, full * g, rest).contiguous(), spec);
    scales.push_back(p.scale.reshape({out, 1}));
    zeros.push_back(p.zero.reshape({out, 1}));
  }
  return {at::cat(scales, 1).contiguous(), at::cat(zeros, 1).contiguous()};
}

at::Tensor naturalGroupIndex(int64_t inFeatures, const QuantSpec& spec) {
  if (!spec.grouped() || spec.chAxis == -1) return at::zeros({inFeatures}, at::kInt);
  return at::div(at::arange(inFeatures, at::kLong), spec.groupSize, "floor").to(at::kInt);
}

at::Tensor quantizeCodes(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero,
                         const QuantSpec& spec) {
  const IntGrid g = intGrid(spec.bits, spec.symmetric);
  // One allocation, then in place: the same operations and bits as round(x / s) + z, clamped. A
  // Q2_K/Q4_K/Q5_K grid's zero is not an integer: round(x / s + z) there (roundsWithZeroInside).
  at::Tensor q = at::div(x, scale);
  if (roundsWithZeroInside(spec)) q.add_(zero).round_();
  else q.round_().add_(zero);
  return q.clamp_(static_cast<double>(g.qmin), static_cast<double>(g.qmax));
}

at::Tensor dequantizeCodes(const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& zero) {
  return at::mul(at::sub(codes, zero), scale);
}

}  // namespace qs::quant
