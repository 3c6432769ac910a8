// End to end: QuantEase's start on the command line (`--quantease-init`, config key
// quantease_init, issue 16) and the quiet flag's effect on the printed pre-flight. Uses the bundled
// projects/demo model and its sample text, so it needs nothing from ../shared.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "tests/support/cli_runner.h"
#include "tests/support/demo_project.h"
#include "tests/support/test_paths.h"

namespace {

std::string quote(const std::string& s) { return qs::test::shellQuote(s); }
using qs::test::demoModel;
using qs::test::demoText;

std::string args() {
  return " --wbits 3 --num-iter 4 --nsamples 4 --seqlen 128 --dataset " + quote(demoText()) + " --eval " +
         quote(demoText()) + " --eval-seqlen 128 --eval-limit-windows 2 --threads 1 --no-progress --json";
}

}  // namespace

TEST(QuantEaseCli, InitFlagReachesTheRunConfigAndBadValuesAreNamed) {
  QS_REQUIRE_QSCOPE();
  auto best = qs::test::runQscope("quantize " + quote(demoModel()) + " --method quantease" + args());
  ASSERT_EQ(best.code, 0) << best.err;
  const auto jb = nlohmann::json::parse(best.out);
  EXPECT_NE(jb.at("config").get<std::string>().find("quantease_init: best"), std::string::npos) << "the default";

  auto fromW = qs::test::runQscope("quantize " + quote(demoModel()) + " --method quantease --quantease-init weights" + args());
  ASSERT_EQ(fromW.code, 0) << fromW.err;
  const auto jw = nlohmann::json::parse(fromW.out);
  EXPECT_NE(jw.at("config").get<std::string>().find("quantease_init: weights"), std::string::npos);
  // Two different starts give two different quantized models on at least one site.
  bool differs = false;
  for (size_t i = 0; i < jb.at("sites").size(); ++i)
    differs = differs || jb["sites"][i]["rel_error"] != jw["sites"][i]["rel_error"];
  EXPECT_TRUE(differs);

  auto bad = qs::test::runQscope("quantize " + quote(demoModel()) + " --method quantease --quantease-init zero" + args());
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("quantease_init"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("best"), std::string::npos) << "names the values it takes: " << bad.err;
  EXPECT_EQ(qs::test::lineCount(bad.err), 1) << bad.err;
}

TEST(QuantEaseCli, QuietSkipsThePrintedPreflight) {
  QS_REQUIRE_QSCOPE();
  auto loud = qs::test::runQscope("quantize " + quote(demoModel()) + " --method rtn" + args());
  ASSERT_EQ(loud.code, 0) << loud.err;
  EXPECT_NE(loud.err.find("pre-flight"), std::string::npos) << loud.err;
  auto quiet = qs::test::runQscope("-q quantize " + quote(demoModel()) + " --method rtn" + args());
  ASSERT_EQ(quiet.code, 0) << quiet.err;
  EXPECT_EQ(quiet.err.find("pre-flight"), std::string::npos) << quiet.err;
}
