// End to end: `qscope quantize --migrate osplus` on a project, killed (SIGKILL, as a crashed or
// pre-empted job) after its first checkpointed block, or as soon as its migration is saved (before
// any block), then `--resume`d, gives the same run as one uninterrupted job: the same OS+
// thresholds, per-site errors, perplexities and quantized weights, bit for bit; the resumed job
// folds the saved migration instead of searching again. The reference is the uninterrupted run. Uses the bundled
// projects/demo model (OPT, 4 blocks) and its sample text, so it needs nothing from ../shared.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/io/safetensors.h"
#include "core/util/fs.h"
#include "tests/support/demo_project.h"
#include "tests/support/cli_runner.h"
#include "tests/support/test_paths.h"

namespace {

std::string quote(const std::string& s) { return qs::test::shellQuote(s); }
using qs::test::demoModel;
using qs::test::demoText;

// QuantEase with enough sweeps that a block takes far longer than the kill loop's 5 ms poll.
std::string quantizeArgs() {
  return " --method quantease --wbits 3 --num-iter 60 --migrate osplus --search-steps 20 --search-tokens 256 --nsamples 8 --seqlen 128"
         " --dataset " + quote(demoText()) + " --eval " + quote(demoText()) +
         " --eval-seqlen 128 --eval-limit-windows 4 --threads 1 --no-progress --json";
}

std::string newProject(const std::string& tag) {
  const std::string proj = qs::test::tempDir(tag) + "/p";
  auto init = qs::test::runQscope("project init " + quote(proj) + " --model " + quote(demoModel()));
  EXPECT_EQ(init.code, 0) << init.err;
  return proj;
}

// Runs the quantize command on a fresh project and SIGKILLs it as soon as `file` (relative to the
// project) exists; returns the project. A fresh project's first run has id 1.
std::string killedRun(const std::string& tag, const std::string& file) {
  const std::string proj = newProject(tag);
  const std::string watched = proj + "/" + file;
  const std::string dir = qs::test::tempDir(tag + "_log");
  const std::string script = quote(qs::test::qscopeBinary()) + " quantize " + quote(proj) + quantizeArgs() + " >" +
                             quote(dir + "/out") + " 2>" + quote(dir + "/err") + " & pid=$!; " +
                             "while kill -0 $pid 2>/dev/null && [ ! -e " + quote(watched) +
                             " ]; do sleep 0.005; done; kill -9 $pid 2>/dev/null; wait $pid; echo $? >" +
                             quote(dir + "/rc");
  // The shell's own "Killed" notice goes to /dev/null; qscope's stderr is in dir/err.
  EXPECT_EQ(std::system(("/bin/sh -c " + quote(script) + " 2>/dev/null").c_str()), 0);
  EXPECT_EQ(qs::fs::readText(dir + "/rc"), "137\n")
      << "quantize was not killed mid-run (it finished before " << file << " was seen): " << qs::fs::readText(dir + "/err");
  EXPECT_TRUE(std::filesystem::exists(watched));
  EXPECT_FALSE(std::filesystem::exists(proj + "/exports/run-1")) << "a killed run left an artifact";
  return proj;
}

// The resumed run equals the uninterrupted one: migration, per-site errors, perplexity, tensors.
void expectSameRun(const std::string& refProj, const nlohmann::json& refJson, const std::string& proj,
                   const nlohmann::json& j) {
  ASSERT_EQ(j["migration"]["sites"].size(), refJson["migration"]["sites"].size());
  for (size_t i = 0; i < j["migration"]["sites"].size(); ++i)
    EXPECT_EQ(j["migration"]["sites"][i]["threshold"].get<double>(),
              refJson["migration"]["sites"][i]["threshold"].get<double>()) << i;
  ASSERT_EQ(j["sites"].size(), refJson["sites"].size());
  for (size_t i = 0; i < j["sites"].size(); ++i) {
    EXPECT_EQ(j["sites"][i]["site"], refJson["sites"][i]["site"]);
    EXPECT_EQ(j["sites"][i]["rel_error"].get<double>(), refJson["sites"][i]["rel_error"].get<double>())
        << j["sites"][i]["site"];
  }
  ASSERT_FALSE(j["perplexity"].empty());
  for (const auto& [name, p] : j["perplexity"].items()) {
    EXPECT_EQ(p["fp"].get<double>(), refJson["perplexity"][name]["fp"].get<double>()) << name;
    EXPECT_EQ(p["quantized"].get<double>(), refJson["perplexity"][name]["quantized"].get<double>()) << name;
  }
  // The stored artifacts hold identical tensors (the migration's shifts and scales included).
  auto a = qs::io::SafetensorsFile::open(refProj + "/" + refJson["artifact"].get<std::string>());
  auto b = qs::io::SafetensorsFile::open(proj + "/" + j["artifact"].get<std::string>());
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (const auto& t : a->tensors()) {
    ASSERT_NE(b->find(t.name), nullptr) << t.name;
    EXPECT_TRUE(at::equal(a->load(t.name), b->load(t.name))) << t.name;
  }
}

}  // namespace

TEST(QuantizeResumeCli, KilledOsPlusRunResumesToTheUninterruptedResult) {
  QS_REQUIRE_QSCOPE();
  ASSERT_TRUE(std::filesystem::exists(demoModel() + "/model.safetensors")) << demoModel();

  // Reference: one uninterrupted run.
  const std::string refProj = newProject("resume_ref");
  auto ref = qs::test::runQscope("quantize " + quote(refProj) + quantizeArgs());
  ASSERT_EQ(ref.code, 0) << ref.err;
  const auto refJson = nlohmann::json::parse(ref.out);
  ASSERT_EQ(refJson["migration"]["method"], "osplus");
  ASSERT_EQ(refJson["sites"].size(), 24u);  // 4 blocks x q, k, v, out_proj, fc1, fc2

  // Killed as soon as block 0's checkpoint state is on disk (written atomically after the block's
  // weights).
  {
    const std::string proj = killedRun("resume_kill", "exports/.resume-1/state.safetensors");
    auto resumed = qs::test::runQscope("quantize " + quote(proj) + " --resume 1 --threads 1 --no-progress --json");
    ASSERT_EQ(resumed.code, 0) << resumed.err;
    const auto j = nlohmann::json::parse(resumed.out);
    EXPECT_EQ(j["run_id"].get<int64_t>(), 2);
    EXPECT_GE(j["resumed_blocks"].get<int>(), 1);
    EXPECT_LT(j["resumed_blocks"].get<int>(), 4);
    EXPECT_FALSE(std::filesystem::exists(proj + "/exports/.resume-1"));
    EXPECT_FALSE(std::filesystem::exists(proj + "/exports/.resume-2"));
    EXPECT_NE(resumed.err.find("folded from the checkpoint"), std::string::npos) << resumed.err;
    expectSameRun(refProj, refJson, proj, j);
  }
  // Killed as soon as the OS+ migration is saved, before the first block is done: the resume
  // folds the saved shifts and scales and quantizes every block.
  {
    const std::string proj = killedRun("resume_kill_mig", "exports/.resume-1/migration.safetensors");
    auto resumed = qs::test::runQscope("quantize " + quote(proj) + " --resume 1 --threads 1 --no-progress --json");
    ASSERT_EQ(resumed.code, 0) << resumed.err;
    const auto j = nlohmann::json::parse(resumed.out);
    EXPECT_EQ(j["run_id"].get<int64_t>(), 2);
    EXPECT_LT(j["resumed_blocks"].get<int>(), 4);
    EXPECT_NE(resumed.err.find("folded from the checkpoint"), std::string::npos) << resumed.err;
    expectSameRun(refProj, refJson, proj, j);
  }
}
