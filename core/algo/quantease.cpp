#include "core/algo/quantease.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>

#include "core/algo/gptq.h"
#include "core/algo/hessian.h"
#include "core/algo/pipeline.h"
#include "core/algo/quantease_outlier.h"
#include "core/algo/quantease_sweep.h"
#include "core/algo/weight_grid.h"
#include "core/util/error.h"
#include "core/util/log.h"
#include "core/util/memory.h"

namespace qs::algo {
namespace {

// `qscope -v`: the resident set at each phase of a layer (where a 7B layer's peak comes from).
void logPhase(const char* phase) {
  if (log::level() <= log::Level::Debug)
    log::debug(std::string("quantease: ") + phase + ", RSS " + formatMemory(currentRssBytes()) + ", peak " +
               formatMemory(peakRssBytes()));
}

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// The outlier support a run starts from: the `keep` largest |W| over the whole matrix (as the
// reference chooses it: what stretches the grid), or the `keep` columns of largest output energy
// ||W_col||^2 H_jj (structured; the reference takes ||W_col|| alone, which misses the activation
// outlier channels a kept column is for). hDiag undefined: ||W_col||^2. Float32 mask.
at::Tensor initialSupport(const at::Tensor& w, int64_t keep, bool structured, const at::Tensor& hDiag = {}) {
  at::Tensor mask = at::zeros_like(w);
  if (keep <= 0) return mask;
  if (structured) {
    at::Tensor energy = at::sum(at::mul(w, w), 0);
    if (hDiag.defined()) energy = at::mul(energy, hDiag);
    const at::Tensor cols = std::get<1>(at::topk(energy, keep));
    mask.index_fill_(1, cols, 1.0);
  } else {
    const at::Tensor idx = std::get<1>(at::topk(at::abs(w).flatten(), keep));
    mask.view({-1}).index_fill_(0, idx, 1.0);
  }
  return mask;
}

// The descent's H: float32, dead diagonals 1 (a copy; the caller's H is not modified).
at::Tensor descentHessian(const at::Tensor& hessian) {
  at::Tensor h = hessian.to(at::kFloat);
  if (h.data_ptr() == hessian.data_ptr()) h = h.clone();  // a float32 H is the caller's: copy before editing
  h.diagonal().masked_fill_(deadColumns(h), 1.0);
  return h.contiguous();
}

// What every start shares: H (descentHessian), the target (dead columns zeroed) and the outlier
// support it starts with.
QuantEaseStart prepareCommon(const at::Tensor& wIn, const at::Tensor& hessian, const QuantEaseOptions& opts) {
  QuantEaseStart s;
  s.h = descentHessian(hessian);
  const at::Tensor dead = deadColumns(hessian);
  s.target = wIn.to(at::kFloat).clone().masked_fill_(dead.unsqueeze(0), 0.0).contiguous();
  if (opts.outlierFraction > 0) {
    const int64_t out = s.target.size(0), in = s.target.size(1);
    const double universe = opts.structuredOutlier ? static_cast<double>(in) : static_cast<double>(out) * in;
    const int64_t keep = std::min<int64_t>(static_cast<int64_t>(std::llround(opts.outlierFraction * universe)),
                                           static_cast<int64_t>(universe));
    s.free = initialSupport(s.target, keep, opts.structuredOutlier, at::diagonal(s.h));
    s.keep = keep;
  }
  return s;
}

// The grid, codes and W^ of one start: GPTQ's result (kept weights unrounded, grid fitted to the
// rest), or round to nearest on the grid of the weights that stay on it (kept weights are left out
// of the range, so keeping 1% of them in full precision narrows the step for all the others).
void prepareStart(QuantEaseStart& s, const at::Tensor& hessian, const QuantEaseOptions& opts, bool gptq,
                  jobs::Progress& progress) {
  if (gptq) {
    GptqOptions g;
    g.spec = opts.spec;
    g.percdamp = opts.percdamp;
    g.blockSize = opts.blockSize;
    g.keep = s.free;
    g.measureError = false;
    LayerQuantResult init = quantizeGptq(s.target, hessian, g, progress);
    s.grid = {init.scales, init.zeros, init.gIdx};
    s.codes = init.codes.to(at::kFloat).contiguous();
    s.wq = init.weight.contiguous();  // kept weights at GPTQ's updated values
  } else {
    s.grid = observeWeight(s.free.defined() ? s.target.masked_fill(s.free != 0, 0.0) : s.target, opts.spec);
  }
  s.column = s.grid.gIdx.to(at::kLong);
  if (gptq) return;
  const int64_t g = s.free.defined() ? 0 : naturalGroupSize(s.grid.gIdx, s.grid.scales.size(1));
  if (g > 0) {  // the group parameters broadcast (RTN's form: the same bits, no [out, in] copies)
    s.codes = applyPerGroup(s.target, s.grid.scales, s.grid.zeros, g,
                            [&](const at::Tensor& x, const at::Tensor& sc, const at::Tensor& z) {
                              return quant::quantizeCodes(x, sc, z, opts.spec);
                            }).contiguous();
    s.wq = applyPerGroup(s.codes, s.grid.scales, s.grid.zeros, g,
                         [](const at::Tensor& c, const at::Tensor& sc, const at::Tensor& z) {
                           return quant::dequantizeCodes(c, sc, z);
                         }).contiguous();
    return;
  }
  const at::Tensor scale = expandToColumns(s.grid.scales, s.grid.gIdx), zero = expandToColumns(s.grid.zeros, s.grid.gIdx);
  s.codes = quant::quantizeCodes(s.target, scale, zero, opts.spec).contiguous();
  s.wq = quant::dequantizeCodes(s.codes, scale, zero).contiguous();
  if (s.free.defined()) {  // kept weights start at their full value, their codes at the zero point
    const at::Tensor f = s.free != 0;
    s.wq = at::where(f, s.target, s.wq).contiguous();
    s.codes = at::where(f, zero, s.codes).contiguous();
  }
}

// The best rounded iterate of one descent, in the original column order, with its grid.
struct Descent {
  double objective = 0;
  at::Tensor codes, weight, free;  // codes compact (compactCodes); weight and free only with outliers
  WeightGrid grid;
  bool fromGptq = false;
  std::vector<double> trace;
  int iterations = 0;
};

// One descent from a start: the reference's schedule (relaxed sweeps), one IHT step on the support
// after each rounding sweep but the last, the best rounded iterate kept. polish: rounding sweeps
// only, at most polishSweeps(num_iter), stopped earlier once a sweep no longer lowers the
// objective; from GPTQ's rounding most of the gain comes in the first sweeps (bench_quantease: 3
// sweeps reach 5.163% where 28 reach 5.148%, GPTQ 5.219%), and relaxed sweeps would only pull it
// back towards W, which the descent from W explores. `common`
// holds H and the target (not modified); act_order sweeps a W start's columns by decreasing H
// diagonal (the groups stay those of the original columns, so nothing extra is stored).
Descent descend(const QuantEaseStart& common, const at::Tensor& hessian, const QuantEaseOptions& opts,
                QuantEaseInit kind, bool polish, jobs::Progress& progress) {
  const bool gptq = kind == QuantEaseInit::Gptq;
  QuantEaseStart s = common;  // shares H and the target; the start's own tensors are set below
  {
    jobs::SubProgress sub(progress, 0.0, gptq ? 0.1 : 0.0);
    prepareStart(s, hessian, opts, gptq, sub);
  }
  if (!s.h.defined()) s.h = descentHessian(hessian);  // released while GPTQ ran
  logPhase(gptq ? "GPTQ start ready" : "start from W ready");
  Descent d;
  d.fromGptq = gptq;
  d.grid = s.grid;
  at::Tensor perm;
  if (opts.spec.actOrder && !gptq) {
    perm = std::get<1>(at::sort(at::diagonal(s.h), /*stable=*/true, /*dim=*/0, /*descending=*/true));
    auto cols = [&](at::Tensor& t) {
      if (t.defined()) t = t.index_select(1, perm).contiguous();
    };
    for (at::Tensor* t : {&s.target, &s.wq, &s.codes, &s.free}) cols(*t);
    s.column = s.column.index_select(0, perm);
    s.h = s.h.index_select(0, perm).index_select(1, perm).contiguous();
  }
  // The start is a quantized iterate when it lies on the grid (GPTQ, round to nearest); from W
  // itself the first rounding sweep makes the first one.
  const bool fromWeights = kind == QuantEaseInit::Weights;
  const double lambda = s.free.defined() ? largestEigenvalue(s.h) : 0.0;
  {
    // The fallback of a run with no rounding sweep (num_iter 0 from W): round to nearest.
    const bool fallback = fromWeights && opts.numIter == 0;
    const at::Tensor rtnCodes = fallback ? compactCodes(s.codes, opts.spec.symmetric) : at::Tensor();
    const at::Tensor rtnWeight = fallback ? s.wq : at::Tensor();
    // The descent takes the start's W^ and codes over (no copies: on a 7B down projection each is
    // 180 MB); from W it starts at a copy of the target, which the starts share.
    if (fromWeights) s.wq = at::Tensor();
    CoordinateDescent cd(s.target, fromWeights ? s.target : std::move(s.wq), std::move(s.codes), s.h,
                         ColumnGrid{s.grid.scales, s.grid.zeros, s.column}, opts.spec, opts.blockSize);
    s.wq = s.codes = at::Tensor();
    cd.setFree(s.free);
    logPhase("descent set up");
    auto consider = [&] {
      const double f = cd.objective();
      d.trace.push_back(f);
      if (!d.codes.defined() || f < d.objective) {
        d.objective = f;
        d.codes = compactCodes(cd.codes(), opts.spec.symmetric);  // integers: a quarter of the float copy
        if (s.free.defined()) {  // the kept weights' values and where they are
          d.weight = cd.weight().clone();
          d.free = cd.freeMask().clone();
        }
      }
    };
    if (!fromWeights) consider();
    const double b = gptq ? 0.1 : 0.0;
    for (int it = 0; it < opts.numIter; ++it) {
      const bool quantize = polish || !(opts.relaxedSweeps && relaxedSweep(it, opts.numIter));
      cd.sweep(progress, b + (1 - b) * it / opts.numIter, b + (1 - b) * (it + 1) / opts.numIter, quantize);
      if (quantize) consider();
      const size_t n = d.trace.size();
      if (polish && (it + 1 >= polishSweeps(opts.numIter) ||
                     (n >= 2 && d.trace[n - 2] - d.trace[n - 1] <= 1e-7 * std::abs(d.trace[n - 2])))) {
        d.iterations = it + 1;
        break;
      }
      if (s.free.defined() && quantize && it + 1 < opts.numIter) {
        // Algorithm 3's support step: one iterative-hard-thresholding step on the kept part
        // (S + step P, the `keep` largest; step alpha / lambda_max(H), i.e. alpha / L on f(S)).
        const at::Tensor sp = at::mul(cd.weight(), cd.freeMask());
        const at::Tensor y = at::add(sp, cd.residualProduct(), lambda > 0 ? opts.alpha / lambda : 0.0);
        cd.setFree(initialSupport(y, s.keep, opts.structuredOutlier));
      }
      d.iterations = it + 1;
    }
    logPhase("descent done");
    if (!d.codes.defined()) {  // num_iter 0 from W: round to nearest
      d.codes = rtnCodes;
      d.weight = rtnWeight;
      d.free = s.free;
    }
  }
  if (perm.defined()) {  // back to the original column order
    const at::Tensor inv = at::argsort(perm);
    for (at::Tensor* t : {&d.codes, &d.weight, &d.free})
      if (t->defined()) *t = t->index_select(1, inv).contiguous();
  }
  return d;
}

// The column updates of one 128-column block for rows [r0, r1) (CoordinateDescent::sweep); sc and
// ze are the block's grid [out, cnt], the other matrices [out, in] (dd [out, cnt]). Built
// twice, for AVX2 and for the baseline x86-64, and chosen at load time: the in-block update is the
// inner loop of every QuantEase run and AVX2 doubles its vector width. Neither clone may use FMA:
// each element stays one multiply then one add, bit-identical to sweepBlocked and the CUDA kernel.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void sweepRows(int64_t r0, int64_t r1, int64_t in, int64_t b0, int64_t cnt, float* p, float* wq, float* codes,
               const float* h, const float* sc, const float* ze, const float* fr, float* dd, bool quantize,
               float qmin, float qmax, bool zeroInside) {
  // Four rows at a time, so each row of H's block is read once per four rows (it is 64 KB for a
  // 128-column block: re-reading it for every row made the loop wait on the L2 cache). Each row's
  // arithmetic and its order are unchanged.
  constexpr int64_t R = 4;
  for (int64_t o0 = r0; o0 < r1; o0 += R) {
    const int64_t nr = std::min<int64_t>(R, r1 - o0);
    float* pr[R];
    float* wr[R];
    float* cr[R];
    const float* sr[R];
    const float* zr[R];
    const float* frr[R];
    float* dr[R];
    for (int64_t r = 0; r < nr; ++r) {
      const int64_t o = o0 + r;
      pr[r] = p + o * in + b0;
      wr[r] = wq + o * in;
      cr[r] = codes + o * in;
      sr[r] = sc + o * cnt;  // the block's grid, [out, cnt]
      zr[r] = ze + o * cnt;
      frr[r] = fr ? fr + o * in : nullptr;
      dr[r] = dd + o * cnt;
    }
    for (int64_t j = 0; j < cnt; ++j) {
      const int64_t c = b0 + j;
      const float* hc = h + c * in + b0;
      const float hcc = h[c * in + c];
      float delta[R] = {};
      bool any = false;
      for (int64_t r = 0; r < nr; ++r) {
        // The exact minimiser over column c given all others, projected onto the grid (unless the
        // sweep is relaxed or the weight free); the correction P/H_cc is what makes it a
        // coordinate step (without the division the iteration diverges).
        const float beta = wr[r][c] + pr[r][j] / hcc;
        float nw = beta;
        if (quantize) {
          if (frr[r] && frr[r][c] != 0.0f) {
            cr[r][c] = zr[r][j];
          } else {
            // round(beta / s) + z; on a K-quant grid (non-integer zero) round(beta / s + z).
            float q = zeroInside ? std::nearbyint(beta / sr[r][j] + zr[r][j]) : std::nearbyint(beta / sr[r][j]) + zr[r][j];
            q = std::min(std::max(q, qmin), qmax);
            nw = (q - zr[r][j]) * sr[r][j];
            cr[r][c] = q;
          }
        }
        delta[r] = wr[r][c] - nw;
        wr[r][c] = nw;
        dr[r][j] = delta[r];
        any = any || delta[r] != 0.0f;
      }
      if (!any) continue;
      if (nr == R) {
        float* __restrict p0 = pr[0];
        float* __restrict p1 = pr[1];
        float* __restrict p2 = pr[2];
        float* __restrict p3 = pr[3];
        const float* __restrict hk = hc;
        const float d0 = delta[0], d1 = delta[1], d2 = delta[2], d3 = delta[3];
        for (int64_t k = 0; k < cnt; ++k) {
          const float v = hk[k];
          p0[k] += d0 * v;
          p1[k] += d1 * v;
          p2[k] += d2 * v;
          p3[k] += d3 * v;
        }
      } else {
        for (int64_t r = 0; r < nr; ++r)
          if (delta[r] != 0.0f)
            for (int64_t k = 0; k < cnt; ++k) pr[r][k] += delta[r] * hc[k];
      }
    }
  }
}

}  // namespace

const char* quantEaseInitName(QuantEaseInit v) {
  switch (v) {
    case QuantEaseInit::Weights: return "weights";
    case QuantEaseInit::Rtn: return "rtn";
    case QuantEaseInit::Gptq: return "gptq";
    case QuantEaseInit::Best: return "best";
  }
  return "best";
}

QuantEaseInit parseQuantEaseInit(const std::string& text) {
  if (text == "weights" || text == "w") return QuantEaseInit::Weights;
  if (text == "rtn") return QuantEaseInit::Rtn;
  if (text == "gptq") return QuantEaseInit::Gptq;
  if (text == "best") return QuantEaseInit::Best;
  throw Error("quantease_init: expected best, weights, rtn or gptq, got '" + text + "'");
}

bool relaxedSweep(int it, int numIter) { return it % 3 == 1 && it < numIter - 4; }

int polishSweeps(int numIter) { return std::max(1, numIter / 10); }

void QuantEaseOptions::validate() const {
  spec.validate();
  if (numIter < 0) throw Error("num_iter: " + std::to_string(numIter) + " must be >= 0");
  if (!(percdamp >= 0 && percdamp < 10))
    throw Error("percdamp: " + num(percdamp) + " must lie in [0, 10) (a fraction of the mean Hessian diagonal)");
  if (blockSize <= 0) throw Error("blocksize: " + std::to_string(blockSize) + " must be positive");
  if (!(outlierFraction >= 0 && outlierFraction < 1))
    throw Error("outlier: " + num(outlierFraction) + " must lie in [0, 1) (fraction kept in full precision)");
  if (!(alpha > 0 && alpha <= 1))
    throw Error("alpha: " + num(alpha) + " must lie in (0, 1] (IHT step as a fraction of 1/L)");
  if (structuredOutlier && outlierFraction == 0)
    throw Error("structured_outlier: needs an outlier fraction > 0");
  if (outlierFraction > 0 && numIter < 1)
    throw Error("num_iter: the outlier-aware variant needs at least 1 iteration");
}

namespace {
// A float32 contiguous tensor the descent may edit in place: t itself when the caller handed over
// the only reference to it and its storage (std::move), else a copy.
at::Tensor owned(at::Tensor t) {
  at::Tensor f = t.to(at::kFloat).contiguous();
  t = at::Tensor();
  if (f.use_count() == 1 && f.storage().use_count() == 1) return f;
  return f.clone();
}
}  // namespace

CoordinateDescent::CoordinateDescent(const at::Tensor& target, at::Tensor init, at::Tensor initCodes,
                                     const at::Tensor& h, const at::Tensor& scale, const at::Tensor& zero,
                                     const quant::QuantSpec& spec, int blockSize)
    : CoordinateDescent(target, std::move(init), std::move(initCodes), h,
                        ColumnGrid{scale, zero, at::arange(scale.size(1), at::TensorOptions(scale.device()).dtype(at::kLong))},
                        spec, blockSize) {}

CoordinateDescent::CoordinateDescent(const at::Tensor& target, at::Tensor init, at::Tensor initCodes,
                                     const at::Tensor& h, const ColumnGrid& grid, const quant::QuantSpec& spec,
                                     int blockSize)
    : target_(target.to(at::kFloat).contiguous()),
      wq_(owned(std::move(init))),
      codes_(owned(std::move(initCodes))),
      h_(h.to(at::kFloat).contiguous()),
      scale_(grid.scales.to(target_.device(), at::kFloat).contiguous()),
      zero_(grid.zeros.to(target_.device(), at::kFloat).contiguous()),
      group_(grid.group.to(target_.device(), at::kLong).contiguous()),
      spec_(spec),
      blockSize_(blockSize) {
  if (scale_.dim() != 2 || scale_.sizes() != zero_.sizes() || scale_.size(0) != wq_.size(0) || group_.dim() != 1 ||
      group_.size(0) != wq_.size(1))
    throw Error("quantease: the grid must be scales/zeros [out, groups] and a group per column [in]");
  if (at::any(at::diagonal(h_) <= 0).item<bool>())
    throw Error("hessian: coordinate descent needs a positive diagonal (set dead columns to 1)");
  p_ = at::matmul(at::sub(target_, wq_), h_).contiguous();
}

void CoordinateDescent::setTarget(const at::Tensor& target) {
  const at::Tensor t = target.to(at::kFloat).contiguous();
  p_.add_(at::matmul(at::sub(t, target_), h_));
  target_ = t;
}

double CoordinateDescent::objective() const {
  // In float64, a chunk of rows at a time (float64 copies of three whole [out, in] matrices would be
  // 1 GB on a 7B down projection).
  const int64_t out = wq_.size(0), in = wq_.size(1);
  const int64_t chunk = std::max<int64_t>(1, (int64_t{16} << 20) / std::max<int64_t>(1, in * 8));
  double sum = 0;
  for (int64_t r0 = 0; r0 < out; r0 += chunk) {
    const int64_t n = std::min(chunk, out - r0);
    sum += at::sum(at::mul(at::sub(target_.narrow(0, r0, n), wq_.narrow(0, r0, n)).to(at::kDouble),
                           p_.narrow(0, r0, n).to(at::kDouble)))
               .item<double>();
  }
  return sum;
}

void CoordinateDescent::setFree(const at::Tensor& mask) {
  free_ = mask.defined() ? mask.to(wq_.device(), at::kFloat).contiguous() : at::Tensor();
}

void CoordinateDescent::sweepBlocked(jobs::Progress& progress, double begin, double end, bool quantize) {
  ++seconds_.sweeps;
  const int64_t in = wq_.size(1);
  if (!expandedScale_.defined()) {  // the device form reads the grid per element
    expandedScale_ = scale_.index_select(1, group_).contiguous();
    expandedZero_ = zero_.index_select(1, group_).contiguous();
  }
  SweepBlock blk{p_, wq_, codes_, h_, expandedScale_, expandedZero_, {}, 0, 0,
                 quant::intGrid(spec_.bits, spec_.symmetric), quantize, free_,
                 quant::roundsWithZeroInside(spec_)};
  for (int64_t b0 = 0; b0 < in; b0 += blockSize_) {
    progress.checkCancel();
    const int64_t cnt = std::min<int64_t>(blockSize_, in - b0), b1 = b0 + cnt;
    blk.b0 = b0;
    blk.cnt = cnt;
    blk.delta = at::zeros({wq_.size(0), cnt}, wq_.options());
    const auto t0 = std::chrono::steady_clock::now();
    sweepBlockDispatch(blk);
    const auto t1 = std::chrono::steady_clock::now();
    if (b0 > 0) p_.narrow(1, 0, b0).addmm_(blk.delta, h_.narrow(0, b0, cnt).narrow(1, 0, b0));
    if (b1 < in) p_.narrow(1, b1, in - b1).addmm_(blk.delta, h_.narrow(0, b0, cnt).narrow(1, b1, in - b1));
    // (on a device the times are those of the launches unless the caller synchronises)
    seconds_.columns += std::chrono::duration<double>(t1 - t0).count();
    seconds_.updates += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    progress.update(begin + (end - begin) * static_cast<double>(b1) / static_cast<double>(in), "quantease");
  }
}

void CoordinateDescent::sweep(jobs::Progress& progress, double begin, double end, bool quantize) {
  if (!p_.device().is_cpu()) {
    sweepBlocked(progress, begin, end, quantize);
    return;
  }
  ++seconds_.sweeps;
  const int64_t out = wq_.size(0), in = wq_.size(1);
  const quant::IntGrid grid = quant::intGrid(spec_.bits, spec_.symmetric);
  const float qmin = static_cast<float>(grid.qmin), qmax = static_cast<float>(grid.qmax);
  float* p = p_.data_ptr<float>();
  float* wq = wq_.data_ptr<float>();
  float* codes = codes_.data_ptr<float>();
  const float* h = h_.data_ptr<float>();
  const float* fr = free_.defined() ? free_.data_ptr<float>() : nullptr;
  for (int64_t b0 = 0; b0 < in; b0 += blockSize_) {
    progress.checkCancel();
    const int64_t cnt = std::min<int64_t>(blockSize_, in - b0), b1 = b0 + cnt;
    at::Tensor d = at::zeros({out, cnt}, at::kFloat);  // per column: old - new (residual change)
    float* dd = d.data_ptr<float>();
    // The block's grid per element, [out, cnt] (the whole [out, in] expansion is not held).
    const at::Tensor cols = group_.narrow(0, b0, cnt);
    const at::Tensor scBlock = scale_.index_select(1, cols).contiguous(), zeBlock = zero_.index_select(1, cols).contiguous();
    const float* sc = scBlock.data_ptr<float>();
    const float* ze = zeBlock.data_ptr<float>();
    const auto t0 = std::chrono::steady_clock::now();
    // Rows are independent: each walks the block's columns in order, keeping its slice of P exact.
    at::parallel_for(0, out, 16, [&](int64_t r0, int64_t r1) {
      sweepRows(r0, r1, in, b0, cnt, p, wq, codes, h, sc, ze, fr, dd, quantize, qmin, qmax,
                quant::roundsWithZeroInside(spec_));
    });
    const auto t1 = std::chrono::steady_clock::now();
    if (b0 > 0) p_.narrow(1, 0, b0).addmm_(d, h_.narrow(0, b0, cnt).narrow(1, 0, b0));
    if (b1 < in) p_.narrow(1, b1, in - b1).addmm_(d, h_.narrow(0, b0, cnt).narrow(1, b1, in - b1));
    seconds_.columns += std::chrono::duration<double>(t1 - t0).count();
    seconds_.updates += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    progress.update(begin + (end - begin) * static_cast<double>(b1) / static_cast<double>(in), "quantease");
  }
}

LayerQuantResult quantizeQuantEase(const at::Tensor& wIn, const at::Tensor& hessian, const QuantEaseOptions& opts,
                                   jobs::Progress& progress) {
  if (!wIn.defined() || wIn.dim() != 2) throw Error("weight: expected a 2-D [out, in] tensor");
  if (!hessian.defined() || hessian.dim() != 2 || hessian.size(0) != wIn.size(1) || hessian.size(1) != wIn.size(1))
    throw Error("hessian: expected [" + std::to_string(wIn.size(1)) + ", " + std::to_string(wIn.size(1)) +
                "] for a weight with in_features " + std::to_string(wIn.size(1)));
  opts.validate();
  opts.spec.validateFor(wIn.size(0), wIn.size(1));
  const std::string method =
      std::string(opts.gptqInit ? "gptq_quantease" : "quantease") + (opts.outlierFraction > 0 ? "_outlier" : "");
  progress.checkCancel();
  if (!opts.spec.enabled()) return unquantized(method, wIn, hessian);

  const auto t0 = std::chrono::steady_clock::now();
  // The starts: GPTQ's rounding for gptq_quantease; for plain QuantEase W (the reference's), its
  // round to nearest, GPTQ's rounding, or (best, the default) the reference's descent from W and a
  // polish of GPTQ's rounding, the better kept. QuantEase's descent is local: from W on strongly
  // correlated inputs it settles above GPTQ, from GPTQ's rounding it only goes down (issue 16,
  // docs/BENCHMARKS.md).
  std::vector<QuantEaseInit> starts;
  if (opts.gptqInit || opts.init == QuantEaseInit::Gptq) starts = {QuantEaseInit::Gptq};
  else if (opts.init == QuantEaseInit::Best) starts = {QuantEaseInit::Weights, QuantEaseInit::Gptq};
  else starts = {opts.init};
  const bool best2 = starts.size() == 2;
  logPhase("layer begins");
  QuantEaseStart common = prepareCommon(wIn, hessian, opts);
  LayerQuantResult r;
  r.method = method;
  Descent best;
  for (size_t i = 0; i < starts.size(); ++i) {
    const double split = 0.8;  // the polish is a few sweeps against the descent's num_iter
    jobs::SubProgress sub(progress, best2 && i == 1 ? split : 0.0, best2 && i == 0 ? split : 1.0);
    // GPTQ factors its own copies of H: the descent's copy is rebuilt after it rather than held
    // through it (a 7B down projection's peak was GPTQ with both, 485 MB each).
    if (starts[i] == QuantEaseInit::Gptq) common.h = at::Tensor();
    Descent d = descend(common, hessian, opts, starts[i], /*polish=*/best2 && i == 1, sub);
    r.objectiveTrace.insert(r.objectiveTrace.end(), d.trace.begin(), d.trace.end());
    r.iterations += d.iterations;
    if (i == 0 || d.objective < best.objective) best = std::move(d);
  }
  const at::Tensor codes = best.codes, bestFree = best.free;
  if (bestFree.defined()) {
    // The kept weights of the best iterate: their codes are the zero point (the dense part is
    // exactly 0 there) and their full value goes to the sparse part.
    const int64_t out = codes.size(0), in = codes.size(1);
    if (opts.structuredOutlier) {
      const at::Tensor kept = at::nonzero(bestFree.select(0, 0) != 0).flatten();  // sorted
      const int64_t nc = kept.numel();
      r.outlierIndices = at::stack({at::arange(out, at::kLong).repeat_interleave(nc), kept.repeat({out})}, 1);
      r.outlierValues = best.weight.index_select(1, kept).reshape({-1}).contiguous();
      r.keptColumns = kept;
    } else {
      const at::Tensor kept = at::nonzero(bestFree.flatten() != 0).flatten();  // sorted
      r.outlierIndices = at::stack({at::div(kept, in, "floor"), at::remainder(kept, in)}, 1);
      r.outlierValues = best.weight.flatten().index_select(0, kept);
    }
  }
  r.quantSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The working set goes before the error evaluation allocates (on a 7B down projection, over 1 GB).
  common = QuantEaseStart();
  best.weight = best.free = at::Tensor();
  // act_order reorders a GPTQ start's groups (g_idx stored); a descent from W only sweeps in that
  // order and keeps the identity g_idx.
  quant::QuantSpec accounting = opts.spec;
  accounting.actOrder = best.fromGptq && opts.spec.actOrder;
  finishResult(r, wIn, codes, best.grid, hessian, accounting);
  logPhase("layer done");
  return r;
}

}  // namespace qs::algo
