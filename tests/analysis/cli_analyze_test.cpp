// End-to-end on stories260K (../shared): `qscope project init`, `qscope analyze` with a few
// samples, `qscope runs show`, `qscope stats --csv/--json`, the model-only mode that stores
// nothing, and user errors. Skipped when qscope was not built or the shared data is absent.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/util/fs.h"
#include "tests/support/cli_runner.h"
#include "tests/support/test_paths.h"

namespace {

qs::test::CliResult qscope(const std::string& args) { return qs::test::runQscope(args); }
std::string quote(const std::string& s) { return qs::test::shellQuote(s); }


std::vector<std::vector<std::string>> csvRows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream l(line);
    for (std::string c; std::getline(l, c, ',');) cells.push_back(c);
    rows.push_back(cells);
  }
  return rows;
}

}  // namespace

TEST(AnalyzeCli, Stories260KProjectRunShowAndStats) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  const std::string model = qs::test::sharedPath("models/stories260K/hf");
  const std::string dir = qs::test::tempDir("ana-e2e") + "/proj";
  const std::string data = " --data-dir " + quote(qs::test::sharedDataDir());
  auto init = qscope("project init " + quote(dir) + " --model " + quote(model));
  ASSERT_EQ(init.code, 0) << init.err;

  auto a = qscope("analyze " + quote(dir) + " --samples 4 --seqlen 64 --top-tokens 3 --no-progress --json" + data);
  ASSERT_EQ(a.code, 0) << a.err;
  auto j = nlohmann::json::parse(a.out);
  ASSERT_TRUE(j["run_id"].is_number());
  const int64_t id = j["run_id"];
  EXPECT_EQ(j["tokens"], 4 * 64);
  // stories260K: 5 blocks x (7 inputs + 7 weights + block_out)
  EXPECT_EQ(j["sites"].size(), 5u * 15u);
  const std::string p = " -p " + quote(dir);

  auto show = qscope("runs show " + std::to_string(id) + p + " --json");
  ASSERT_EQ(show.code, 0) << show.err;
  auto sj = nlohmann::json::parse(show.out);
  EXPECT_EQ(sj["kind"], "analysis");
  EXPECT_EQ(sj["status"], "finished");
  EXPECT_EQ(sj["site_stats"].size(), 75u);
  EXPECT_NE(sj["config_yaml"].get<std::string>().find("samples: 4"), std::string::npos);
  nlohmann::json q0;
  for (const auto& s : sj["site_stats"])
    if (s["layer"] == 0 && s["site"] == "q_proj" && s["kind"] == "input") q0 = s;
  ASSERT_FALSE(q0.is_null());
  EXPECT_EQ(q0["extra"]["top_tokens"].size(), 3u);

  auto csv = qscope("stats " + std::to_string(id) + " --layer 0 --site q_proj --csv" + p);
  ASSERT_EQ(csv.code, 0) << csv.err;
  auto rows = csvRows(csv.out);
  ASSERT_EQ(rows.size(), 65u);  // header + 64 channels
  EXPECT_EQ(rows[0], (std::vector<std::string>{"channel", "min", "max", "mean", "var", "absmax", "kurtosis", "center",
                                               "half_range"}));
  double maxAbs = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    double mn = std::stod(rows[i][1]), mx = std::stod(rows[i][2]), absmax = std::stod(rows[i][5]);
    EXPECT_LE(mn, mx);
    EXPECT_DOUBLE_EQ(absmax, std::max(-mn, mx));
    EXPECT_NEAR(std::stod(rows[i][7]), (mn + mx) / 2, 1e-6 * (1 + absmax));
    maxAbs = std::max(maxAbs, absmax);
  }
  EXPECT_NEAR(maxAbs, q0["max_abs"].get<double>(), 1e-5 * maxAbs);

  auto js = qscope("stats " + std::to_string(id) + " --layer 4 --site self_attn.o_proj --kind weight --json" + p);
  ASSERT_EQ(js.code, 0) << js.err;
  auto wj = nlohmann::json::parse(js.out);
  EXPECT_EQ(wj["site"], "o_proj");
  EXPECT_EQ(wj["arrays"]["out_absmax"].size(), 64u);

  auto text = qscope("analyze " + quote(dir) + " --samples 2 --seqlen 32 --sites block_out --no-progress" + data);
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("block_out"), std::string::npos);
  EXPECT_NE(text.out.find("stored as run"), std::string::npos);
  auto list = qscope("runs list " + quote(dir) + " --json");
  EXPECT_EQ(nlohmann::json::parse(list.out)["runs"].size(), 2u);

  // Attention matmul operands: stories260K has 8 query heads and 4 kv heads of size 8.
  auto mm = qscope("analyze " + quote(dir) + " --samples 2 --seqlen 32 --matmul-inputs --sites '*_matmul' "
                   "--no-progress --json" + data);
  ASSERT_EQ(mm.code, 0) << mm.err;
  auto mj = nlohmann::json::parse(mm.out);
  ASSERT_EQ(mj["sites"].size(), 15u);
  for (const auto& s : mj["sites"]) {
    EXPECT_EQ(s["kind"], "matmul");
    EXPECT_EQ(s["channels"], s["site"] == "q_matmul" ? 64 : 32) << s["site"];
  }
  auto kcsv = qscope("stats " + std::to_string(mj["run_id"].get<int64_t>()) + " --layer 2 --site k_matmul --csv" + p);
  ASSERT_EQ(kcsv.code, 0) << kcsv.err;
  EXPECT_EQ(csvRows(kcsv.out).size(), 33u);  // header + 32 key channels

  // The softmax input: one site per block, a channel per query head (8), tokens are queries.
  auto sm = qscope("analyze " + quote(dir) + " --samples 2 --seqlen 32 --softmax-inputs --sites softmax_in "
                   "--no-progress --json" + data);
  ASSERT_EQ(sm.code, 0) << sm.err;
  auto smj = nlohmann::json::parse(sm.out);
  ASSERT_EQ(smj["sites"].size(), 5u);
  for (const auto& s : smj["sites"]) {
    EXPECT_EQ(s["kind"], "softmax");
    EXPECT_EQ(s["site"], "softmax_in");
    EXPECT_EQ(s["channels"], 8);
    EXPECT_GT(s["max_abs"].get<double>(), 0.0);
    EXPECT_LT(s["max_abs"].get<double>(), 1e6);  // masked entries (-1e9) are not in the statistics
  }
  const std::string smId = std::to_string(smj["run_id"].get<int64_t>());
  auto smShow = qscope("runs show " + smId + p + " --json");
  ASSERT_EQ(smShow.code, 0) << smShow.err;
  EXPECT_NE(nlohmann::json::parse(smShow.out)["config_yaml"].get<std::string>().find("softmax_inputs: true"),
            std::string::npos);
  auto scsv = qscope("stats " + smId + " --layer 4 --site softmax_in --csv" + p);  // kind softmax by default
  ASSERT_EQ(scsv.code, 0) << scsv.err;
  EXPECT_EQ(csvRows(scsv.out).size(), 9u);  // header + 8 heads
  auto spos = qscope("stats " + smId + " --layer 4 --site softmax_in --positions --csv" + p);
  ASSERT_EQ(spos.code, 0) << spos.err;
  EXPECT_EQ(csvRows(spos.out).size(), 33u);  // header + 32 query positions
  auto noSm = qscope("analyze " + quote(dir) + " --samples 2 --seqlen 32 --sites softmax_in --no-progress" + data);
  EXPECT_EQ(noSm.code, 1);  // without --softmax-inputs the site does not exist

  auto bad = qscope("stats " + std::to_string(id) + " --layer 0 --site nope" + p);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("q_proj (input)"), std::string::npos) << bad.err;
}

TEST(AnalyzeCli, ModelWithoutProjectStoresNothing) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  const std::string model = qs::test::sharedPath("models/stories260K/hf");
  auto r = qscope("analyze " + quote(model) + " --samples 2 --seqlen 32 --no-progress --data-dir " +
                  quote(qs::test::sharedDataDir()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("not stored"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("q_proj,k_proj,v_proj"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(model + "/runs.sqlite"));

  auto tooLong = qscope("analyze " + quote(model) + " --samples 2 --seqlen 4096 --no-progress --data-dir " +
                        quote(qs::test::sharedDataDir()));
  EXPECT_EQ(tooLong.code, 1);
  EXPECT_NE(tooLong.err.find("--seqlen"), std::string::npos) << tooLong.err;
  auto noSite = qscope("analyze " + quote(model) + " --samples 1 --seqlen 16 --sites nothing --no-progress --data-dir " +
                       quote(qs::test::sharedDataDir()));
  EXPECT_EQ(noSite.code, 1);
  EXPECT_NE(noSite.err.find("--sites"), std::string::npos) << noSite.err;
}
