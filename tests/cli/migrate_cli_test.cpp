// End-to-end `qscope migrate` on stories260K: the FP row equals `qscope eval` on the same windows
// (an independent path through the CLI), migration helps at W6A6 as the OS+ paper reports,
// --a-matmul also quantizes the attention matmul operands (and so changes the quantized rows
// but not FP), a stored run records the setting, and bad options are one clear line.
// Skips without ../shared data.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "tests/support/cli_runner.h"
#include "tests/support/test_paths.h"

namespace {

qs::test::CliResult qscope(const std::string& args) { return qs::test::runQscope(args); }
std::string quote(const std::string& s) { return qs::test::shellQuote(s); }
std::string model() { return qs::test::sharedPath("models/stories260K/hf"); }
std::string small() {
  return " --samples 4 --calib-seqlen 64 --seqlen 64 --limit-windows 4 --no-progress --data-dir " +
         quote(qs::test::sharedDataDir());
}

double row(const nlohmann::json& j, const std::string& key) {
  for (const auto& r : j["rows"])
    if (r["row"] == key) return r["perplexity"].get<double>();
  ADD_FAILURE() << "no row " << key;
  return 0;
}

}  // namespace

TEST(MigrateCli, RowsMatchEvalAndMatmulOperandsAreQuantizedOnRequest) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  auto plain = qscope("migrate " + quote(model()) + " --a-bits 6 --w-bits 6 --json" + small());
  ASSERT_EQ(plain.code, 0) << plain.err;
  auto p = nlohmann::json::parse(plain.out);
  auto ev = qscope("eval " + quote(model()) + " --seqlen 64 --limit-windows 4 --json --no-progress --data-dir " +
                   quote(qs::test::sharedDataDir()));
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_DOUBLE_EQ(row(p, "fp"), nlohmann::json::parse(ev.out)["perplexity"].get<double>());
  EXPECT_GT(row(p, "naive"), row(p, "fp"));
  EXPECT_LT(row(p, "osplus"), row(p, "naive"));

  const std::string proj = qs::test::tempDir("migrate-mm") + "/p";
  ASSERT_EQ(qscope("project init " + quote(proj) + " --model " + quote(model())).code, 0);
  auto mm = qscope("migrate " + quote(model()) + " --a-bits 6 --w-bits 6 --a-matmul --method osplus --json --project " +
                   quote(proj) + small());
  ASSERT_EQ(mm.code, 0) << mm.err;
  auto m = nlohmann::json::parse(mm.out);
  EXPECT_DOUBLE_EQ(row(m, "fp"), row(p, "fp"));
  EXPECT_NE(row(m, "naive"), row(p, "naive"));
  EXPECT_NE(row(m, "osplus"), row(p, "osplus"));
  EXPECT_EQ(m["rows"].size(), 3u);  // FP, naive, OS+
  auto show = qscope("runs show 1 -p " + quote(proj) + " --json");
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_NE(nlohmann::json::parse(show.out)["config_yaml"].get<std::string>().find("quantize_matmul: true"),
            std::string::npos);

  auto bad = qscope("migrate " + quote(model()) + " --a-bits 1" + small());
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--a-bits"), std::string::npos) << bad.err;
}
