// QuantSpec: how the weights of one Linear are quantized (width, grid, granularity, range
// observer), with key names compatible with OS+'s w_qconfig (bit, symmetric, ch_axis, quantizer,
// observer) plus GPTQ's group_size / act_order / static_groups. YAML conversion lives in
// core/config; here keys are plain strings so that file stays the only YAML user.
//
// Also the range observers the weight quantizers (core/algo) share: min/max, the MSE clipping
// search of GPTQ's --mse (shrink grid, L^p error) and percentile clipping. All produce (scale,
// zero) on fake_quant.h's integer grid, so codes, scales and zeros mean the same everywhere.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>

#include "core/quant/fake_quant.h"

namespace qs::quant {

// Range choice for (scale, zero).
enum class Observer {
  MinMax,      // the row's min and max (widened to include 0)
  Mse,         // the shrink factor of [min, max] that minimises sum |x - q(x)|^mse_norm
  Percentile,  // the percentile and 1 - percentile quantiles of the row
  Ggml,        // llama.cpp's block scale, fp16 like the GGUF file: Q4_0/Q5_0 d = the value of largest
               // magnitude / -2^(bits-1), Q8_0 d = max|x| / 127; zero 2^(bits-1) (bits 4, 5, 8, groups of 32)
  GgmlK,       // llama.cpp's Q4_K/Q5_K grid (bits 4, 5; groups of 32, 8 to a super-block of 256 columns;
               // Q2_K: bits 2, groups of 16 with 4-bit scales and minimums; Q3_K: bits 3, groups of
               // 16 with signed 6-bit scales under fp16 d, zero 4; Q6_K: bits 6, groups of 16 with
               // signed 8-bit scales, zero 32): each group's scale d*sc and minimum dmin*m as ggml's
               // quantizer chooses them (fp16 d, dmin; 6-bit sc, m for Q4_K/Q5_K); where zero =
               // minimum / scale is not an integer (Q2_K, Q4_K, Q5_K) codes are round(x / s + z).
               // Needs static groups (a super-block's d is known first).
};

const char* observerName(Observer o);  // "minmax", "mse", "percentile"

struct QuantSpec {
  int bits = 4;                              // "bit": integer width 2..8; 16 = weights not quantized
  bool symmetric = false;                    // "symmetric": signed grid with zero 0, else zero-point
  int chAxis = 0;                            // "ch_axis": 0 = per output channel, -1 = per tensor
  std::string quantizer = "FixedFakeQuantize";  // "quantizer": only uniform integer is implemented
  Observer observer = Observer::MinMax;      // "observer": how the clipping range is chosen
  int groupSize = -1;                        // "group_size": input columns per scale; -1 = whole row.
                                             // Need not divide in_features: the last group is shorter (as GPTQ allows)
  bool actOrder = false;                     // "act_order": GPTQ visits columns by decreasing H diagonal
  bool staticGroups = false;                 // "static_groups": group params fixed on W before GPTQ runs
  double mseMaxShrink = 0.8;                 // "mse_maxshrink": smallest range factor tried is 1 - this
  int mseGrid = 100;                         // "mse_grid": shrink step is 1 / mse_grid
  double mseNorm = 2.4;                      // "mse_norm": exponent p of the clipping error
  double percentile = 0.9999;                // "percentile": upper quantile level in (0.5, 1]

  QuantSpec& withBits(int v) { bits = v; return *this; }
  QuantSpec& withSymmetric(bool v) { symmetric = v; return *this; }
  QuantSpec& withChAxis(int v) { chAxis = v; return *this; }
  QuantSpec& withObserver(Observer v) { observer = v; return *this; }
  QuantSpec& withGroupSize(int v) { groupSize = v; return *this; }
  QuantSpec& withActOrder(bool v) { actOrder = v; return *this; }
  QuantSpec& withStaticGroups(bool v) { staticGroups = v; return *this; }
  QuantSpec& withMse(double maxShrink, int grid, double norm) {
    observer = Observer::Mse; mseMaxShrink = maxShrink; mseGrid = grid; mseNorm = norm; return *this;
  }
  QuantSpec& withPercentile(double v) { observer = Observer::Percentile; percentile = v; return *this; }

  bool enabled() const { return bits < 16; }
  bool grouped() const { return groupSize > 0; }
  // Groups of a weight with inFeatures columns: ceil(in / group_size) when grouped, else 1.
  int64_t numGroups(int64_t inFeatures) const {
    return grouped() && chAxis != -1 ? (inFeatures + groupSize - 1) / groupSize : 1;
  }
  // Throws qs::Error naming the key of an illegal value or combination.
  void validate() const;
  // validate() plus the checks that need the weight shape [outFeatures, inFeatures].
  void validateFor(int64_t outFeatures, int64_t inFeatures) const;

  // Sets one key from its string form ("bit" = "4", "symmetric" = "true", "observer" =
  // "MSEObserver" or "mse", ...). Unknown keys and unparsable values throw qs::Error naming the key.
  void set(const std::string& key, const std::string& value);
  // Every key with its value in the form set() reads back.
  std::map<std::string, std::string> toMap() const;
  static QuantSpec fromMap(const std::map<std::string, std::string>& values);  // set() each, validate()
};

// (scale, zero) for each row of rows [r, c] by spec's observer and grid; both float32 of shape [r].
QuantParams observeRows(const at::Tensor& rows, const QuantSpec& spec);

// (scale, zero) of each group of consecutive input columns of w [out, in]: both float32
// [out, numGroups(in)]. Groups hold group_size columns except the last, which holds the
// remaining in % group_size when group_size does not divide in (a ragged last group, observed
// on its own columns only). Per channel: [out, 1]; per tensor: one pair expanded to [out, 1].
QuantParams observeGroups(const at::Tensor& w, const QuantSpec& spec);
// Group of each of `inFeatures` columns in natural order: column / group_size (int32 [in]);
// all zeros when not grouped.
at::Tensor naturalGroupIndex(int64_t inFeatures, const QuantSpec& spec);

// Whether codes on spec's grid round with the zero inside, round(x / s + z): Q2_K/Q4_K/Q5_K grids,
// whose zero points (minimum / scale) are not integers. Every other grid rounds round(x / s) + z.
inline bool roundsWithZeroInside(const QuantSpec& spec) {
  return spec.observer == Observer::GgmlK && spec.bits != 6 && spec.bits != 3;
}
// The sub-block of llama.cpp's K grid of `bits`: 32 for Q4_K/Q5_K, 16 for Q2_K, Q3_K and Q6_K.
inline int ggmlKGroupSize(int bits) { return bits == 4 || bits == 5 ? 32 : 16; }

// Integer codes (float32 holding integers) of x on the grid (scale, zero); broadcasting shapes.
// Same arithmetic as fakeQuant: clamp(round(x / scale) + zero, qmin, qmax); where
// roundsWithZeroInside, clamp(round(x / scale + zero), qmin, qmax).
at::Tensor quantizeCodes(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero,
                         const QuantSpec& spec);
// (codes - zero) * scale.
at::Tensor dequantizeCodes(const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& zero);

}  // namespace qs::quant
