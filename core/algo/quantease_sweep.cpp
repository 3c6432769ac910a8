#include "core/algo/quantease_sweep.h"

#include <ATen/ATen.h>

#include <atomic>

#include "core/util/fallback.h"

namespace qs::algo {
namespace {
std::atomic<SweepBlockImpl> g_cudaImpl{nullptr};
}  // namespace

void sweepBlockReference(SweepBlock& b) {
  const double qmin = static_cast<double>(b.grid.qmin), qmax = static_cast<double>(b.grid.qmax);
  at::Tensor pBlock = b.p.narrow(1, b.b0, b.cnt);
  for (int64_t j = 0; j < b.cnt; ++j) {
    const int64_t c = b.b0 + j;
    at::Tensor w = b.wq.select(1, c);
    const at::Tensor s = b.scale.select(1, c), z = b.zero.select(1, c);
    // H_cc as a 0-d tensor view: dividing by it keeps the work on the device (no .item()).
    const at::Tensor beta = at::add(w, at::div(pBlock.select(1, j), b.h.select(0, c).select(0, c)));
    at::Tensor nw = beta;
    if (b.quantize) {
      at::Tensor q = b.zeroInside ? at::clamp(at::round(at::add(at::div(beta, s), z)), qmin, qmax)
                                  : at::clamp(at::add(at::round(at::div(beta, s)), z), qmin, qmax);  // half to even
      nw = at::mul(at::sub(q, z), s);
      if (b.free.defined()) {
        const at::Tensor f = b.free.select(1, c) != 0;
        nw = at::where(f, beta, nw);
        q = at::where(f, z, q);
      }
      b.codes.select(1, c).copy_(q);
    }
    const at::Tensor delta = at::sub(w, nw);
    w.copy_(nw);
    b.delta.select(1, j).copy_(delta);
    // Product then sum (no fused multiply-add), as the scalar loop rounds it.
    pBlock.add_(at::mul(delta.unsqueeze(1), b.h.select(0, c).narrow(0, b.b0, b.cnt).unsqueeze(0)));
  }
}

void registerCudaSweepBlock(SweepBlockImpl impl) { g_cudaImpl.store(impl); }

SweepBlockImpl cudaSweepBlock() { return g_cudaImpl.load(); }

void sweepBlockDispatch(SweepBlock& b) {
  if (b.p.is_cuda() && !b.zeroInside) {  // the kernel rounds with integer zeros only
    if (SweepBlockImpl impl = cudaSweepBlock()) {
      if (impl(b)) return;  // false: a block wider than the kernel takes; the reference is exact too
    } else {
      log::fallbackOnce("quantease_sweep", b.p.device().str(), "the LibTorch column ops (one launch set per column)");
    }
  }
  sweepBlockReference(b);
}

}  // namespace qs::algo
