// Device code of the one-pass channel statistics (gpu/analysis/channel_stats.h). Thread = one
// channel, block = 256 consecutive channels x one chunk of rows, so a warp reads 32 consecutive
// elements of a row (coalesced) and also owns that row's absmax over its 32 channels (one
// atomicMax per warp and row). Moments are float64 Welford/Terriberry running sums inside the
// chunk; a second kernel folds the chunks per channel with the pairwise formulas
// ChannelStats::merge uses, so the result is independent of how rows are split into chunks up to
// float64 rounding.
#pragma once
#include <cstdint>

#include "gpu/convert.cuh"

namespace qs::gpu::detail {

constexpr int kMomentThreads = 256;  // channels per block
constexpr int kMaxChunkRows = 4096;  // rows per chunk: bounds the 1/n table in shared memory

// Partial sums of every (chunk, channel), row-major [chunks, channels], plus rows per chunk.
struct MomentPartials {
  double* mean;
  double* m2;
  double* m3;
  double* m4;
  float* min;
  float* max;
  int* count;  // [chunks]
};

// Pairwise update of (n, mean, M2, M3, M4) with another set (Chan et al. 1979, Pébay 2008).
__device__ __forceinline__ void mergeMoments(double& n, double& mean, double& m2, double& m3, double& m4,
                                             double nb, double meanB, double m2B, double m3B, double m4B) {
  if (nb == 0) return;
  if (n == 0) {
    n = nb; mean = meanB; m2 = m2B; m3 = m3B; m4 = m4B;
    return;
  }
  const double na = n, nn = na + nb;
  const double delta = meanB - mean, dd = delta * delta;
  const double m4n = m4 + m4B + dd * dd * (na * nb * (na * na - na * nb + nb * nb) / (nn * nn * nn)) +
                     6.0 * dd * (na * na * m2B + nb * nb * m2) / (nn * nn) + 4.0 * delta * (na * m3B - nb * m3) / nn;
  const double m3n = m3 + m3B + dd * delta * (na * nb * (na - nb) / (nn * nn)) + 3.0 * delta * (na * m2B - nb * m2) / nn;
  m2 = m2 + m2B + dd * (na * nb / nn);
  m3 = m3n;
  m4 = m4n;
  mean = mean + delta * (nb / nn);
  n = nn;
}

template <typename T>
__global__ void channelMomentsChunk(const T* __restrict__ x, const uint8_t* __restrict__ keep, int64_t tokens,
                                    int64_t channels, int chunkRows, MomentPartials part,
                                    float* __restrict__ tokenAbsmax) {
  extern __shared__ double invN[];  // invN[k] = 1/k, k = 0..chunkRows (k = 0 unused)
  for (int k = threadIdx.x; k <= chunkRows; k += blockDim.x) invN[k] = k ? 1.0 / k : 0.0;
  __syncthreads();
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = c < channels;
  const int lane = threadIdx.x % 32;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * chunkRows;
  const int64_t t1 = t0 + chunkRows < tokens ? t0 + chunkRows : tokens;
  double mean = 0, m2 = 0, m3 = 0, m4 = 0;
  float lo = INFINITY, hi = -INFINITY;
  int n = 0;
  for (int64_t t = t0; t < t1; ++t) {
    if (keep != nullptr && keep[t] == 0) continue;  // the same row for every thread: no divergence
    const float v = active ? toFloat(x[t * channels + c]) : 0.f;
    const float a = warpMax(fabsf(v));
    // Non-negative floats order like their bit patterns, so an integer atomicMax is a float max.
    if (lane == 0 && a > 0.f) atomicMax(reinterpret_cast<unsigned int*>(tokenAbsmax + t), __float_as_uint(a));
    if (!active) continue;
    // Terriberry's one-pass update of the central moment sums.
    const double n1 = n;
    ++n;
    const double delta = static_cast<double>(v) - mean;
    const double dn = delta * invN[n];
    const double dn2 = dn * dn;
    const double term1 = delta * dn * n1;
    const double nd = n;
    m4 += term1 * dn2 * (nd * nd - 3.0 * nd + 3.0) + 6.0 * dn2 * m2 - 4.0 * dn * m3;
    m3 += term1 * dn * (nd - 2.0) - 3.0 * dn * m2;
    m2 += term1;
    mean += dn;
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  if (c == 0) part.count[blockIdx.y] = n;  // every thread of the chunk counted the same rows
  if (!active) return;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * channels + c;
  part.mean[i] = mean;
  part.m2[i] = m2;
  part.m3[i] = m3;
  part.m4[i] = m4;
  part.min[i] = lo;
  part.max[i] = hi;
}

// One thread per channel folds the chunks in order; out pointers as in ChannelMomentsOut.
__global__ void channelMomentsFold(MomentPartials part, int chunks, int64_t channels, double* mean, double* m2,
                                   double* m3, double* m4, double* mn, double* mx, int64_t* count) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  double n = 0, mu = 0, s2 = 0, s3 = 0, s4 = 0;
  float lo = INFINITY, hi = -INFINITY;
  for (int k = 0; k < chunks; ++k) {
    const int nb = part.count[k];
    if (nb == 0) continue;
    const int64_t i = static_cast<int64_t>(k) * channels + c;
    mergeMoments(n, mu, s2, s3, s4, nb, part.mean[i], part.m2[i], part.m3[i], part.m4[i]);
    lo = fminf(lo, part.min[i]);
    hi = fmaxf(hi, part.max[i]);
  }
  if (c == 0) *count = static_cast<int64_t>(n);
  if (n == 0) return;
  mean[c] = mu;
  m2[c] = s2;
  m3[c] = s3;
  m4[c] = s4;
  mn[c] = lo;
  mx[c] = hi;
}

}  // namespace qs::gpu::detail
