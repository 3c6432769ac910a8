// The device form of the QuantEase sweep (CoordinateDescent::sweepBlocked: per block, the column
// updates of all rows at once, then the GEMMs; quantease_sweep.h) against the CPU sweep the
// paper's Algorithm 2 is implemented with (CoordinateDescent::sweep). Run on the CPU, where both
// are the same float32 operations in the same order per row: the codes, weights and residual
// product must be bit-identical, sweep after sweep. On a GPU the same function runs with the
// registered kernel (tests/gpu/quantease_cuda_test.cpp).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "core/algo/quantease.h"
#include "core/algo/quantease_sweep.h"
#include "core/algo/weight_grid.h"
#include "core/quant/quant_spec.h"
#include "tests/algo/algo_fixtures.h"

namespace qs::algo {
namespace {

struct Start {
  at::Tensor target, wq, codes, h, scale, zero;
};

Start start(const test::Layer& l, const quant::QuantSpec& spec) {
  Start s;
  s.target = l.w.contiguous();
  s.h = l.h.to(at::kFloat).contiguous();
  const WeightGrid g = observeWeight(s.target, spec);
  s.scale = expandToColumns(g.scales, g.gIdx).contiguous();
  s.zero = expandToColumns(g.zeros, g.gIdx).contiguous();
  s.codes = quant::quantizeCodes(s.target, s.scale, s.zero, spec).contiguous();
  s.wq = quant::dequantizeCodes(s.codes, s.scale, s.zero).contiguous();
  return s;
}

void expectSameSweeps(const test::Layer& l, const quant::QuantSpec& spec, int blockSize, int sweeps) {
  const Start s = start(l, spec);
  CoordinateDescent cpu(s.target, s.wq, s.codes, s.h, s.scale, s.zero, spec, blockSize);
  CoordinateDescent blocked(s.target, s.wq, s.codes, s.h, s.scale, s.zero, spec, blockSize);
  const std::string what = "bits " + std::to_string(spec.bits) + (spec.symmetric ? " sym" : " asym") +
                           " group " + std::to_string(spec.groupSize) + " block " + std::to_string(blockSize);
  int moved = 0;
  for (int it = 0; it < sweeps; ++it) {
    const at::Tensor before = cpu.codes().clone();
    cpu.sweep(jobs::Progress::none(), 0, 1);
    blocked.sweepBlocked(jobs::Progress::none(), 0, 1);
    moved += at::ne(before, cpu.codes()).sum().item<int>();
    ASSERT_TRUE(at::equal(cpu.codes(), blocked.codes())) << what << " sweep " << it;
    ASSERT_TRUE(at::equal(cpu.weight(), blocked.weight())) << what << " sweep " << it;
    ASSERT_TRUE(at::equal(cpu.residualProduct(), blocked.residualProduct())) << what << " sweep " << it;
    EXPECT_EQ(cpu.objective(), blocked.objective()) << what;
  }
  EXPECT_GT(moved, 0) << what << ": the sweeps changed no code, so the comparison proves nothing";
}

TEST(QuantEaseBlocked, EqualsCpuSweepExactly) {
  const test::Layer l = test::makeLayer(48, 160, 512, 5);
  // Blocks dividing and not dividing in (160), a single-column block, one block for everything.
  for (int block : {1, 32, 48, 160, 256}) expectSameSweeps(l, quant::QuantSpec().withBits(3), block, 3);
}

TEST(QuantEaseBlocked, SymmetricAndGroupedGrids) {
  const test::Layer l = test::makeLayer(40, 128, 400, 9);
  expectSameSweeps(l, quant::QuantSpec().withBits(4).withSymmetric(true), 32, 2);
  expectSameSweeps(l, quant::QuantSpec().withBits(2).withGroupSize(32), 64, 2);
}

bool refuseEverything(SweepBlock&) {
  ADD_FAILURE() << "a CPU tensor reached the CUDA sweep kernel";
  return false;
}

TEST(QuantEaseBlocked, CpuTensorsNeverReachTheCudaKernel) {
  const SweepBlockImpl before = cudaSweepBlock();
  registerCudaSweepBlock(&refuseEverything);
  const test::Layer l = test::makeLayer(16, 64, 128, 3);
  const auto spec = quant::QuantSpec().withBits(3);
  const Start s = start(l, spec);
  CoordinateDescent cd(s.target, s.wq, s.codes, s.h, s.scale, s.zero, spec, 16);
  cd.sweepBlocked(jobs::Progress::none(), 0, 1);
  registerCudaSweepBlock(before);
  EXPECT_EQ(cudaSweepBlock(), before);
}

}  // namespace
}  // namespace qs::algo
