#include "core/io/ggml_quants.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/util/error.h"
#include "core/util/strings.h"

namespace qs::io {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml: below this a group is all zero
constexpr int kQkK = 256;               // K-quant super-block

uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void putHalf(uint8_t* p, float f) {
  const uint16_t h = fp32ToFp16(f);
  std::memcpy(p, &h, 2);
}
float getHalf(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16ToFp32(h);
}

// ggml's round-to-nearest through the float mantissa (ties to even), valid for |f| < 2^22.
int nearestInt(float f) {
  const float v = f + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// The value of largest magnitude in x[0, n) (the first one on ties) and that magnitude.
void signedAbsMax(const float* x, int n, float& amax, float& max) {
  amax = 0.0f;
  max = 0.0f;
  for (int j = 0; j < n; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
}

void minMax(const float* x, int n, float& mn, float& mx) {
  mn = FLT_MAX;
  mx = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    mn = std::min(mn, x[j]);
    mx = std::max(mx, x[j]);
  }
}

// Symmetric 4/5-bit blocks of 32 (Q4_0, Q5_0): d = max / -2^(bits-1), codes trunc(x/d + 2^(bits-1) + .5).
template <int kBits>
void quantizeSym32(const float* x, uint8_t* b) {
  constexpr int half = 1 << (kBits - 1), top = (1 << kBits) - 1;
  float amax, max;
  signedAbsMax(x, 32, amax, max);
  const float d = max / static_cast<float>(-half);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  putHalf(b, d);
  uint8_t* qs = b + (kBits == 5 ? 6 : 2);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int c0 = std::min(top, static_cast<int>(static_cast<int8_t>(x[j] * id + (static_cast<float>(half) + 0.5f))));
    const int c1 = std::min(top, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + (static_cast<float>(half) + 0.5f))));
    qs[j] = static_cast<uint8_t>((c0 & 0x0F) | ((c1 & 0x0F) << 4));
    qh |= static_cast<uint32_t>((c0 & 0x10) >> 4) << j;
    qh |= static_cast<uint32_t>((c1 & 0x10) >> 4) << (j + 16);
  }
  if (kBits == 5) std::memcpy(b + 2, &qh, 4);
}

// Asymmetric blocks of 32 (Q4_1, Q5_1): d = (max - min) / (2^bits - 1), m = min.
template <int kBits>
void quantizeAsym32(const float* x, uint8_t* b) {
  constexpr int top = (1 << kBits) - 1;
  float mn, mx;
  minMax(x, 32, mn, mx);
  const float d = (mx - mn) / static_cast<float>(top);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  putHalf(b, d);
  putHalf(b + 2, mn);
  uint8_t* qs = b + (kBits == 5 ? 8 : 4);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const float x0 = (x[j] - mn) * id, x1 = (x[j + 16] - mn) * id;
    const int c0 = kBits == 4 ? std::min(top, static_cast<int>(static_cast<int8_t>(x0 + 0.5f)))
                              : static_cast<int>(static_cast<uint8_t>(x0 + 0.5f));
    const int c1 = kBits == 4 ? std::min(top, static_cast<int>(static_cast<int8_t>(x1 + 0.5f)))
                              : static_cast<int>(static_cast<uint8_t>(x1 + 0.5f));
    qs[j] = static_cast<uint8_t>((c0 & 0x0F) | ((c1 & 0x0F) << 4));
    qh |= static_cast<uint32_t>((c0 & 0x10) >> 4) << j;
    qh |= static_cast<uint32_t>((c1 & 0x10) >> 4) << (j + 16);
  }
  if (kBits == 5) std::memcpy(b + 4, &qh, 4);
}

void quantizeQ8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  putHalf(b, d);
  for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
}

// ggml's make_qx_quants with rmse_type 1 (weights x^2), no importance: the scale of n values on
// codes [-nmax, nmax) that minimises the weighted error over 19 candidate scales; L gets code + nmax.
float makeQxQuants(int n, int nmax, const float* x, int8_t* L) {
  float amax, max;
  signedAbsMax(x, n, amax, max);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, 0);
    return 0.0f;
  }
  auto code = [nmax](float v) { return std::max(-nmax, std::min(nmax - 1, nearestInt(v))); };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = code(iscale * x[i]);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = code(iscale * x[i]);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + code(iscale * x[i]));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float makeQ3Quants(int n, int nmax, const float* x, int8_t* L);

// Q6_K's and Q3_K's super-block parameters: an fp16 factor d and a signed scale per sub-block of
// 16 (Q6_K: 8-bit, sub-block j dequantizes as d sc_j (q - 32); Q3_K: 6-bit, d sc_j (q - 4)), as
// ggml's quantize_row_q6_K_ref / q3_K_ref choose them (make_qx_quants / make_q3_quants per
// sub-block; the largest-magnitude scale is -128 / -32 steps). nonzeroScales: a scale that rounds
// to 0 becomes 1 and an all-zero super-block gets d = 1 (a grid for other methods: every sub-block
// has a step). L (256, or null) receives the sub-block fits' codes, which ggml keeps where a step
// is 0.
struct SignedKParams {
  float d = 0;
  int8_t sc[kQkK / 16] = {};
  bool zero = false;  // no scale at all: ggml writes Q6_K's block as zero bytes, Q3_K's d and scales 0
};

SignedKParams signedKParams(const float* x, bool q6, bool nonzeroScales, int8_t* L) {
  int8_t tmp[16];
  float scales[kQkK / 16];
  float maxScale = 0, maxAbsScale = 0;
  for (int j = 0; j < kQkK / 16; ++j) {
    int8_t* l = L ? L + 16 * j : tmp;
    scales[j] = q6 ? makeQxQuants(16, 32, x + 16 * j, l) : makeQ3Quants(16, 4, x + 16 * j, l);
    if (std::fabs(scales[j]) > maxAbsScale) {
      maxAbsScale = std::fabs(scales[j]);
      maxScale = scales[j];
    }
  }
  SignedKParams p;
  if (q6 ? maxAbsScale < kGroupMaxEps : maxScale == 0.0f) {
    p.zero = !nonzeroScales;
    if (nonzeroScales) {
      p.d = 1.0f;
      std::fill(p.sc, p.sc + kQkK / 16, int8_t{1});
    }
    return p;
  }
  const int lowest = q6 ? -128 : -32;
  const float iscale = static_cast<float>(lowest) / maxScale;
  for (int j = 0; j < kQkK / 16; ++j) {
    p.sc[j] = static_cast<int8_t>(std::max(lowest, std::min(-lowest - 1, nearestInt(iscale * scales[j]))));
    if (nonzeroScales && p.sc[j] == 0) p.sc[j] = 1;
  }
  p.d = fp16ToFp32(fp32ToFp16(1 / iscale));
  return p;
}

// Q6_K super-block of 256: ql[128] low 4 bits, qh[64] high 2 bits, scales[16] int8, d fp16; codes
// L (0..63) under p.
void packQ6K(const SignedKParams& p, const int8_t* L, uint8_t* b) {
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  std::memcpy(b + 192, p.sc, kQkK / 16);
  putHalf(b + 208, p.d);
  for (int j = 0; j < kQkK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
      ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                   ((L[j + l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

void quantizeQ6_K(const float* x, uint8_t* b) {
  int8_t L[kQkK];
  const SignedKParams p = signedKParams(x, true, false, L);
  if (p.zero) {  // every byte 0, as ggml writes it
    std::memset(b, 0, 210);
    return;
  }
  for (int j = 0; j < kQkK / 16; ++j) {
    const float d = p.d * static_cast<float>(p.sc[j]);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i) L[16 * j + i] = static_cast<int8_t>(std::max(-32, std::min(31, nearestInt(x[16 * j + i] / d))) + 32);
  }
  packQ6K(p, L, b);
}

// ggml's make_qkx2_quants: codes [0, nmax] with a scale and a (negated, non-negative) minimum for
// n weighted values, the best of nstep + 1 least-squares refits from shifted starting scales.
float makeQkx2Quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* theMin, uint8_t* Laux,
                     float rmin, float rdelta, int nstep, bool absError = false) {
  // The fit's error per value: squared, or absolute (ggml's use_mad, Q2_K).
  auto err = [absError](float d) { return absError ? std::fabs(d) : d * d; };
  float mn = x[0], mx = x[0];
  float sumW = w[0], sumX = sumW * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < mn) mn = x[i];
    if (x[i] > mx) mx = x[i];
    sumW += w[i];
    sumX += w[i] * x[i];
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    std::fill(L, L + n, 0);
    *theMin = -mn;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (mx - mn);
  float scale = 1 / iscale;
  float bestError = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, nearestInt(iscale * (x[i] - mn)))));
    const float diff = scale * static_cast<float>(L[i]) + mn - x[i];
    bestError += w[i] * err(diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (mx - mn);
    float sumL = 0, sumL2 = 0, sumXL = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearestInt(iscale * (x[i] - mn))));
      Laux[i] = static_cast<uint8_t>(l);
      const float fl = static_cast<float>(l);
      sumL += w[i] * fl;
      sumL2 += w[i] * fl * fl;
      sumXL += w[i] * fl * x[i];
    }
    const float D = sumW * sumL2 - sumL * sumL;
    if (D > 0) {
      float thisScale = (sumW * sumXL - sumX * sumL) / D;
      float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = sumXL / sumL2;
      }
      float curError = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = thisScale * static_cast<float>(Laux[i]) + thisMin - x[i];
        curError += w[i] * err(diff);
      }
      if (curError < bestError) {
        std::copy(Laux, Laux + n, L);
        bestError = curError;
        scale = thisScale;
        mn = thisMin;
      }
    }
  }
  *theMin = -mn;
  return scale;
}

// The 6-bit scale and minimum of sub-block j in a K-quant's 12-byte scales field.
void scaleMinK4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// The super-block parameters of a Q4_K/Q5_K block: fp16 factors d and dmin, and per sub-block of
// 32 a 6-bit scale sc and minimum m (sub-block j dequantizes as d sc_j q - dmin m_j).
struct KParams {
  float d = 0, dmin = 0;
  uint8_t sc[kQkK / 32] = {}, m[kQkK / 32] = {};
};

// ggml's quantize_row_q{4,5}_K_ref choice of KParams for 256 values (make_qkx2_quants per
// sub-block, then the scales and minimums rounded to 6 bits under fp16 factors). nonzeroScales
// raises a sub-block scale that rounds to 0 to 1 (a grid for other methods: every sub-block keeps
// a nonzero step), and gives an all-constant super-block the step max|x| / (63 nmax). L (256, or
// null) receives make_qkx2_quants' codes, which ggml keeps for a sub-block whose step is 0.
template <int kBits>
KParams kParams(const float* x, bool nonzeroScales, uint8_t* L) {
  constexpr int nmax = (1 << kBits) - 1;
  uint8_t tmp[32], Laux[32];
  float weights[32], mins[kQkK / 32], scales[kQkK / 32];
  float maxScale = 0, maxMin = 0;
  for (int j = 0; j < kQkK / 32; ++j) {
    float sumX2 = 0;
    for (int l = 0; l < 32; ++l) sumX2 += x[32 * j + l] * x[32 * j + l];
    const float avX = std::sqrt(sumX2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = avX + std::fabs(x[32 * j + l]);
    uint8_t* l = L ? L + 32 * j : tmp;
    scales[j] = kBits == 4 ? makeQkx2Quants(32, nmax, x + 32 * j, weights, l, &mins[j], Laux, -1.f, 0.1f, 20)
                           : makeQkx2Quants(32, nmax, x + 32 * j, weights, l, &mins[j], Laux, -0.5f, 0.1f, 15);
    maxScale = std::max(maxScale, scales[j]);
    maxMin = std::max(maxMin, mins[j]);
  }
  KParams p;
  if (nonzeroScales && maxScale <= 0) {
    float amax = 0;
    for (int i = 0; i < kQkK; ++i) amax = std::max(amax, std::fabs(x[i]));
    maxScale = amax > 0 ? amax / nmax : 1.0f;
    std::fill(scales, scales + kQkK / 32, maxScale);
  }
  const float invScale = maxScale > 0 ? 63.f / maxScale : 0.f;
  const float invMin = maxMin > 0 ? 63.f / maxMin : 0.f;
  for (int j = 0; j < kQkK / 32; ++j) {
    p.sc[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearestInt(invScale * scales[j])));
    p.m[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearestInt(invMin * mins[j])));
    if (nonzeroScales && p.sc[j] == 0) p.sc[j] = 1;
  }
  p.d = fp16ToFp32(fp32ToFp16(maxScale / 63.f));
  p.dmin = fp16ToFp32(fp32ToFp16(maxMin / 63.f));
  if (nonzeroScales && p.d == 0) p.d = fp16ToFp32(1);  // 0x0001: the smallest fp16 step
  return p;
}

// Writes a Q4_K (kBits 4: d, dmin, scales[12], qs[128]) or Q5_K (the same, then qh[32] before qs)
// block of codes L[256] (0..2^kBits - 1) under p.
template <int kBits>
void packQxK(const KParams& p, const uint8_t* L, uint8_t* b) {
  std::memset(b, 0, kBits == 4 ? 144 : 176);
  uint8_t* sc = b + 4;
  for (int j = 0; j < kQkK / 32; ++j) {
    const uint8_t ls = p.sc[j], lm = p.m[j];
    if (j < 4) {
      sc[j] = ls;
      sc[j + 4] = lm;
    } else {
      sc[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      sc[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      sc[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  putHalf(b, p.d);
  putHalf(b + 2, p.dmin);
  if (kBits == 4) {
    uint8_t* q = b + 16;
    for (int j = 0; j < kQkK; j += 64) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
      q += 32;
    }
    return;
  }
  uint8_t* qh = b + 16;
  uint8_t* ql = b + 48;
  uint8_t m1 = 1, m2 = 2;
  for (int n = 0; n < kQkK; n += 64) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j], l2 = L[n + j + 32];
      if (l1 > 15) {
        l1 -= 16;
        qh[j] |= m1;
      }
      if (l2 > 15) {
        l2 -= 16;
        qh[j] |= m2;
      }
      ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
    ql += 32;
  }
}

// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and minimums under fp16 super-block factors,
// codes rounded as ggml rounds them: nearest((x + dmin m) / (d sc)).
template <int kBits>
void quantizeQxK(const float* x, uint8_t* b) {
  constexpr int nmax = (1 << kBits) - 1;
  uint8_t L[kQkK];
  const KParams p = kParams<kBits>(x, false, L);
  for (int j = 0; j < kQkK / 32; ++j) {
    const float d = p.d * static_cast<float>(p.sc[j]);
    if (d == 0.0f) continue;
    const float dm = p.dmin * static_cast<float>(p.m[j]);
    for (int i = 0; i < 32; ++i)
      L[32 * j + i] = static_cast<uint8_t>(std::max(0, std::min(nmax, nearestInt((x[32 * j + i] + dm) / d))));
  }
  packQxK<kBits>(p, L, b);
}

// Packs 2-bit codes L[0, 256) as Q2_K and Q3_K store them: in each half of 128, byte l of the
// 32 holds codes l, l + 32, l + 64 and l + 96 in bit pairs 0, 2, 4 and 6.
void packTwoBitCodes(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQkK; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}
uint8_t twoBitCode(const uint8_t* qs, int e) { return static_cast<uint8_t>((qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3); }

// Q2_K's super-block parameters: fp16 factors d and dmin and per sub-block of 16 a 4-bit scale
// and minimum (sub-block j dequantizes as d sc_j q - dmin m_j), as ggml's quantize_row_q2_K_ref
// chooses them (make_qkx2_quants per sub-block, weights |x|). nonzeroScales: a scale that rounds
// to 0 becomes 1 and an all-constant super-block gets the step max|x| / (15 * 3) (a grid for other
// methods). L (256, or null) receives make_qkx2_quants' codes, which ggml keeps where a step is 0.
struct Q2Params {
  float d = 0, dmin = 0;
  uint8_t sc[kQkK / 16] = {}, m[kQkK / 16] = {};
};

Q2Params q2Params(const float* x, bool nonzeroScales, uint8_t* L) {
  uint8_t tmp[16], Laux[16];
  float weights[16], mins[kQkK / 16], scales[kQkK / 16];
  float maxScale = 0, maxMin = 0;
  for (int j = 0; j < kQkK / 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = makeQkx2Quants(16, 3, x + 16 * j, weights, L ? L + 16 * j : tmp, &mins[j], Laux, -0.5f, 0.1f, 15, true);
    maxScale = std::max(maxScale, scales[j]);
    maxMin = std::max(maxMin, mins[j]);
  }
  if (nonzeroScales && maxScale <= 0) {
    float amax = 0;
    for (int i = 0; i < kQkK; ++i) amax = std::max(amax, std::fabs(x[i]));
    maxScale = amax > 0 ? amax / 3 : 1.0f;
    std::fill(scales, scales + kQkK / 16, maxScale);
  }
  Q2Params p;
  if (maxScale > 0) {
    const float inv = 15.f / maxScale;
    for (int j = 0; j < kQkK / 16; ++j) {
      p.sc[j] = static_cast<uint8_t>(nearestInt(inv * scales[j]));
      if (nonzeroScales && p.sc[j] == 0) p.sc[j] = 1;
    }
    p.d = fp16ToFp32(fp32ToFp16(maxScale / 15.f));
    if (nonzeroScales && p.d == 0) p.d = fp16ToFp32(1);  // 0x0001: the smallest fp16 step
  }
  if (maxMin > 0) {
    const float inv = 15.f / maxMin;
    for (int j = 0; j < kQkK / 16; ++j) p.m[j] = static_cast<uint8_t>(nearestInt(inv * mins[j]));
    p.dmin = fp16ToFp32(fp32ToFp16(maxMin / 15.f));
  }
  return p;
}

// Q2_K (scales[16], qs[64], d, dmin) of codes L[256] (0..3) under p.
void packQ2K(const Q2Params& p, const uint8_t* L, uint8_t* b) {
  std::memset(b, 0, 84);
  for (int j = 0; j < kQkK / 16; ++j) b[j] = static_cast<uint8_t>(p.sc[j] | (p.m[j] << 4));
  putHalf(b + 80, p.d);
  putHalf(b + 82, p.dmin);
  packTwoBitCodes(L, b + 16);
}

// Q2_K: 16 sub-blocks of 16 codes in [0, 3], each with a 4-bit scale and a 4-bit minimum under
// fp16 super-block factors; the sub-block fit minimises the weighted absolute error (weights |x|).
void quantizeQ2_K(const float* x, uint8_t* b) {
  uint8_t L[kQkK];
  const Q2Params p = q2Params(x, false, L);
  for (int j = 0; j < kQkK / 16; ++j) {
    const float d = p.d * static_cast<float>(p.sc[j]);
    if (d == 0.0f) continue;
    const float dm = p.dmin * static_cast<float>(p.m[j]);
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<uint8_t>(std::max(0, std::min(3, nearestInt((x[16 * j + i] + dm) / d))));
  }
  packQ2K(p, L, b);
}

// ggml's make_q3_quants with its refinement: signed codes in [-nmax, nmax - 1] (returned shifted
// by nmax) for n values, the scale improved one code at a time on the x^2-weighted error.
float makeQ3Quants(int n, int nmax, const float* x, int8_t* L) {
  float amax, max;
  signedAbsMax(x, n, amax, max);
  if (amax < 1e-15f) {
    std::fill(L, L + n, 0);
    return 0.f;
  }
  const float iscale = -static_cast<float>(nmax) / max;
  float sumLX = 0, sumL2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearestInt(iscale * x[i])));
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumLX += w * x[i] * static_cast<float>(l);
    sumL2 += w * static_cast<float>(l) * static_cast<float>(l);  // (w l) l, rounded as ggml does
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumLX - w * x[i] * static_cast<float>(L[i]);
      if (slx <= 0) continue;
      float sl2 = sumL2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
      const int l = std::max(-nmax, std::min(nmax - 1, nearestInt(x[i] * sl2 / slx)));
      if (l == L[i]) continue;
      slx += w * x[i] * static_cast<float>(l);
      sl2 += w * static_cast<float>(l) * static_cast<float>(l);
      if (sl2 > 0 && slx * slx * sumL2 > sumLX * sumLX * sl2) {
        L[i] = static_cast<int8_t>(l);
        sumLX = slx;
        sumL2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return sumL2 > 0.0f ? sumLX / sumL2 : 0.0f;
}

// The signed 6-bit scale of sub-block j in Q3_K's 12-byte scales field.
int scaleQ3K(int j, const uint8_t* s) {
  const int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q3_K (hmask[32], qs[64], scales[12], d) of codes L[256] (0..7, zero 4) under p; the third bit
// of each code is in hmask.
void packQ3K(const SignedKParams& p, const int8_t* L, uint8_t* b) {
  std::memset(b, 0, 110);
  uint8_t* hmask = b;
  uint8_t* sc = b + 96;
  if (!p.zero)
    for (int j = 0; j < kQkK / 16; ++j) {
      int l = p.sc[j] + 32;
      if (j < 8) sc[j] = static_cast<uint8_t>(l & 0xF);
      else sc[j - 8] = static_cast<uint8_t>(sc[j - 8] | ((l & 0xF) << 4));
      l >>= 4;
      sc[j % 4 + 8] = static_cast<uint8_t>(sc[j % 4 + 8] | (l << (2 * (j / 4))));
    }
  putHalf(b + 108, p.zero ? 0.f : p.d);
  uint8_t low[kQkK];
  for (int e = 0; e < kQkK; ++e) {
    low[e] = static_cast<uint8_t>(L[e] > 3 ? L[e] - 4 : L[e]);
    if (L[e] > 3) hmask[e % 32] = static_cast<uint8_t>(hmask[e % 32] | (1u << (e / 32)));
  }
  packTwoBitCodes(low, b + 32);
}

// Q3_K: 16 sub-blocks of 16 codes in [-4, 3] with signed 6-bit scales under an fp16 factor.
void quantizeQ3_K(const float* x, uint8_t* b) {
  int8_t L[kQkK];
  const SignedKParams p = signedKParams(x, false, false, L);
  for (int j = 0; j < kQkK / 16 && !p.zero; ++j) {
    const float d = p.d * static_cast<float>(p.sc[j]);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<int8_t>(std::max(-4, std::min(3, nearestInt(x[16 * j + i] / d))) + 4);
  }
  packQ3K(p, L, b);
}

void dequantizeBlock(uint32_t type, const uint8_t* b, float* y) {
  switch (type) {
    case ggml::Q4_0:
    case ggml::Q5_0: {
      const bool five = type == ggml::Q5_0;
      const float d = getHalf(b);
      uint32_t qh = 0;
      if (five) std::memcpy(&qh, b + 2, 4);
      const uint8_t* qs = b + (five ? 6 : 2);
      const int off = five ? 16 : 8;
      for (int j = 0; j < 16; ++j) {
        const int h0 = five ? static_cast<int>((qh >> j) & 1u) << 4 : 0;
        const int h1 = five ? static_cast<int>((qh >> (j + 16)) & 1u) << 4 : 0;
        y[j] = static_cast<float>(((qs[j] & 0x0F) | h0) - off) * d;
        y[j + 16] = static_cast<float>(((qs[j] >> 4) | h1) - off) * d;
      }
      return;
    }
    case ggml::Q4_1:
    case ggml::Q5_1: {
      const bool five = type == ggml::Q5_1;
      const float d = getHalf(b), m = getHalf(b + 2);
      uint32_t qh = 0;
      if (five) std::memcpy(&qh, b + 4, 4);
      const uint8_t* qs = b + (five ? 8 : 4);
      for (int j = 0; j < 16; ++j) {
        const int h0 = five ? static_cast<int>((qh >> j) & 1u) << 4 : 0;
        const int h1 = five ? static_cast<int>((qh >> (j + 16)) & 1u) << 4 : 0;
        y[j] = static_cast<float>((qs[j] & 0x0F) | h0) * d + m;
        y[j + 16] = static_cast<float>((qs[j] >> 4) | h1) * d + m;
      }
      return;
    }
    case ggml::Q8_0: {
      const float d = getHalf(b);
      for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
      return;
    }
    case ggml::Q2_K: {
      const float d = getHalf(b + 80), mn = getHalf(b + 82);
      for (int e = 0; e < kQkK; ++e) {
        const uint8_t sc = b[e / 16];
        y[e] = d * static_cast<float>(sc & 0xF) * static_cast<float>(twoBitCode(b + 16, e)) - mn * static_cast<float>(sc >> 4);
      }
      return;
    }
    case ggml::Q3_K: {
      const float d = getHalf(b + 108);
      for (int e = 0; e < kQkK; ++e) {
        const int q = twoBitCode(b + 32, e) + ((b[e % 32] >> (e / 32)) & 1 ? 4 : 0) - 4;
        y[e] = d * static_cast<float>(scaleQ3K(e / 16, b + 96)) * static_cast<float>(q);
      }
      return;
    }
    case ggml::Q4_K:
    case ggml::Q5_K: {
      const bool five = type == ggml::Q5_K;
      const float d = getHalf(b), mn = getHalf(b + 2);
      const uint8_t* sc = b + 4;
      const uint8_t* qh = b + 16;
      const uint8_t* q = b + (five ? 48 : 16);
      int is = 0;
      uint8_t u1 = 1, u2 = 2;
      for (int j = 0; j < kQkK; j += 64) {
        uint8_t s, m;
        scaleMinK4(is, sc, s, m);
        const float d1 = d * static_cast<float>(s), m1 = mn * static_cast<float>(m);
        scaleMinK4(is + 1, sc, s, m);
        const float d2 = d * static_cast<float>(s), m2 = mn * static_cast<float>(m);
        for (int l = 0; l < 32; ++l)
          *y++ = d1 * static_cast<float>((q[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l)
          *y++ = d2 * static_cast<float>((q[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2;
        q += 32;
        is += 2;
        u1 = static_cast<uint8_t>(u1 << 2);
        u2 = static_cast<uint8_t>(u2 << 2);
      }
      return;
    }
    case ggml::Q6_K: {
      const float d = getHalf(b + 208);
      const uint8_t* ql = b;
      const uint8_t* qh = b + 128;
      const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
      for (int n = 0; n < kQkK; n += 128) {
        for (int l = 0; l < 32; ++l) {
          const int is = l / 16;
          const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
          const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
          const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
          const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
          y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
          y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
          y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
          y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
      }
      return;
    }
    default: break;
  }
}

void checkRow(uint32_t type, int64_t n, const char* what) {
  if (!ggmlCanConvert(type))
    throw Error(std::string(what) + ": GGML type " + ggmlTypeTraits(type).name + " is not supported by QuantScope");
  const uint64_t bs = ggmlTypeTraits(type).blockSize;
  if (n <= 0 || static_cast<uint64_t>(n) % bs != 0)
    throw Error(std::string(what) + ": rows of " + std::to_string(n) + " elements do not split into " +
                ggmlTypeTraits(type).name + " blocks of " + std::to_string(bs));
}

}  // namespace

GgmlTypeTraits ggmlTypeTraits(uint32_t type) {
  // Sizes from ggml.c's type_traits; needed to bound tensors of types we cannot decode.
  static const GgmlTypeTraits table[] = {
      {"F32", 1, 4},       {"F16", 1, 2},         {"Q4_0", 32, 18},     {"Q4_1", 32, 20},
      {"Q4_2", 0, 0},      {"Q4_3", 0, 0},        {"Q5_0", 32, 22},     {"Q5_1", 32, 24},
      {"Q8_0", 32, 34},    {"Q8_1", 32, 36},      {"Q2_K", 256, 84},    {"Q3_K", 256, 110},
      {"Q4_K", 256, 144},  {"Q5_K", 256, 176},    {"Q6_K", 256, 210},   {"Q8_K", 256, 292},
      {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74},  {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
      {"IQ4_NL", 32, 18},  {"IQ3_S", 256, 110},   {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136},
      {"I8", 1, 1},        {"I16", 1, 2},         {"I32", 1, 4},        {"I64", 1, 8},
      {"F64", 1, 8},       {"IQ1_M", 256, 56},    {"BF16", 1, 2}};
  if (type < sizeof(table) / sizeof(table[0])) return table[type];
  return {"unknown", 0, 0};
}

std::optional<uint32_t> ggmlTypeByName(const std::string& name) {
  const std::string u = str::toUpper(name);
  for (uint32_t t = 0; t <= ggml::BF16; ++t)
    if (ggmlTypeTraits(t).blockSize && u == ggmlTypeTraits(t).name) return t;
  return std::nullopt;
}

bool ggmlCanConvert(uint32_t type) {
  switch (type) {
    case ggml::F32: case ggml::F16: case ggml::BF16: case ggml::Q4_0: case ggml::Q4_1:
    case ggml::Q5_0: case ggml::Q5_1: case ggml::Q8_0: case ggml::Q2_K: case ggml::Q3_K: case ggml::Q4_K:
    case ggml::Q5_K: case ggml::Q6_K:
      return true;
    default: return false;
  }
}

uint64_t ggmlRowBytes(uint32_t type, int64_t n) {
  const GgmlTypeTraits t = ggmlTypeTraits(type);
  return t.blockSize ? static_cast<uint64_t>(n) / t.blockSize * t.typeSize : 0;
}

void ggmlQuantizeRows(uint32_t type, const float* src, int64_t rows, int64_t n, uint8_t* dst) {
  checkRow(type, n, "GGML quantize");
  const int64_t count = rows * n;
  switch (type) {
    case ggml::F32: std::memcpy(dst, src, static_cast<size_t>(count) * 4); return;
    case ggml::F16:
    case ggml::BF16:
      for (int64_t i = 0; i < count; ++i) {
        const uint16_t h = type == ggml::F16 ? fp32ToFp16(src[i]) : fp32ToBf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    default: break;
  }
  const auto bs = static_cast<int64_t>(ggmlTypeTraits(type).blockSize);
  const auto bytes = static_cast<int64_t>(ggmlTypeTraits(type).typeSize);
  for (int64_t b = 0; b < count / bs; ++b) {
    const float* x = src + b * bs;
    uint8_t* y = dst + b * bytes;
    switch (type) {
      case ggml::Q4_0: quantizeSym32<4>(x, y); break;
      case ggml::Q5_0: quantizeSym32<5>(x, y); break;
      case ggml::Q4_1: quantizeAsym32<4>(x, y); break;
      case ggml::Q5_1: quantizeAsym32<5>(x, y); break;
      case ggml::Q8_0: quantizeQ8_0(x, y); break;
      case ggml::Q2_K: quantizeQ2_K(x, y); break;
      case ggml::Q3_K: quantizeQ3_K(x, y); break;
      case ggml::Q4_K: quantizeQxK<4>(x, y); break;
      case ggml::Q5_K: quantizeQxK<5>(x, y); break;
      case ggml::Q6_K: quantizeQ6_K(x, y); break;
      default: break;
    }
  }
}

void ggmlDequantizeRows(uint32_t type, const uint8_t* src, int64_t rows, int64_t n, float* dst) {
  checkRow(type, n, "GGML dequantize");
  const int64_t count = rows * n;
  switch (type) {
    case ggml::F32: std::memcpy(dst, src, static_cast<size_t>(count) * 4); return;
    case ggml::F16:
    case ggml::BF16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = type == ggml::F16 ? fp16ToFp32(h) : bf16ToFp32(h);
      }
      return;
    default: break;
  }
  const auto bs = static_cast<int64_t>(ggmlTypeTraits(type).blockSize);
  const auto bytes = static_cast<int64_t>(ggmlTypeTraits(type).typeSize);
  for (int64_t b = 0; b < count / bs; ++b) dequantizeBlock(type, src + b * bytes, dst + b * bs);
}

void ggmlEncodeBlocks(uint32_t type, const float* codes, const float* scales, int64_t rows, int64_t n, uint8_t* dst,
                      const std::string& what) {
  const int bits = type == ggml::Q4_0 ? 4 : type == ggml::Q5_0 ? 5 : type == ggml::Q8_0 ? 8 : 0;
  if (bits == 0) throw Error(what + ": codes are written as Q4_0, Q5_0 or Q8_0 blocks only");
  checkRow(type, n, what.c_str());
  const int zero = 1 << (bits - 1), top = (1 << bits) - 1;
  const auto bytes = static_cast<int64_t>(ggmlTypeTraits(type).typeSize);
  const int64_t blocks = n / 32;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      const float d = scales[r * blocks + b];
      if (fp16ToFp32(fp32ToFp16(d)) != d)
        throw Error(what + ": block scale " + std::to_string(d) + " is not an fp16 value (not a " +
                    ggmlTypeTraits(type).name + " grid)");
      const float* c = codes + r * n + b * 32;
      int q[32];
      for (int j = 0; j < 32; ++j) {
        q[j] = static_cast<int>(c[j]);
        if (static_cast<float>(q[j]) != c[j] || q[j] < 0 || q[j] > top)
          throw Error(what + ": code " + std::to_string(c[j]) + " is off the " + ggmlTypeTraits(type).name + " grid");
      }
      uint8_t* y = dst + (r * blocks + b) * bytes;
      putHalf(y, d);
      if (bits == 8) {
        for (int j = 0; j < 32; ++j) y[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q[j] - zero));
        continue;
      }
      uint8_t* qs = y + (bits == 5 ? 6 : 2);
      uint32_t qh = 0;
      for (int j = 0; j < 16; ++j) {
        qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
        qh |= static_cast<uint32_t>((q[j] & 0x10) >> 4) << j;
        qh |= static_cast<uint32_t>((q[j + 16] & 0x10) >> 4) << (j + 16);
      }
      if (bits == 5) std::memcpy(y + 2, &qh, 4);
    }
}

namespace {

// Q6_K or Q3_K blocks from codes (Q6_K 0..63, zero 32; Q3_K 0..7, zero 4) and per-sub-block
// scales d sc (mins = zero scales): d is the largest-magnitude scale over -128 (Q3_K: -32; ggml
// rounds that scale to the most negative step), an fp16 value.
void encodeSignedKBlocks(uint32_t type, const float* codes, const float* scales, const float* mins, int64_t rows,
                         int64_t n, uint8_t* dst, const std::string& what) {
  const bool q6 = type == ggml::Q6_K;
  const int lowest = q6 ? -128 : -32, highest = q6 ? 127 : 31, zero = q6 ? 32 : 4, top = 2 * zero - 1;
  const char* name = q6 ? "Q6_K" : "Q3_K";
  checkRow(type, n, what.c_str());
  const int64_t blocks = n / kQkK, sub = kQkK / 16, bytes = q6 ? 210 : 110;
  auto off = [&](const std::string& why) { return Error(what + ": " + why + " (not a " + name + " grid)"); };
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      const float* s = scales + (r * blocks + b) * sub;
      const float* m = mins + (r * blocks + b) * sub;
      int64_t big = 0;
      for (int64_t j = 1; j < sub; ++j)
        if (std::fabs(s[j]) > std::fabs(s[big])) big = j;
      SignedKParams p;
      // ggml's own grid has its largest scale at the lowest step; an all-zero super-block's grid is d 1.
      for (const float cand : {s[big] / static_cast<float>(lowest), s[big]}) {
        p.d = fp16ToFp32(fp32ToFp16(cand));
        bool ok = p.d != 0;
        for (int64_t j = 0; ok && j < sub; ++j) {
          const int k = nearestInt(s[j] / p.d);
          ok = k >= lowest && k <= highest && p.d * static_cast<float>(k) == s[j];
          if (ok) p.sc[j] = static_cast<int8_t>(k);
        }
        if (ok) break;
        p.d = 0;
      }
      if (p.d == 0) throw off("sub-block scale " + std::to_string(s[big]));
      int8_t L[kQkK];
      const float* c = codes + r * n + b * kQkK;
      for (int64_t j = 0; j < sub; ++j)
        if (m[j] != static_cast<float>(zero) * s[j])
          throw off("sub-block zero " + std::to_string(m[j] / s[j]) + " (" + name + "'s is " + std::to_string(zero) + ")");
      for (int i = 0; i < kQkK; ++i) {
        const int q = static_cast<int>(c[i]);
        if (static_cast<float>(q) != c[i] || q < 0 || q > top) throw off("code " + std::to_string(c[i]));
        L[i] = static_cast<int8_t>(q);
      }
      uint8_t* y = dst + (r * blocks + b) * bytes;
      if (q6) packQ6K(p, L, y);
      else packQ3K(p, L, y);
    }
}

// Blocks of a K type with unsigned sub-block scales and minimums under fp16 d and dmin (Q4_K/Q5_K:
// 8 sub-blocks of 32, 6-bit steps; Q2_K: 16 sub-blocks of 16, 4-bit steps) from codes (0..top):
// the largest scale and minimum are `steps` steps of d and dmin (ggml rounds the largest to the
// last step), fp16 values; every other one a whole number of steps.
template <class Params, class Pack>
void encodeUnsignedKBlocks(uint32_t type, int steps, int top, const float* codes, const float* scales,
                           const float* mins, int64_t rows, int64_t n, uint8_t* dst, const std::string& what,
                           const Pack& pack) {
  checkRow(type, n, what.c_str());
  const auto bytes = static_cast<int64_t>(ggmlTypeTraits(type).typeSize);
  constexpr int64_t sub = sizeof(Params::sc);
  const int64_t blocks = n / kQkK;
  auto off = [&](const std::string& why) { return Error(what + ": " + why + " (not a " + ggmlTypeTraits(type).name + " grid)"); };
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      const float* s = scales + (r * blocks + b) * sub;
      const float* m = mins + (r * blocks + b) * sub;
      Params p;
      p.d = fp16ToFp32(fp32ToFp16(*std::max_element(s, s + sub) / static_cast<float>(steps)));
      p.dmin = fp16ToFp32(fp32ToFp16(*std::max_element(m, m + sub) / static_cast<float>(steps)));
      for (int j = 0; j < sub; ++j) {
        const int sc = p.d > 0 ? nearestInt(s[j] / p.d) : 0, mm = p.dmin > 0 ? nearestInt(m[j] / p.dmin) : 0;
        if (sc < 1 || sc > steps || p.d * static_cast<float>(sc) != s[j]) throw off("sub-block scale " + std::to_string(s[j]));
        if (mm < 0 || mm > steps || std::fabs(p.dmin * static_cast<float>(mm) - m[j]) > 1e-6f * std::fabs(m[j]))
          throw off("sub-block minimum " + std::to_string(m[j]));
        p.sc[j] = static_cast<uint8_t>(sc);
        p.m[j] = static_cast<uint8_t>(mm);
      }
      uint8_t L[kQkK];
      const float* c = codes + r * n + b * kQkK;
      for (int i = 0; i < kQkK; ++i) {
        const int q = static_cast<int>(c[i]);
        if (static_cast<float>(q) != c[i] || q < 0 || q > top) throw off("code " + std::to_string(c[i]));
        L[i] = static_cast<uint8_t>(q);
      }
      pack(p, L, dst + (r * blocks + b) * bytes);
    }
}

}  // namespace

void ggmlKGrid(uint32_t type, const float* x, float* scales, float* mins) {
  if (type == ggml::Q3_K) {  // signed scales, the minimum 4 steps (zero point 4)
    const SignedKParams p = signedKParams(x, false, true, nullptr);
    for (int j = 0; j < kQkK / 16; ++j) {
      scales[j] = p.d * static_cast<float>(p.sc[j]);
      mins[j] = 4.0f * scales[j];
    }
    return;
  }
  if (type == ggml::Q2_K) {
    const Q2Params p = q2Params(x, true, nullptr);
    for (int j = 0; j < kQkK / 16; ++j) {
      scales[j] = p.d * static_cast<float>(p.sc[j]);
      mins[j] = p.dmin * static_cast<float>(p.m[j]);
    }
    return;
  }
  if (type == ggml::Q6_K) {  // symmetric: the minimum is 32 steps (zero point 32)
    const SignedKParams p = signedKParams(x, true, true, nullptr);
    for (int j = 0; j < kQkK / 16; ++j) {
      scales[j] = p.d * static_cast<float>(p.sc[j]);
      mins[j] = 32.0f * scales[j];
    }
    return;
  }
  if (type != ggml::Q4_K && type != ggml::Q5_K) throw Error("ggmlKGrid: Q2_K, Q3_K, Q4_K, Q5_K or Q6_K only");
  const KParams p = type == ggml::Q4_K ? kParams<4>(x, true, nullptr) : kParams<5>(x, true, nullptr);
  for (int j = 0; j < kQkK / 32; ++j) {
    scales[j] = p.d * static_cast<float>(p.sc[j]);
    mins[j] = p.dmin * static_cast<float>(p.m[j]);
  }
}

void ggmlEncodeKBlocks(uint32_t type, const float* codes, const float* scales, const float* mins, int64_t rows,
                       int64_t n, uint8_t* dst, const std::string& what) {
  if (type == ggml::Q6_K || type == ggml::Q3_K) {
    encodeSignedKBlocks(type, codes, scales, mins, rows, n, dst, what);
    return;
  }
  if (type == ggml::Q2_K)
    encodeUnsignedKBlocks<Q2Params>(type, 15, 3, codes, scales, mins, rows, n, dst, what, packQ2K);
  else if (type == ggml::Q4_K)
    encodeUnsignedKBlocks<KParams>(type, 63, 15, codes, scales, mins, rows, n, dst, what, packQxK<4>);
  else if (type == ggml::Q5_K)
    encodeUnsignedKBlocks<KParams>(type, 63, 31, codes, scales, mins, rows, n, dst, what, packQxK<5>);
  else
    throw Error(what + ": codes are written as Q2_K, Q3_K, Q4_K, Q5_K or Q6_K blocks only");
}

// Round-to-nearest-even through float arithmetic (the FP16 library's method, which ggml uses
// where the CPU has no F16C): scaling by 2^112 then 2^-110 rounds the mantissa in hardware.
uint16_t fp32ToFp16(float f) {
  float base = (std::fabs(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = floatBits(f);
  const uint32_t shl1 = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1 & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = bitsFloat((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = floatBits(base);
  const uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
  return static_cast<uint16_t>((sign >> 16) | (shl1 > 0xFF000000u ? 0x7E00u : nonsign));
}

float fp16ToFp32(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two = w + w;
  const float normalized = bitsFloat((two >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = bitsFloat((two >> 17) | (126u << 23)) - 0.5f;
  const uint32_t result = sign | (two < (1u << 27) ? floatBits(denormalized) : floatBits(normalized));
  return bitsFloat(result);
}

uint16_t fp32ToBf16(float f) {
  const uint32_t u = floatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64);  // quiet NaN
  return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

float bf16ToFp32(uint16_t h) { return bitsFloat(static_cast<uint32_t>(h) << 16); }

}  // namespace qs::io
