// The OS+ switches of a quantize config (osplus_shift, osplus_scale, osplus_threshold) as
// migrate: osplus applies them, on the tiny OPT of tests/support/tiny_models.h: shift-only keeps
// every scale at 1 (none is stored) and centres the inputs, scale-only stores no shift, a fixed
// threshold t gives s = max(1, r / t) for the unshifted half-range r = max |x| (os_plus.h), and
// every variant folds exactly (the FP model's logits before any activation quantization are the
// original ones to 1e-5 relative, as in export_test.cpp). The keys round-trip through toYaml and
// bad values name the key.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "core/algo/migration_run.h"
#include "core/algo/os_plus.h"
#include "core/algo/quantize_config.h"
#include "core/model/model.h"
#include "tests/support/expect_error.h"
#include "tests/support/tensor_checks.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs::algo {
namespace {

using test::inferenceLogits;
using test::maxRelDiff;
using test::randomTokens;

struct Migrated {
  MigrationOutcome outcome;
  double logitsRelErr = 0;
};

Migrated migrate(const QuantizeConfig& cfg, const std::string& tag) {
  const std::string dir = test::tempDir(tag);
  test::writeTinyOpt(dir);
  auto m = model::openModel(dir);
  const at::Tensor evalIds = randomTokens(2, 24, 5);
  const at::Tensor original = inferenceLogits(*m, evalIds);
  Migrated r;
  r.outcome = runMigration(*m, randomTokens(4, 32, 3), cfg);
  r.logitsRelErr = maxRelDiff(inferenceLogits(*m, evalIds), original);
  return r;
}

QuantizeConfig osplus() {
  QuantizeConfig cfg;
  cfg.migrate = Migration::OsPlus;
  cfg.osplusSearchSteps = 20;
  cfg.act = quant::ActQuantOptions().withBits(6);
  return cfg;
}

TEST(OsPlusKeys, ShiftOnlyKeepsScalesAtOneAndFoldsExactly) {
  QuantizeConfig cfg = osplus();
  cfg.osplusScale = false;
  const Migrated r = migrate(cfg, "osplus_shift_only");
  ASSERT_FALSE(r.outcome.records.empty());
  for (const auto& rec : r.outcome.records) {
    EXPECT_TRUE(rec.shift.defined()) << rec.pair;
    EXPECT_FALSE(rec.scale.defined()) << rec.pair << ": no scaling means s = 1 everywhere";
    EXPECT_EQ(rec.threshold, 0) << rec.pair;
  }
  for (size_t i = 0; i < r.outcome.after.size(); ++i) {
    EXPECT_LT(r.outcome.after[i].asymmetry, 1e-4 * (1 + r.outcome.before[i].maxAbs)) << "shifting centres";
    EXPECT_LE(r.outcome.after[i].maxAbs, r.outcome.before[i].maxAbs + 1e-5);
  }
  EXPECT_LT(r.logitsRelErr, 1e-5);
}

TEST(OsPlusKeys, ScaleOnlyStoresNoShiftAndFoldsExactly) {
  QuantizeConfig cfg = osplus();
  cfg.osplusShift = false;
  const Migrated r = migrate(cfg, "osplus_scale_only");
  ASSERT_FALSE(r.outcome.records.empty());
  for (const auto& rec : r.outcome.records) {
    EXPECT_FALSE(rec.shift.defined()) << rec.pair;
    ASSERT_TRUE(rec.scale.defined()) << rec.pair;
    EXPECT_GE(rec.scale.min().item<double>(), 1.0) << "s = max(1, r / t)";
    EXPECT_GT(rec.threshold, 0) << "searched";
  }
  EXPECT_LT(r.logitsRelErr, 1e-5);
}

TEST(OsPlusKeys, FixedThresholdGivesTheDefinedScales) {
  QuantizeConfig cfg = osplus();
  cfg.osplusShift = false;  // then r is max |x| per channel, which the site statistics hold
  cfg.osplusThreshold = 0.25;
  const Migrated r = migrate(cfg, "osplus_fixed_t");
  ASSERT_FALSE(r.outcome.records.empty());
  for (const auto& rec : r.outcome.records) {
    EXPECT_DOUBLE_EQ(rec.threshold, 0.25) << rec.pair;
    ASSERT_TRUE(rec.scale.defined());
    // Every channel whose range exceeds t is scaled down to exactly t: max |x| after = t or less.
  }
  for (size_t i = 0; i < r.outcome.after.size(); ++i)
    EXPECT_LE(r.outcome.after[i].maxAbs, std::min(0.25, r.outcome.before[i].maxAbs) * (1 + 1e-4) + 1e-6)
        << r.outcome.after[i].pair;
  EXPECT_LT(r.logitsRelErr, 1e-5);
  const at::Tensor s = thresholdScale(at::tensor({0.1f, 0.5f, 1.0f}), 0.25);
  EXPECT_TRUE(at::allclose(s, at::tensor({1.0f, 2.0f, 4.0f})));
}

TEST(OsPlusKeys, KeysRoundTripAndBadValuesNameTheKey) {
  const QuantizeConfig c = parseQuantizeConfig(
      "quantize:\n  migrate: osplus\n  osplus_shift: false\n  osplus_threshold: 0.5\n", "cfg.yaml");
  EXPECT_FALSE(c.osplusShift);
  EXPECT_TRUE(c.osplusScale);
  EXPECT_DOUBLE_EQ(c.osplusThreshold, 0.5);
  const QuantizeConfig back = parseQuantizeConfig(toYaml(c), "stored");
  EXPECT_EQ(toYaml(back), toYaml(c));
  EXPECT_FALSE(back.osplusShift);
  EXPECT_DOUBLE_EQ(back.osplusThreshold, 0.5);
  const QuantizeConfig d;
  EXPECT_TRUE(d.osplusShift);
  EXPECT_TRUE(d.osplusScale);
  EXPECT_EQ(d.osplusThreshold, 0) << "searched by default";
  test::expectError([&] { parseQuantizeConfig("osplus_threshold: -1\n", "cfg.yaml"); }, "osplus_threshold");
  test::expectError([&] { parseQuantizeConfig("osplus_shift: maybe\n", "cfg.yaml"); }, "osplus_shift");
  test::expectError([&] { parseQuantizeConfig("migrate: osplus\nosplus_shift: false\nosplus_scale: false\n", "cfg.yaml"); },
                    "osplus_scale");
}

}  // namespace
}  // namespace qs::algo
