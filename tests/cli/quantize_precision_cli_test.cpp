// End to end: `qscope quantize --precision P.yaml` (quantize config key `precision`) emulates the
// per-layer number formats on the quantized model during its evaluation. With weight quantization
// off (--wbits 16) the quantized perplexity must equal `qscope eval --precision P.yaml` on the same
// windows (the reference: the same emulator, issue 6's table); the stored config carries the
// formats inline; precision with activation fake-quant, and a missing file, are named errors.
// Uses the bundled projects/demo model and its sample text, so it needs nothing from ../shared.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <string>

#include "tests/support/demo_project.h"
#include "tests/support/cli_runner.h"
#include "tests/support/test_paths.h"

namespace {

std::string quote(const std::string& s) { return qs::test::shellQuote(s); }
using qs::test::demoModel;
using qs::test::demoText;
std::string preset(const std::string& name) {
  return std::string(QS_SOURCE_DIR) + "/resources/presets/precision/" + name;
}

std::string quantizeArgs() {
  return " --nsamples 4 --seqlen 128 --dataset " + quote(demoText()) + " --eval " + quote(demoText()) +
         " --eval-seqlen 128 --eval-limit-windows 4 --threads 1 --no-progress --json";
}

}  // namespace

TEST(QuantizePrecisionCli, FormatsApplyToTheQuantizedEvaluationLikeEvalPrecision) {
  QS_REQUIRE_QSCOPE();
  const std::string proj = qs::test::tempDir("qprec") + "/p";
  auto init = qs::test::runQscope("project init " + quote(proj) + " --model " + quote(demoModel()));
  ASSERT_EQ(init.code, 0) << init.err;

  const std::string p = preset("w4a4_bfp16.yaml");
  auto q = qs::test::runQscope("quantize " + quote(proj) + " --method rtn --wbits 16 --precision " + quote(p) +
                               quantizeArgs());
  ASSERT_EQ(q.code, 0) << q.err;
  const auto j = nlohmann::json::parse(q.out);
  ASSERT_EQ(j["perplexity"].size(), 1u);
  const auto& ppl = j["perplexity"].begin().value();

  auto e = qs::test::runQscope("eval " + quote(demoModel()) + " --dataset " + quote(demoText()) +
                               " --seqlen 128 --limit-windows 4 --threads 1 --no-progress --json --precision " + quote(p));
  ASSERT_EQ(e.code, 0) << e.err;
  const double ref = nlohmann::json::parse(e.out)["perplexity"].get<double>();
  EXPECT_NEAR(ppl["quantized"].get<double>(), ref, 1e-9 * ref);
  // 4-bit BFP on every weight and input moves the perplexity (the formats were applied at all).
  EXPECT_GT(std::abs(ppl["quantized"].get<double>() - ppl["fp"].get<double>()), 1e-3 * ppl["fp"].get<double>());

  // The stored config holds the formats themselves, not only a path.
  const std::string cfg = j["config"].get<std::string>();
  EXPECT_NE(cfg.find("precision:"), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("bfp(m=4"), std::string::npos) << cfg;
  EXPECT_EQ(cfg.find("w4a4_bfp16.yaml"), std::string::npos) << cfg;
}

TEST(QuantizePrecisionCli, ConflictsAndMissingFilesAreNamedErrors) {
  QS_REQUIRE_QSCOPE();
  auto both = qs::test::runQscope("quantize " + quote(demoModel()) + " --method rtn --wbits 16 --a-bits 8 --precision " +
                                  quote(preset("w8a8_int.yaml")) + quantizeArgs());
  EXPECT_EQ(both.code, 1);
  EXPECT_NE(both.err.find("precision"), std::string::npos) << both.err;
  EXPECT_NE(both.err.find("a_bits"), std::string::npos) << both.err;

  auto missing = qs::test::runQscope("quantize " + quote(demoModel()) + " --method rtn --wbits 16 --precision /nonexistent/p.yaml" +
                                     quantizeArgs());
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/p.yaml"), std::string::npos) << missing.err;
}
