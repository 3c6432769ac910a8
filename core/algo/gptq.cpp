#include "core/algo/gptq.h"

#include <ATen/ATen.h>

#include <chrono>
#include <functional>
#include <sstream>
#include <string>
#include <tuple>

#include "core/algo/hessian.h"
#include "core/algo/weight_grid.h"
#include "core/util/error.h"

namespace qs::algo {
namespace {

void checkShapes(const at::Tensor& w, const at::Tensor& h) {
  if (!w.defined() || w.dim() != 2) throw Error("weight: expected a 2-D [out, in] tensor");
  if (!h.defined() || h.dim() != 2 || h.size(0) != w.size(1) || h.size(1) != w.size(1))
    throw Error("hessian: expected [" + std::to_string(w.size(1)) + ", " + std::to_string(w.size(1)) +
                "] for a weight with in_features " + std::to_string(w.size(1)));
}

// Upper Cholesky factor U of H^-1 (H^-1 = U^T U), float32 when that factorizes, else float64;
// dampened(dt) gives the dampened H in dtype dt. Each [in, in] intermediate is dropped as soon as
// the next exists: for a 7B model's down projection (in = 11008) two 485 MB float32 matrices at a
// time.
at::Tensor upperCholeskyOfInverse(const std::function<at::Tensor(at::ScalarType)>& dampened, double percdamp) {
  for (at::ScalarType dt : {at::kFloat, at::kDouble}) {
    at::Tensor l, info;
    std::tie(l, info) = at::linalg_cholesky_ex(dampened(dt), false, false);
    if (info.item<int>() != 0) continue;
    at::Tensor inv = at::cholesky_inverse(l, false);
    l = at::Tensor();
    at::Tensor u;
    std::tie(u, info) = at::linalg_cholesky_ex(inv, true, false);
    inv = at::Tensor();
    if (info.item<int>() != 0) continue;
    return u.to(at::kFloat);
  }
  std::ostringstream m;
  m << "percdamp: the Hessian is not positive definite after dampening by " << percdamp
    << " of its mean diagonal; increase percdamp or add calibration tokens";
  throw Error(m.str());
}

}  // namespace

void GptqOptions::validate() const {
  spec.validate();
  if (!(percdamp >= 0 && percdamp < 10)) {
    std::ostringstream m;
    m << "percdamp: " << percdamp << " must lie in [0, 10) (a fraction of the mean Hessian diagonal)";
    throw Error(m.str());
  }
  if (blockSize <= 0) throw Error("blocksize: " + std::to_string(blockSize) + " must be positive");
}

LayerQuantResult quantizeGptq(const at::Tensor& wIn, const at::Tensor& hessian, const GptqOptions& opts,
                              jobs::Progress& progress) {
  checkShapes(wIn, hessian);
  opts.validate();
  const quant::QuantSpec& spec = opts.spec;
  spec.validateFor(wIn.size(0), wIn.size(1));
  progress.checkCancel();
  if (!spec.enabled()) return unquantized("gptq", wIn, hessian);

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t out = wIn.size(0), in = wIn.size(1);
  at::Tensor w = wIn.to(at::kFloat).clone().contiguous();
  // Only H's diagonal changes (dead columns get 1, then the dampening): it is kept apart in float64
  // and written into a copy of H made in the Cholesky's dtype, so no float64 copy of the whole H
  // is made next to the caller's (the same values as modifying a float64 copy, then converting).
  at::Tensor diag = at::diagonal(hessian).to(at::kDouble).clone();
  const at::Tensor dead = diag == 0;
  diag.masked_fill_(dead, 1.0);
  w.masked_fill_(dead.unsqueeze(0), 0.0);

  const bool grouped = spec.grouped() && spec.chAxis != -1;
  const int64_t g = grouped ? spec.groupSize : in;
  const int64_t numGroups = spec.numGroups(in);  // a ragged last group when g does not divide in
  // Params known before the loop: whole-row (or per-tensor) grid, or static groups on the
  // original column order.
  at::Tensor kept;  // float32 [out, in] 1 = kept in full precision, or undefined
  if (opts.keep.defined()) {
    if (opts.keep.sizes() != wIn.sizes()) throw Error("gptq: the kept-weight mask must have the weight's shape");
    kept = (opts.keep != 0).to(at::kFloat).contiguous();
  }
  WeightGrid grid;
  if (!grouped || spec.staticGroups) {
    grid = observeWeight(kept.defined() ? w.masked_fill(kept != 0, 0.0) : w, spec);
  } else {
    grid.scales = at::zeros({out, numGroups}, at::kFloat);
    grid.zeros = at::zeros({out, numGroups}, at::kFloat);
  }

  at::Tensor perm = at::arange(in, at::kLong);
  if (spec.actOrder) {
    perm = std::get<1>(at::sort(diag, /*stable=*/true, /*dim=*/0, /*descending=*/true));
    w = w.index_select(1, perm).contiguous();
    if (kept.defined()) kept = kept.index_select(1, perm).contiguous();
    diag = diag.index_select(0, perm);
  }
  const at::Tensor invperm = at::argsort(perm);
  const auto permAcc = perm.accessor<int64_t, 1>();

  const double damp = opts.percdamp * at::mean(diag).item<double>();
  diag.add_(damp);
  at::Tensor u = upperCholeskyOfInverse(
      [&](at::ScalarType dt) {
        at::Tensor m = hessian.to(dt);
        if (spec.actOrder) m = m.index_select(0, perm).index_select(1, perm);
        else if (m.is_same(hessian) || m.data_ptr() == hessian.data_ptr()) m = m.clone();
        m.diagonal().copy_(diag.to(dt));
        return m;
      },
      opts.percdamp);

  at::Tensor codesT = at::empty({in, out}, at::kFloat);  // row = permuted position
  const at::Tensor keptT = kept.defined() ? kept.t().contiguous() : at::Tensor();
  at::Tensor keptValT = kept.defined() ? at::zeros({in, out}, at::kFloat) : at::Tensor();
  at::Tensor curScale = grid.scales.select(1, 0), curZero = grid.zeros.select(1, 0);
  const int64_t bs = opts.blockSize;
  for (int64_t i1 = 0; i1 < in; i1 += bs) {
    progress.checkCancel();
    const int64_t i2 = std::min(i1 + bs, in), cnt = i2 - i1;
    at::Tensor w1t = w.narrow(1, i1, cnt).t().contiguous();  // [cnt, out]
    at::Tensor err1t = at::zeros({cnt, out}, at::kFloat);
    const at::Tensor u1 = u.narrow(0, i1, cnt).narrow(1, i1, cnt);
    for (int64_t i = 0; i < cnt; ++i) {
      const int64_t pos = i1 + i;
      if (grouped) {
        if (spec.staticGroups) {
          const int64_t grp = permAcc[pos] / g;
          curScale = grid.scales.select(1, grp);
          curZero = grid.zeros.select(1, grp);
        } else if (pos % g == 0) {
          // The group's current values: its columns still in this block (already updated by
          // the block's earlier columns) and those beyond it (updated by earlier blocks). The
          // last group is shorter when g does not divide in.
          const int64_t len = std::min(g, in - pos);
          const int64_t inBlock = std::min(len, cnt - i);
          at::Tensor cols = w1t.narrow(0, i, inBlock).t();
          if (inBlock < len) cols = at::cat({cols, w.narrow(1, i2, len - inBlock)}, 1);
          if (kept.defined()) cols = cols.masked_fill(kept.narrow(1, pos, len) != 0, 0.0);
          const quant::QuantParams p = quant::observeRows(cols.contiguous(), spec);
          grid.scales.select(1, pos / g).copy_(p.scale);
          grid.zeros.select(1, pos / g).copy_(p.zero);
          curScale = p.scale;
          curZero = p.zero;
        }
      }
      const at::Tensor col = w1t[i];
      at::Tensor q = quant::quantizeCodes(col, curScale, curZero, spec);
      at::Tensor deq = quant::dequantizeCodes(q, curScale, curZero);
      if (kept.defined()) {  // a kept weight keeps its (updated) value: no error to spread
        const at::Tensor k = keptT[pos] != 0;
        q = at::where(k, curZero.expand_as(q), q);
        deq = at::where(k, col, deq);
        keptValT[pos].copy_(at::where(k, col, at::zeros_like(col)));
      }
      codesT[pos].copy_(q);
      const at::Tensor err = at::div(at::sub(col, deq), u1[i][i]);
      w1t.narrow(0, i, cnt - i).addr_(u1[i].narrow(0, i, cnt - i), err, 1.0, -1.0);
      err1t[i].copy_(err);
    }
    if (i2 < in) {
      at::Tensor rest = w.narrow(1, i2, in - i2);
      rest.addmm_(err1t.t(), u.narrow(0, i1, cnt).narrow(1, i2, in - i2), 1.0, -1.0);
    }
    progress.update(static_cast<double>(i2) / static_cast<double>(in), "gptq");
  }

  // The factor and the working copies are not needed for the result: freed before the error
  // evaluation allocates (on a 7B down projection they are over 800 MB).
  u = at::Tensor();
  w = at::Tensor();
  at::Tensor codes = codesT.t().index_select(1, invperm).contiguous();
  codesT = at::Tensor();
  if (grouped && !spec.staticGroups && spec.actOrder)
    grid.gIdx = at::div(invperm, g, "floor").to(at::kInt);
  else if (grouped)
    grid.gIdx = at::div(at::arange(in, at::kLong), g, "floor").to(at::kInt);
  else
    grid.gIdx = at::zeros({in}, at::kInt);

  LayerQuantResult r;
  r.method = "gptq";
  if (kept.defined()) {  // the sparse part, in the original column order
    const at::Tensor vals = keptValT.t().index_select(1, invperm);
    const at::Tensor mask = kept.index_select(1, invperm);
    const at::Tensor idx = at::nonzero(mask.flatten() != 0).flatten();
    r.outlierIndices = at::stack({at::div(idx, in, "floor"), at::remainder(idx, in)}, 1);
    r.outlierValues = vals.flatten().index_select(0, idx).contiguous();
  }
  r.quantSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  finishResult(r, wIn, codes, grid, opts.measureError ? hessian : at::Tensor(), spec);
  return r;
}

}  // namespace qs::algo
