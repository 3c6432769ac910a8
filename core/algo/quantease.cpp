#include "core/algo/quantease.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <string>

#include "core/algo/gptq.h"
#include "core/algo/hessian.h"
#include "core/algo/quantease_outlier.h"
#include "core/algo/quantease_sweep.h"
#include "core/algo/weight_grid.h"
#include "core/util/error.h"

namespace qs::algo {
namespace {

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

QuantEaseStart prepare(const at::Tensor& wIn, const at::Tensor& hessian, const QuantEaseOptions& opts,
                       jobs::Progress& progress) {
  QuantEaseStart s;
  at::Tensor h = hessian.to(at::kFloat);
  if (h.data_ptr() == hessian.data_ptr()) h = h.clone();  // a float32 H is the caller's: copy before editing
  const at::Tensor dead = deadColumns(h);
  h.diagonal().masked_fill_(dead, 1.0);
  s.h = h.contiguous();
  s.target = wIn.to(at::kFloat).clone().masked_fill_(dead.unsqueeze(0), 0.0).contiguous();
  if (opts.gptqInit) {
    jobs::SubProgress sub(progress, 0.0, 0.1);
    GptqOptions g;
    g.spec = opts.spec;
    g.percdamp = opts.percdamp;
    g.blockSize = opts.blockSize;
    const LayerQuantResult init = quantizeGptq(s.target, hessian, g, sub);
    s.grid = {init.scales, init.zeros, init.gIdx};
    s.codes = init.codes.to(at::kFloat).contiguous();
  } else {
    s.grid = observeWeight(s.target, opts.spec);
  }
  s.scale = expandToColumns(s.grid.scales, s.grid.gIdx);
  s.zero = expandToColumns(s.grid.zeros, s.grid.gIdx);
  if (!opts.gptqInit) s.codes = quant::quantizeCodes(s.target, s.scale, s.zero, opts.spec).contiguous();
  s.wq = quant::dequantizeCodes(s.codes, s.scale, s.zero).contiguous();
  return s;
}

}  // namespace

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
}

CoordinateDescent::CoordinateDescent(const at::Tensor& target, const at::Tensor& init, const at::Tensor& initCodes,
                                     const at::Tensor& h, const at::Tensor& scale, const at::Tensor& zero,
                                     const quant::QuantSpec& spec, int blockSize)
    : target_(target.to(at::kFloat).contiguous()),
      wq_(init.to(at::kFloat).clone().contiguous()),
      codes_(initCodes.to(at::kFloat).clone().contiguous()),
      h_(h.to(at::kFloat).contiguous()),
      scale_(scale.to(at::kFloat).contiguous()),
      zero_(zero.to(at::kFloat).contiguous()),
      spec_(spec),
      blockSize_(blockSize) {
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

void CoordinateDescent::sweepBlocked(jobs::Progress& progress, double begin, double end) {
  const int64_t in = wq_.size(1);
  SweepBlock blk{p_, wq_, codes_, h_, scale_, zero_, {}, 0, 0, quant::intGrid(spec_.bits, spec_.symmetric)};
  for (int64_t b0 = 0; b0 < in; b0 += blockSize_) {
    progress.checkCancel();
    const int64_t cnt = std::min<int64_t>(blockSize_, in - b0), b1 = b0 + cnt;
    blk.b0 = b0;
    blk.cnt = cnt;
    blk.delta = at::zeros({wq_.size(0), cnt}, wq_.options());
    sweepBlockDispatch(blk);
    if (b0 > 0) p_.narrow(1, 0, b0).addmm_(blk.delta, h_.narrow(0, b0, cnt).narrow(1, 0, b0));
    if (b1 < in) p_.narrow(1, b1, in - b1).addmm_(blk.delta, h_.narrow(0, b0, cnt).narrow(1, b1, in - b1));
    progress.update(begin + (end - begin) * static_cast<double>(b1) / static_cast<double>(in), "quantease");
  }
}

void CoordinateDescent::sweep(jobs::Progress& progress, double begin, double end) {
  if (!p_.device().is_cpu()) {
    sweepBlocked(progress, begin, end);
    return;
  }
  const int64_t out = wq_.size(0), in = wq_.size(1);
  const quant::IntGrid grid = quant::intGrid(spec_.bits, spec_.symmetric);
  const float qmin = static_cast<float>(grid.qmin), qmax = static_cast<float>(grid.qmax);
  float* p = p_.data_ptr<float>();
  float* wq = wq_.data_ptr<float>();
  float* codes = codes_.data_ptr<float>();
  const float* h = h_.data_ptr<float>();
  const float* sc = scale_.data_ptr<float>();
  const float* ze = zero_.data_ptr<float>();
  for (int64_t b0 = 0; b0 < in; b0 += blockSize_) {
    progress.checkCancel();
    const int64_t cnt = std::min<int64_t>(blockSize_, in - b0), b1 = b0 + cnt;
    at::Tensor d = at::zeros({out, cnt}, at::kFloat);  // per column: old - new (residual change)
    float* dd = d.data_ptr<float>();
    // Rows are independent: each walks the block's columns in order, keeping its slice of P exact.
    at::parallel_for(0, out, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t o = r0; o < r1; ++o) {
        float* pr = p + o * in + b0;
        float* wr = wq + o * in;
        float* cr = codes + o * in;
        const float* sr = sc + o * in;
        const float* zr = ze + o * in;
        float* dr = dd + o * cnt;
        for (int64_t j = 0; j < cnt; ++j) {
          const int64_t c = b0 + j;
          const float* hc = h + c * in + b0;
          // The exact minimiser over column c given all others, projected onto the grid; the
          // correction P/H_cc is what makes it a coordinate step (without the division the
          // iteration diverges).
          const float beta = wr[c] + pr[j] / h[c * in + c];
          float q = std::nearbyint(beta / sr[c]) + zr[c];
          q = std::min(std::max(q, qmin), qmax);
          const float nw = (q - zr[c]) * sr[c];
          const float delta = wr[c] - nw;
          wr[c] = nw;
          cr[c] = q;
          dr[j] = delta;
          if (delta != 0.0f)
            for (int64_t k = 0; k < cnt; ++k) pr[k] += delta * hc[k];
        }
      }
    });
    if (b0 > 0) p_.narrow(1, 0, b0).addmm_(d, h_.narrow(0, b0, cnt).narrow(1, 0, b0));
    if (b1 < in) p_.narrow(1, b1, in - b1).addmm_(d, h_.narrow(0, b0, cnt).narrow(1, b1, in - b1));
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
  QuantEaseStart start = prepare(wIn, hessian, opts, progress);
  LayerQuantResult r;
  r.method = method;
  at::Tensor codes;
  if (opts.outlierFraction > 0) {
    runOutlierQuantEase(start, opts, r, codes, progress);
  } else {
    CoordinateDescent cd(start.target, start.wq, start.codes, start.h, start.scale, start.zero, opts.spec,
                         opts.blockSize);
    start.wq = at::Tensor();     // the descent holds its own copies
    start.codes = at::Tensor();
    r.objectiveTrace.push_back(cd.objective());
    const double b = opts.gptqInit ? 0.1 : 0.0;
    for (int it = 0; it < opts.numIter; ++it) {
      cd.sweep(progress, b + (1 - b) * it / opts.numIter, b + (1 - b) * (it + 1) / opts.numIter);
      r.objectiveTrace.push_back(cd.objective());
      r.iterations = it + 1;
    }
    codes = cd.codes();
  }
  r.quantSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The working set goes before the error evaluation allocates (on a 7B down projection, over 1 GB).
  start.h = start.target = start.scale = start.zero = start.wq = start.codes = at::Tensor();
  // act_order only shapes a GPTQ initialisation's groups; plain QuantEase keeps the identity g_idx.
  quant::QuantSpec accounting = opts.spec;
  accounting.actOrder = opts.gptqInit && opts.spec.actOrder;
  finishResult(r, wIn, codes, start.grid, hessian, accounting);
  return r;
}

}  // namespace qs::algo
