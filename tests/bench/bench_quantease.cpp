// QuantEase against its reference (issue 16, docs/BENCHMARKS.md "QuantEase against its
// reference"): on three kinds of layers, at 3 and 4 bits, per channel and with groups of 128,
// the reconstruction error ||WX - W^X||^2 / ||WX||^2 of
//   - GPTQ (QuantScope's; it matches the reference GPTQ to 4 digits, issue 16),
//   - a re-implementation of the reference QuantEase loop (linkedin/QuantEase method/quantease.py,
//     quantease_outlier.py, gptq_quantease.py with its three known defects fixed): written here from
//     the algorithm, column by column with LibTorch vector ops as the reference does with PyTorch;
//   - QuantScope's QuantEase from W (the reference's start and schedule: equal to the reference
//     loop up to float rounding), QuantEase (default start "best": that descent and GPTQ's rounding
//     polished, the better kept), GPTQ+QuantEase and QuantEase with 1% outliers (unstructured and
//     structured; both with the default start),
// and the seconds of the reference, of QuantEase from W and of QuantEase, with the seconds per
// sweep of the reference and of QuantEase from W. Not a Google Benchmark: one run prints a
// markdown table. QS_QE_ABLATION=1 adds one line per grid with the causes taken one at a time.
//
//   bench_quantease [--iters 30] [--tokens 16384] [--layer A|B|C] [--no-ref] [--times]
// (--no-ref leaves the reference columns empty: the reference loop is the slow part; --times prints
// only the time lines, w3 per channel, for a measurement on an otherwise idle machine.)
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/algo/gptq.h"
#include "core/algo/hessian.h"
#include "core/algo/layer_result.h"
#include "core/algo/quantease.h"
#include "core/algo/weight_grid.h"
#include "core/quant/quant_spec.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct BenchLayer {
  std::string name;
  at::Tensor w, x, h;  // w [out, in] float32, x [tokens, in], h = 2 X^T X / n float64
};

// The three kinds the issue names.
BenchLayer correlatedAsymmetric(int64_t tokens) {
  at::Generator g = at::detail::createCPUGenerator(1);
  const int64_t out = 768, in = 768;
  BenchLayer b{"768x768 correlated, asymmetric outlier channels", {}, {}, {}};
  b.w = at::randn({out, in}, g) * 0.02;
  const at::Tensor mix = at::randn({16, in}, g);
  b.x = at::randn({tokens, in}, g) + at::matmul(at::randn({tokens, 16}, g), mix) * 0.5;
  for (int64_t c : {int64_t{7}, int64_t{300}, int64_t{511}}) b.x.select(1, c).mul_(20.0).add_(40.0);  // shifted
  return b;
}
BenchLayer reluDown(int64_t tokens) {
  at::Generator g = at::detail::createCPUGenerator(2);
  const int64_t out = 768, in = 3072;
  BenchLayer b{"768x3072 down projection, ReLU inputs, dead columns", {}, {}, {}};
  b.w = at::randn({out, in}, g) * 0.02;
  b.x = at::relu(at::randn({tokens, in}, g));
  for (int64_t c = 0; c < in; c += 97) b.x.select(1, c).zero_();  // dead units
  return b;
}
BenchLayer gaussian(int64_t tokens) {
  at::Generator g = at::detail::createCPUGenerator(3);
  BenchLayer b{"3072x768 Gaussian", {}, {}, {}};
  b.w = at::randn({3072, 768}, g) * 0.02;
  b.x = at::randn({tokens, 768}, g);
  return b;
}

// ---- the reference loop, re-implemented ----------------------------------------------------
struct RefOptions {
  int bits = 4;
  int group = -1;       // -1 = per row
  int iters = 30;
  double outlier = 0;   // fraction kept in full precision
  bool structured = false;
  bool gptqInit = false;
};

// Asymmetric min/max grid of the reference quantizer (0 always inside), per row of x; with an
// outlier fraction the range is trimmed: the n-th smallest and the (n+1)-th largest value of the
// row, n = round(cols * fraction / 2).
std::pair<at::Tensor, at::Tensor> refParams(const at::Tensor& x, int bits, double outlier) {
  const double maxq = std::pow(2.0, bits) - 1;
  at::Tensor lo, hi;
  const int64_t n = static_cast<int64_t>(std::llround(static_cast<double>(x.size(1)) * outlier / 2));
  if (outlier > 0 && n > 0) {
    lo = std::get<0>(at::topk(x, n, 1, /*largest=*/false)).select(1, n - 1);
    hi = std::get<0>(at::topk(x, n + 1, 1, /*largest=*/true)).select(1, n);
  } else {
    lo = std::get<0>(x.min(1));
    hi = std::get<0>(x.max(1));
  }
  lo = at::clamp_max(lo, 0.0);
  hi = at::clamp_min(hi, 0.0);
  const at::Tensor same = (lo == hi);
  lo = at::where(same, at::full_like(lo, -1.0), lo);
  hi = at::where(same, at::full_like(hi, 1.0), hi);
  const at::Tensor scale = (hi - lo) / maxq;
  const at::Tensor zero = at::round(-lo / scale);
  return {scale.unsqueeze(1), zero.unsqueeze(1)};
}

at::Tensor refQuantize(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero, int bits) {
  const double maxq = std::pow(2.0, bits) - 1;
  return scale * (at::clamp(at::round(x / scale) + zero, 0.0, maxq) - zero);
}

// Per-column grid [out, in] of w (groups of `group` columns, or whole rows).
std::pair<at::Tensor, at::Tensor> refGrid(const at::Tensor& w, const RefOptions& o) {
  const int64_t in = w.size(1);
  at::Tensor s = at::empty_like(w), z = at::empty_like(w);
  const int64_t g = o.group > 0 ? o.group : in;
  for (int64_t c0 = 0; c0 < in; c0 += g) {
    const int64_t n = std::min(g, in - c0);
    auto [sc, ze] = refParams(w.narrow(1, c0, n), o.bits, o.structured ? 0.0 : o.outlier);
    s.narrow(1, c0, n).copy_(sc.expand({w.size(0), n}));
    z.narrow(1, c0, n).copy_(ze.expand({w.size(0), n}));
  }
  return {s, z};
}

// The reference's projection onto the support: m's `keep` largest entries by |value| (or its
// `keep` columns of largest norm), everything else zero.
at::Tensor keepLargest(const at::Tensor& m, int64_t keep, bool structured) {
  at::Tensor out = at::zeros_like(m);
  if (structured) {
    const at::Tensor idx = std::get<1>(at::topk(at::norm(m, 2, {0}), keep));
    out.index_copy_(1, idx, m.index_select(1, idx));
  } else {
    const at::Tensor idx = std::get<1>(at::topk(at::abs(m).flatten(), keep));
    out.view({-1}).index_copy_(0, idx, m.flatten().index_select(0, idx));
  }
  return out;
}

struct RefResult {
  at::Tensor weight;
  double seconds = 0, secondsPerSweep = 0;
  double gemmSeconds = 0, columnSeconds = 0;  // P and P-hat GEMMs; the column loop (all sweeps)
};

// The reference loop: W^ starts at W (minus the outlier start), P = W normSigma per sweep
// (normSigma = XtX with column j divided by XtX_jj, diagonal zeroed), the column update
// u = P_j - Phat_j + sum_{k<j} normSigma_kj (old_k - new_k), rounded unless the sweep is relaxed
// (it % 3 == 1, not the last sweep, not past 25). Outliers: S starts at the top-k |W| (or columns
// by norm), then after every sweep S += alpha / (2 lambda_max) (W - W^ - S) XtX, projected.
RefResult referenceQuantEase(const at::Tensor& wIn, const at::Tensor& h, const RefOptions& o) {
  const auto t0 = Clock::now();
  const int64_t out = wIn.size(0), in = wIn.size(1);
  at::Tensor w = wIn.clone();
  const at::Tensor sigma = h.to(at::kFloat);
  at::Tensor diag = at::diagonal(sigma).clone();
  diag = at::where(diag == 0, at::ones_like(diag), diag);
  at::Tensor norm = sigma / diag.unsqueeze(0);  // column j / Sigma_jj
  norm.fill_diagonal_(0.0);
  at::Tensor start;
  qs::algo::LayerQuantResult gptq;
  if (o.gptqInit) {
    qs::algo::GptqOptions g;
    g.spec = qs::quant::QuantSpec().withBits(o.bits).withGroupSize(o.group).withSymmetric(false);
    gptq = qs::algo::quantizeGptq(wIn, h, g);
    start = gptq.weight;
  }
  at::Tensor sparse = at::zeros_like(w);
  int64_t keep = 0;
  double step = 0;
  if (o.outlier > 0) {
    keep = static_cast<int64_t>(std::llround(o.outlier * (o.structured ? in : out * in)));
    sparse = keepLargest(w, keep, o.structured);
    const double lmax = at::linalg_eigvalsh(sigma.to(at::kDouble), "L").max().item<double>();
    step = 1.0 / lmax / 2.0;
  }
  at::Tensor target = w - sparse;
  auto [scale, zero] = refGrid(o.structured && o.outlier > 0 ? target : w, o);
  if (o.gptqInit && o.group > 0) {
    // gptq_quantease.py fits each group's grid to GPTQ_W, the weights as GPTQ last updated them;
    // with groups aligned to GPTQ's 128-column blocks those are the values GPTQ fitted its own
    // group grids to, so the descent runs on GPTQ's grid (per channel both are W's).
    scale = qs::algo::expandToColumns(gptq.scales, gptq.gIdx);
    zero = qs::algo::expandToColumns(gptq.zeros, gptq.gIdx);
  }
  at::Tensor wq = o.gptqInit ? start.clone() : target.clone();
  double sweepSeconds = 0, gemmSeconds = 0, columnSeconds = 0;
  for (int it = 0; it < o.iters; ++it) {
    const auto ts = Clock::now();
    const bool quant = it % 3 != 1 || it == o.iters - 1 || it > 25;
    if (o.structured && o.outlier > 0) std::tie(scale, zero) = refGrid(target, o);
    // P = T normSigma with normSigma's unit diagonal: P_j = T_j + sum_{k != j} T_k Sigma_kj / Sigma_jj.
    const at::Tensor p = at::matmul(target, norm) + target;
    const at::Tensor pHat = at::matmul(wq, norm);
    const auto tl = Clock::now();
    gemmSeconds += since(ts);
    at::Tensor delta = at::zeros_like(wq);
    for (int64_t j = 0; j < in; ++j) {
      at::Tensor u = p.select(1, j) - pHat.select(1, j);
      if (j > 0) u = u + at::mv(delta.narrow(1, 0, j), norm.select(1, j).narrow(0, 0, j));
      if (quant) u = refQuantize(u, scale.select(1, j), zero.select(1, j), o.bits);
      delta.select(1, j).copy_(wq.select(1, j) - u);
      wq.select(1, j).copy_(u);
    }
    columnSeconds += since(tl);
    if (o.outlier > 0) {
      sparse = sparse + step * at::matmul(w - wq - sparse, sigma);
      sparse = keepLargest(sparse, keep, o.structured);
      target = w - sparse;
    }
    sweepSeconds += since(ts);
  }
  RefResult r;
  r.weight = wq + sparse;
  r.seconds = since(t0);
  r.secondsPerSweep = sweepSeconds / std::max(1, o.iters);
  r.gemmSeconds = gemmSeconds;
  r.columnSeconds = columnSeconds;
  return r;
}

std::string pct(double e) {  // negative: not measured
  if (e < 0) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.3f%%", 100 * e);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  int iters = 30;
  int64_t tokens = 16384;
  bool ref = true, timesOnly = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) iters = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--layer") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--no-ref")) ref = false;
    else if (!std::strcmp(argv[i], "--times")) timesOnly = true;
  }
  std::vector<BenchLayer> layers;
  if (only.empty() || only == "A") layers.push_back(correlatedAsymmetric(tokens));
  if (only.empty() || only == "B") layers.push_back(reluDown(tokens));
  if (only.empty() || only == "C") layers.push_back(gaussian(tokens));
  for (auto& l : layers) l.h = qs::algo::hessianFromInputs(l.x, qs::jobs::Progress::none());

  if (!timesOnly) {
    std::printf("| layer | grid | GPTQ | ref QE | QE from W | QE | ref GPTQ+QE | GPTQ+QE | ref QE 1%% | QE 1%% | ref QE 1%% cols | QE 1%% cols | s: ref QE / QE from W / QE (per sweep) |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  }
  std::vector<std::string> notes;
  for (const auto& l : layers) {
    {  // where a sweep's time goes: QuantScope's descent from W (w3 per channel) and the reference's
      const auto spec = qs::quant::QuantSpec().withBits(3).withSymmetric(false);
      const at::Tensor h = l.h.to(at::kFloat);
      const qs::algo::WeightGrid grid = qs::algo::observeWeight(l.w, spec);
      const at::Tensor sc = qs::algo::expandToColumns(grid.scales, grid.gIdx);
      const at::Tensor ze = qs::algo::expandToColumns(grid.zeros, grid.gIdx);
      at::Tensor hd = h.clone();
      hd.diagonal().masked_fill_(hd.diagonal() == 0, 1.0);
      qs::algo::CoordinateDescent cd(l.w, l.w, ze, hd, sc, ze, spec, 128);
      for (int it = 0; it < iters; ++it) cd.sweep(qs::jobs::Progress::none(), 0, 1, !qs::algo::relaxedSweep(it, iters));
      const auto& t = cd.sweepSeconds();
      const double macs = static_cast<double>(l.w.size(0)) * l.w.size(1) * l.w.size(1);
      char b[512];
      std::snprintf(b, sizeof b,
                    "%s, per sweep: QuantScope %.3f s = column updates inside the 128-column blocks %.3f s + "
                    "GEMM updates of P %.3f s (%.1f GFLOP/s over the out x in x in multiply-adds)",
                    l.name.c_str(), (t.columns + t.updates) / t.sweeps, t.columns / t.sweeps, t.updates / t.sweeps,
                    2 * macs / ((t.columns + t.updates) / t.sweeps) / 1e9);
      std::string note = b;
      auto whole = [&](qs::algo::QuantEaseInit init) {
        qs::algo::QuantEaseOptions q = qs::algo::QuantEaseOptions().withInit(init);
        q.spec = spec;
        q.numIter = iters;
        return qs::algo::quantizeQuantEase(l.w, l.h, q).quantSeconds;
      };
      const double fromW = whole(qs::algo::QuantEaseInit::Weights), best = whole(qs::algo::QuantEaseInit::Best);
      if (ref) {
        RefOptions ro;
        ro.bits = 3;
        ro.iters = iters;
        const RefResult rr = referenceQuantEase(l.w, l.h, ro);
        std::snprintf(b, sizeof b,
                      "; reference %.3f s = P and P-hat GEMMs %.3f s + column loop %.3f s. Whole run of %d "
                      "iterations: reference %.2f s, QuantEase from W %.2f s (%.2f of the reference's), QuantEase "
                      "%.2f s (%.2f)",
                      rr.secondsPerSweep, rr.gemmSeconds / iters, rr.columnSeconds / iters, iters, rr.seconds, fromW,
                      fromW / rr.seconds, best, best / rr.seconds);
      } else {
        std::snprintf(b, sizeof b, ". Whole run of %d iterations: QuantEase from W %.2f s, QuantEase %.2f s", iters,
                      fromW, best);
      }
      note += b;
      if (timesOnly) {
        std::printf("- %s\n", note.c_str());
        std::fflush(stdout);
        continue;
      }
      notes.push_back(note);
    }
    for (int bits : {3, 4}) {
      for (int group : {-1, 128}) {
        const auto spec = qs::quant::QuantSpec().withBits(bits).withGroupSize(group).withSymmetric(false);
        auto err = [&](const at::Tensor& wq) { return qs::algo::relativeError(l.w, wq, l.h); };
        qs::algo::GptqOptions go;
        go.spec = spec;
        const double gptq = qs::algo::quantizeGptq(l.w, l.h, go).relError;
        RefOptions ro;
        ro.bits = bits;
        ro.group = group;
        ro.iters = iters;
        const RefResult refQe = ref ? referenceQuantEase(l.w, l.h, ro) : RefResult{};
        auto refErr = [&](const RefOptions& o) { return ref ? err(referenceQuantEase(l.w, l.h, o).weight) : -1.0; };
        int sweeps = 0;
        auto ours = [&](qs::algo::QuantEaseOptions q) {
          const bool actOrder = q.spec.actOrder;
          q.spec = spec;
          q.spec.actOrder = actOrder;
          q.numIter = iters;
          const qs::algo::LayerQuantResult r = qs::algo::quantizeQuantEase(l.w, l.h, q);
          sweeps = r.iterations;
          return std::make_pair(r.relError, r.quantSeconds);  // the algorithm, error evaluation excluded (as the reference's)
        };
        const auto qe = ours(qs::algo::QuantEaseOptions());
        const int qeSweeps = sweeps;
        const auto qeW = ours(qs::algo::QuantEaseOptions().withInit(qs::algo::QuantEaseInit::Weights));
        if (std::getenv("QS_QE_ABLATION")) {  // the causes of issue 16, one at a time (from W, from RTN; relaxed or not)
          const auto a = ours(qs::algo::QuantEaseOptions().withInit(qs::algo::QuantEaseInit::Rtn).withRelaxedSweeps(false));
          const auto b = ours(qs::algo::QuantEaseOptions().withInit(qs::algo::QuantEaseInit::Weights).withRelaxedSweeps(false));
          const auto c = ours(qs::algo::QuantEaseOptions().withInit(qs::algo::QuantEaseInit::Rtn));
          const auto d = ours(qs::algo::QuantEaseOptions().withInit(qs::algo::QuantEaseInit::Weights).withActOrder(true));
          std::printf("ablation %s w%d %s: rtn-init all-rounded %s, W-init all-rounded %s, rtn-init relaxed %s, "
                      "W-init relaxed %s, W-init act-order %s\n",
                      l.name.c_str(), bits, group > 0 ? "g128" : "ch", pct(a.first).c_str(), pct(b.first).c_str(),
                      pct(c.first).c_str(), pct(qeW.first).c_str(), pct(d.first).c_str());
        }
        RefOptions rg = ro;
        rg.gptqInit = true;
        const double refGq = refErr(rg);
        const auto gq = ours(qs::algo::QuantEaseOptions().withGptqInit(true));
        RefOptions rou = ro;
        rou.outlier = 0.01;
        const double refOu = refErr(rou);
        const auto ou = ours(qs::algo::QuantEaseOptions().withOutlier(0.01));
        RefOptions ros = rou;
        ros.structured = true;
        const double refOs = refErr(ros);
        const auto os = ours(qs::algo::QuantEaseOptions().withOutlier(0.01, true));
        char secs[128];
        std::snprintf(secs, sizeof secs, "%.1f / %.1f / %.1f (%.3f / %.3f; QE %d sweeps)", refQe.seconds, qeW.second,
                      qe.second, refQe.secondsPerSweep, qeW.second / iters, qeSweeps);
        std::printf("| %s | w%d %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", l.name.c_str(), bits,
                    group > 0 ? "g128" : "ch", pct(gptq).c_str(), pct(ref ? err(refQe.weight) : -1.0).c_str(),
                    pct(qeW.first).c_str(), pct(qe.first).c_str(),
                    pct(refGq).c_str(), pct(gq.first).c_str(), pct(refOu).c_str(), pct(ou.first).c_str(),
                    pct(refOs).c_str(), pct(os.first).c_str(), secs);
        std::fflush(stdout);
      }
    }
  }
  if (!timesOnly) std::printf("\n");
  for (const auto& n : notes) std::printf("- %s\n", n.c_str());
  return 0;
}
