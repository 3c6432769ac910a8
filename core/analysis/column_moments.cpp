#include "core/analysis/column_moments.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/util/error.h"

namespace qs::analysis {
namespace {

// The kernels below are plain loops meant to be vectorised; -O2 (RelWithDebInfo) leaves them
// scalar and 1.5-2x slower, so they are compiled at O3 whatever the build type.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("O3")
#endif

// Columns [c0, c1) of x [R, C] (row-major float32). The inner loops run over contiguous columns
// with independent accumulators, so the compiler vectorises them; every row is read twice.
void columnRange(const float* x, int64_t R, int64_t C, int64_t c0, int64_t c1, float* mn, float* mx, double* mean,
                 double* m2, double* m4) {
  const int64_t n = c1 - c0;
  float* __restrict lo = mn + c0;
  float* __restrict hi = mx + c0;
  double* __restrict s = mean + c0;
  for (int64_t j = 0; j < n; ++j) {
    lo[j] = std::numeric_limits<float>::infinity();
    hi[j] = -std::numeric_limits<float>::infinity();
    s[j] = 0;
  }
  for (int64_t r = 0; r < R; ++r) {
    const float* __restrict row = x + r * C + c0;
    for (int64_t j = 0; j < n; ++j) {
      const float v = row[j];
      s[j] += static_cast<double>(v);
      lo[j] = v < lo[j] ? v : lo[j];
      hi[j] = v > hi[j] ? v : hi[j];
    }
  }
  const double invR = 1.0 / static_cast<double>(R);
  for (int64_t j = 0; j < n; ++j) s[j] *= invR;
  double* __restrict a2 = m2 + c0;
  double* __restrict a4 = m4 + c0;
  for (int64_t j = 0; j < n; ++j) a2[j] = a4[j] = 0;
  for (int64_t r = 0; r < R; ++r) {
    const float* __restrict row = x + r * C + c0;
    for (int64_t j = 0; j < n; ++j) {
      const double d = static_cast<double>(row[j]) - s[j];
      const double d2 = d * d;
      a2[j] += d2;
      a4[j] += d2 * d2;
    }
  }
}

// Rows [r0, r1) of x [R, C]: the same two passes along each contiguous row, in kLanes
// interleaved partial accumulators (a vectorisable shape for a reduction; the lanes are summed
// at the end in float64).
constexpr int kLanes = 8;
void rowRange(const float* x, int64_t C, int64_t r0, int64_t r1, float* mn, float* mx, double* mean, double* m2,
              double* m4) {
  const int64_t body = C - C % kLanes;
  for (int64_t r = r0; r < r1; ++r) {
    const float* __restrict row = x + r * C;
    double s[kLanes] = {};
    float lo[kLanes], hi[kLanes];
    for (int k = 0; k < kLanes; ++k) {
      lo[k] = std::numeric_limits<float>::infinity();
      hi[k] = -std::numeric_limits<float>::infinity();
    }
    for (int64_t j = 0; j < body; j += kLanes)
      for (int k = 0; k < kLanes; ++k) {
        const float v = row[j + k];
        s[k] += static_cast<double>(v);
        lo[k] = v < lo[k] ? v : lo[k];
        hi[k] = v > hi[k] ? v : hi[k];
      }
    for (int64_t j = body; j < C; ++j) {
      const float v = row[j];
      s[0] += static_cast<double>(v);
      lo[0] = v < lo[0] ? v : lo[0];
      hi[0] = v > hi[0] ? v : hi[0];
    }
    double sum = 0;
    float l = lo[0], h = hi[0];
    for (int k = 0; k < kLanes; ++k) {
      sum += s[k];
      l = std::min(l, lo[k]);
      h = std::max(h, hi[k]);
    }
    const double mu = sum / static_cast<double>(C);
    double a2[kLanes] = {}, a4[kLanes] = {};
    for (int64_t j = 0; j < body; j += kLanes)
      for (int k = 0; k < kLanes; ++k) {
        const double d = static_cast<double>(row[j + k]) - mu;
        const double d2 = d * d;
        a2[k] += d2;
        a4[k] += d2 * d2;
      }
    for (int64_t j = body; j < C; ++j) {
      const double d = static_cast<double>(row[j]) - mu;
      const double d2 = d * d;
      a2[0] += d2;
      a4[0] += d2 * d2;
    }
    double t2 = 0, t4 = 0;
    for (int k = 0; k < kLanes; ++k) {
      t2 += a2[k];
      t4 += a4[k];
    }
    mn[r] = l;
    mx[r] = h;
    mean[r] = mu;
    m2[r] = t2;
    m4[r] = t4;
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

// ChannelArrays from per-channel min/max and float64 mean and central sums over n values.
ChannelArrays arraysOf(std::vector<float> mn, std::vector<float> mx, const std::vector<double>& mean,
                       const std::vector<double>& m2, const std::vector<double>& m4, int64_t count) {
  const double n = static_cast<double>(count);
  const size_t C = mean.size();
  ChannelArrays a;
  a.mean.assign(mean.begin(), mean.end());
  a.var.resize(C);
  a.kurtosis.resize(C);
  a.absmax.resize(C);
  a.center.resize(C);
  a.halfRange.resize(C);
  for (size_t j = 0; j < C; ++j) {
    a.var[j] = static_cast<float>(m2[j] / n);
    // Pearson m4 / m2^2 with m2, m4 the central sums: n * m4 / m2^2 (NaN for a constant channel).
    a.kurtosis[j] = m2[j] > 0 ? static_cast<float>(n * m4[j] / (m2[j] * m2[j])) : std::numeric_limits<float>::quiet_NaN();
    a.absmax[j] = std::max(mx[j], -mn[j]);
    a.center[j] = static_cast<float>((static_cast<double>(mx[j]) + mn[j]) * 0.5);
    a.halfRange[j] = static_cast<float>((static_cast<double>(mx[j]) - mn[j]) * 0.5);
  }
  a.min = std::move(mn);
  a.max = std::move(mx);
  return a;
}

at::Tensor cpuFloatMatrix(const at::Tensor& x) {
  if (x.dim() != 2) throw Error("matrix statistics need a [rows, cols] matrix");
  if (!x.device().is_cpu()) throw Error("matrix statistics run on the CPU");
  return x.to(at::kFloat).contiguous();
}

}  // namespace

ChannelArrays columnArrays(const at::Tensor& xIn) {
  c10::InferenceMode guard;
  const at::Tensor x = cpuFloatMatrix(xIn);
  const int64_t R = x.size(0), C = x.size(1);
  if (R == 0 || C == 0) return {};
  std::vector<float> mn(static_cast<size_t>(C)), mx(static_cast<size_t>(C));
  std::vector<double> mean(static_cast<size_t>(C)), m2(mean.size()), m4(mean.size());
  const float* data = x.data_ptr<float>();
  // Column ranges of >= 64 columns per task: each task streams its slice of every row.
  at::parallel_for(0, C, 64, [&](int64_t c0, int64_t c1) {
    columnRange(data, R, C, c0, c1, mn.data(), mx.data(), mean.data(), m2.data(), m4.data());
  });
  return arraysOf(std::move(mn), std::move(mx), mean, m2, m4, R);
}

ChannelArrays rowArrays(const at::Tensor& xIn) {
  c10::InferenceMode guard;
  const at::Tensor x = cpuFloatMatrix(xIn);
  const int64_t R = x.size(0), C = x.size(1);
  if (R == 0 || C == 0) return {};
  std::vector<float> mn(static_cast<size_t>(R)), mx(static_cast<size_t>(R));
  std::vector<double> mean(static_cast<size_t>(R)), m2(mean.size()), m4(mean.size());
  const float* data = x.data_ptr<float>();
  at::parallel_for(0, R, 16, [&](int64_t r0, int64_t r1) {
    rowRange(data, C, r0, r1, mn.data(), mx.data(), mean.data(), m2.data(), m4.data());
  });
  return arraysOf(std::move(mn), std::move(mx), mean, m2, m4, C);
}

}  // namespace qs::analysis
