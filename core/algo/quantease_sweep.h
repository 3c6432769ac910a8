// The device form of one QuantEase sweep block (DESIGN.md seam 4): the column-by-column
// coordinate updates inside a block of columns, for all rows at once, with no host round trip
// per column. CoordinateDescent::sweepBlocked runs it block by block, and the rank-`block`
// updates of the rest of the residual product stay GEMMs (addmm). The CPU twin is plain ATen
// ops (a few elementwise ops per column on [out] vectors, runs on any device); gpu/algo/
// quantease.cu registers a kernel that keeps each row's slice of P in registers instead.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "core/quant/fake_quant.h"

namespace qs::algo {

// Tensors of one block update, all float32 contiguous [out, in] on one device except delta.
struct SweepBlock {
  at::Tensor p;            // (T - W^) H, updated for columns [b0, b0 + cnt) only
  at::Tensor wq, codes;    // current dequantized weights and codes, updated in the block
  at::Tensor h;            // [in, in]
  at::Tensor scale, zero;  // per element grid
  at::Tensor delta;        // [out, cnt]: old - new per column (written), for the GEMMs
  int64_t b0 = 0, cnt = 0;
  quant::IntGrid grid;
  bool quantize = true;    // false: a relaxed sweep (every weight to its optimum, codes untouched)
  at::Tensor free;         // [out, in] float32, 1 = free (optimum, zero-point code); or undefined
  bool zeroInside = false; // a K-quant grid (non-integer zeros): q = clamp(round(beta/s + z))
};

// The reference: for j in block, all rows: beta = W^_c + P_j / H_cc, q = clamp(round(beta/s) + z),
// new = (q - z) s (relaxed or free: new = beta), P[:, block] += (old - new) H_c,block. Same
// float32 operations, in the same order per row, as the CPU sweep's scalar loop, so the two agree
// exactly on the CPU.
void sweepBlockReference(SweepBlock& b);

// A CUDA kernel for the block; returns false when it cannot take this block (size, a relaxed
// sweep, free weights or a K-quant grid), and the caller then uses the reference.
using SweepBlockImpl = bool (*)(SweepBlock& b);
void registerCudaSweepBlock(SweepBlockImpl impl);  // nullptr removes; thread-safe
SweepBlockImpl cudaSweepBlock();

// Kernel for CUDA tensors when registered and able, else the reference (with one log line on a
// CUDA device).
void sweepBlockDispatch(SweepBlock& b);

}  // namespace qs::algo
