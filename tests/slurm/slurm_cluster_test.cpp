// qscope sweep / jobs against a real Slurm 22.05: each test starts a one-node cluster on loopback
// in its own temporary folder (tests/support/slurm_cluster.h over tests/slurm/cluster.sh; .ci/setup.sh
// installs the Debian packages) and stops it afterwards. They are skipped, with the reason and
// the install command, only where the daemons cannot start.
//
// References: the same configs run by the local backend (this process, no Slurm) for the
// metrics; Slurm's own states (scontrol) for how a job ended.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include "core/runs/remote_jobs.h"
#include "core/runs/run_store.h"
#include "core/util/fs.h"
#include "tests/support/cli_runner.h"
#include "tests/support/demo_project.h"
#include "tests/support/slurm_cluster.h"

namespace qs {
namespace {

namespace stdfs = std::filesystem;
using test::runQscope;
using test::shellQuote;

class SlurmCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    QS_REQUIRE_QSCOPE();
    dir_ = test::tempDir("slurm");
    QS_START_SLURM(slurm_, dir_);
    cluster_ = slurm_.dir();
  }

  // A project on the bundled demo model and a grid file over it.
  std::string project(const std::string& name) {
    const std::string d = dir_ + "/" + name;
    stdfs::create_directories(d);
    return test::makeDemoProject(d, name);
  }
  std::string gridFile(const std::string& name, const std::string& body) {
    const std::string path = dir_ + "/" + name;
    fs::writeAtomic(path, "quantize: {nsamples: 4, seqlen: 64, dataset: " + test::demoText() +
                            ", eval: [" + test::demoText() + "], eval_seqlen: 128}\n" + body);
    return path;
  }
  // A config that runs for minutes on the demo model (QuantEase, 20000 sweeps per layer).
  static std::string slowEntry() { return "{method: quantease, num_iter: 20000, eval: []}"; }

  nlohmann::json jobs(const std::string& proj, const std::string& sub = "list") {
    auto r = runQscope("jobs " + sub + " " + shellQuote(proj) + " --json");
    EXPECT_EQ(r.code, 0) << r.err;
    std::string out = r.out;
    if (sub == "sync") out = out.substr(out.find('['));
    return nlohmann::json::parse(out);
  }
  // Polls `qscope jobs sync` until `done(jobs)` or the timeout.
  template <class Pred>
  nlohmann::json waitFor(const std::string& proj, double seconds, Pred done) {
    const auto start = std::chrono::steady_clock::now();
    nlohmann::json j;
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
      j = jobs(proj, "sync");
      if (done(j)) return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ADD_FAILURE() << "timed out after " << seconds << " s waiting for the jobs; last state:\n" << j.dump(1);
    return j;
  }
  static const nlohmann::json* task(const nlohmann::json& jobs, int index) {
    for (const auto& j : jobs)
      if (j["task"] == index) return &j;
    return nullptr;
  }

  test::LoopbackSlurm slurm_;
  std::string dir_, cluster_;
};

// Runs of a project keyed by their resolved config.
std::map<std::string, runs::RunRecord> runsByConfig(const std::string& proj) {
  runs::RunStore store(proj + "/runs.sqlite");
  std::map<std::string, runs::RunRecord> out;
  for (const auto& info : store.listRuns()) out[info.configYaml] = store.loadRun(info.id);
  return out;
}

TEST_F(SlurmCluster, SweepOfFourConfigsAsAJobArrayStoresTheRunsTheLocalBackendGives) {
  const std::string grid = gridFile("grid.yaml", "grid:\n  method: [rtn, gptq]\n  wbits: [3, 4]\n");
  const std::string local = project("local"), remote = project("remote");
  auto l = runQscope("sweep " + shellQuote(local) + " --grid " + shellQuote(grid) + " --threads 1 --no-progress");
  ASSERT_EQ(l.code, 0) << l.err;
  auto r = runQscope("sweep " + shellQuote(remote) + " --grid " + shellQuote(grid) +
                     " --backend slurm --array-max 2 --poll 0.5 --threads 1 --no-progress");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("submitted Slurm job array"), std::string::npos) << r.out;

  const auto a = runsByConfig(local), b = runsByConfig(remote);
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (const auto& [config, want] : a) {
    ASSERT_TRUE(b.count(config)) << "the Slurm sweep has no run with the config of local run " << want.info.id;
    const auto& got = b.at(config);
    EXPECT_EQ(got.info.status, runs::RunStatus::Finished) << got.info.statusMessage;
    EXPECT_EQ(got.info.name, want.info.name);
    std::map<std::string, double> metrics;
    for (const auto& m : got.metrics) metrics[m.key] = m.value;
    for (const auto& m : want.metrics) {
      if (m.key.rfind("time.", 0) == 0 || m.key.rfind("memory.", 0) == 0) continue;  // of the process, not the result
      ASSERT_TRUE(metrics.count(m.key)) << m.key;
      EXPECT_EQ(metrics[m.key], m.value) << m.key << " of " << want.info.name;
    }
    ASSERT_EQ(got.layerResults.size(), want.layerResults.size());
    for (size_t i = 0; i < want.layerResults.size(); ++i)
      EXPECT_EQ(got.layerResults[i].relError, want.layerResults[i].relError) << want.layerResults[i].site;
    // The quantized weights came back with the run: same bytes, under the project's exports/.
    auto artifact = [](const runs::RunRecord& rec, const std::string& kind) {
      for (const auto& x : rec.artifacts)
        if (x.kind == kind) return x;
      return runs::Artifact{};
    };
    const auto wq = artifact(want, "quantized"), gq = artifact(got, "quantized");
    EXPECT_EQ(gq.checksum, wq.checksum);
    EXPECT_EQ(gq.path, "exports/run-" + std::to_string(got.info.id));
    EXPECT_TRUE(fs::exists(remote + "/" + gq.path + "/quantized.safetensors"));
    EXPECT_TRUE(fs::exists(remote + "/" + artifact(got, "log").path)) << "the job's log is kept with its run";
  }
  // Every job imported once; syncing again imports nothing; no bundle is left.
  const auto j = jobs(remote);
  ASSERT_EQ(j.size(), 4u);
  for (const auto& x : j) {
    EXPECT_EQ(x["state"], "completed");
    EXPECT_EQ(x["imported"], true);
    EXPECT_EQ(x["node"], "localhost");
  }
  auto again = runQscope("jobs sync " + shellQuote(remote));
  EXPECT_NE(again.out.find("imported 0 finished run(s)"), std::string::npos) << again.out;
  EXPECT_EQ(runQscope("runs import -p " + shellQuote(remote)).code, 0);
  EXPECT_EQ(runsByConfig(remote).size(), 4u);
  for (const auto& e : stdfs::directory_iterator(remote + "/incoming"))
    EXPECT_FALSE(e.is_directory()) << "left behind: " << e.path();
}

TEST_F(SlurmCluster, ScancelOfARunningArrayTaskLeavesACancelledRunAndKeepsTheFinishedOne) {
  const std::string grid = gridFile("grid.yaml", "list:\n  - {method: rtn, wbits: 4}\n  - " + slowEntry() + "\n");
  const std::string proj = project("p");
  auto r = runQscope("sweep " + shellQuote(proj) + " --grid " + shellQuote(grid) + " --backend slurm --no-wait");
  ASSERT_EQ(r.code, 0) << r.err;
  // Task 1 is quantizing (its log says so) and task 0 has been imported.
  waitFor(proj, 120, [&](const nlohmann::json& j) {
    const auto *t0 = task(j, 0), *t1 = task(j, 1);
    if (!t0 || !t1 || t0->at("imported") != true || t1->at("state") != "running") return false;
    const std::string log = proj + "/" + t1->at("log").get<std::string>();
    return fs::exists(log) && fs::readText(log).find("quantize") != std::string::npos;
  });
  const int64_t slowId = task(jobs(proj), 1)->at("id");
  auto c = runQscope("jobs cancel " + shellQuote(proj) + " " + std::to_string(slowId));
  ASSERT_EQ(c.code, 0) << c.err;
  const auto j = waitFor(proj, 90, [&](const nlohmann::json& j) { return task(j, 1)->at("imported") == true; });
  EXPECT_EQ(task(j, 1)->at("state"), "cancelled");

  runs::RunStore store(proj + "/runs.sqlite");
  const auto all = store.listRuns();
  ASSERT_EQ(all.size(), 2u);
  const auto fast = store.getRun(task(j, 0)->at("run_id"));
  const auto slow = store.getRun(task(j, 1)->at("run_id"));
  EXPECT_EQ(fast.status, runs::RunStatus::Finished);
  EXPECT_EQ(slow.status, runs::RunStatus::Cancelled);
  EXPECT_NE(slow.statusMessage.find("cancelled"), std::string::npos) << slow.statusMessage;
  // Nothing of the cancelled run's results, only its log.
  const auto rec = store.loadRun(slow.id);
  EXPECT_TRUE(rec.metrics.empty());
  EXPECT_TRUE(rec.layerResults.empty());
  ASSERT_EQ(rec.artifacts.size(), 1u);
  EXPECT_EQ(rec.artifacts[0].kind, "log");
  EXPECT_NE(runQscope("jobs sync " + shellQuote(proj)).out.find("imported 0"), std::string::npos);
  EXPECT_EQ(store.listRuns().size(), 2u);
}

TEST_F(SlurmCluster, AJobKilledByItsTimeLimitIsAFailedRunThatSaysSo) {
  const std::string grid = gridFile("grid.yaml", "list:\n  - " + slowEntry() + "\n");
  const std::string proj = project("p");
  // One minute, Slurm's smallest limit; it checks limits about every 30 s.
  auto r = runQscope("sweep " + shellQuote(proj) + " --grid " + shellQuote(grid) +
                     " --backend slurm --time 1 --poll 1 --no-progress");
  EXPECT_EQ(r.code, 1) << "a sweep with a failed config exits 1\n" << r.out << r.err;
  const auto j = jobs(proj);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["state"], "timeout");
  runs::RunStore store(proj + "/runs.sqlite");
  const auto run = store.getRun(j[0]["run_id"]);
  EXPECT_EQ(run.status, runs::RunStatus::Failed);
  EXPECT_NE(run.statusMessage.find("timeout"), std::string::npos) << run.statusMessage;
  EXPECT_NE(run.statusMessage.find("TimeLimit"), std::string::npos) << run.statusMessage;
  EXPECT_TRUE(store.loadRun(run.id).metrics.empty());
}

TEST_F(SlurmCluster, ALostNodeFailsItsRunningJobAndKeepsTheFinishedRuns) {
  const std::string grid = gridFile("grid.yaml", "list:\n  - {method: rtn, wbits: 4}\n  - " + slowEntry() + "\n");
  const std::string proj = project("p");
  ASSERT_EQ(runQscope("sweep " + shellQuote(proj) + " --grid " + shellQuote(grid) + " --backend slurm --no-wait").code, 0);
  waitFor(proj, 120, [&](const nlohmann::json& j) {
    const auto *t0 = task(j, 0), *t1 = task(j, 1);
    return t0 && t1 && t0->at("imported") == true && t1->at("state") == "running";
  });
  ASSERT_EQ(slurm_.command("kill-slurmd"), 0);
  // slurmctld declares the node down after SlurmdTimeout (about 30 s here) and fails its jobs.
  const auto j = waitFor(proj, 120, [&](const nlohmann::json& j) { return task(j, 1)->at("imported") == true; });
  EXPECT_EQ(task(j, 1)->at("state"), "node_fail");
  runs::RunStore store(proj + "/runs.sqlite");
  EXPECT_EQ(store.getRun(task(j, 0)->at("run_id")).status, runs::RunStatus::Finished);
  const auto lost = store.getRun(task(j, 1)->at("run_id"));
  EXPECT_EQ(lost.status, runs::RunStatus::Failed);
  EXPECT_NE(lost.statusMessage.find("node_fail"), std::string::npos) << lost.statusMessage;
  EXPECT_TRUE(store.loadRun(lost.id).metrics.empty());
  EXPECT_EQ(store.listRuns().size(), 2u);
  slurm_.command("start-slurmd");
}

TEST_F(SlurmCluster, SubmissionErrorsAreOneClearLineAndLeaveNothing) {
  const std::string grid = gridFile("grid.yaml", "list:\n  - {method: rtn, wbits: 4}\n");
  const std::string proj = project("p");
  auto bad = runQscope("sweep " + shellQuote(proj) + " --grid " + shellQuote(grid) + " --backend slurm --partition nosuch");
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.err, "qscope: error: slurm: sbatch refused the job: invalid partition specified: nosuch\n");
  const std::string empty = dir_ + "/no-slurm-here";
  stdfs::create_directories(empty);
  auto missing = runQscope("sweep " + shellQuote(proj) + " --grid " + shellQuote(grid) + " --backend slurm --slurm-bin " +
                           shellQuote(empty));
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "qscope: error: slurm: cannot submit: " + empty +
                             "/sbatch: not found or not executable (install the Slurm client on this machine, or set "
                             "the backend to local)\n");
  // Nothing submitted, nothing recorded, no bundle folders.
  EXPECT_TRUE(runs::JobLedger(proj).list().empty());
  if (stdfs::exists(proj + "/incoming")) {
    EXPECT_TRUE(stdfs::is_empty(proj + "/incoming"));
  }
}

}  // namespace
}  // namespace qs

namespace qs {
namespace {

// NSGA-II over three BFP widths of the demo model (64 configs), population 8, 12 trials: the
// first generation and part of the second. The reference is the same search run locally.
TEST_F(SlurmCluster, ASearchOnSlurmEvaluatesEachGenerationAsAnArrayAndEqualsTheLocalSearch) {
  const std::string space = dir_ + "/space.yaml";
  std::string widths = "{format: bfp, mantissa_width: [3, 4, 6, 8], shared_exponent_width: 8, block_size: 16}";
  fs::writeAtomic(space, "search:\n  space:\n"
                         "    - name: \"layers.*.self_attn.*_proj\"\n      weight: " + widths + "\n      input: same\n"
                         "    - name: \"layers.*.fc1\"\n      weight: " + widths + "\n      input: same\n"
                         "    - name: \"layers.*.fc2\"\n      weight: " + widths + "\n      input: same\n"
                         "  default: {weight: none, input: none}\n"
                         "  eval: {dataset: " + test::demoText() + ", seqlen: 64, limit_windows: 4, batch_size: 4}\n");
  const std::string local = project("local"), remote = project("remote");
  const std::string args = " --space " + shellQuote(space) + " --trials 12 --seed 3 --threads 1 --json --no-progress";
  auto l = runQscope("search " + shellQuote(local) + args);
  ASSERT_EQ(l.code, 0) << l.err;
  auto r = runQscope("search " + shellQuote(remote) + args + " --backend slurm --poll 0.5");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("round 2,"), std::string::npos) << "the second generation went as its own array\n" << r.err;
  const auto a = nlohmann::json::parse(l.out), b = nlohmann::json::parse(r.out);
  ASSERT_EQ(a["trials"].size(), 12u);
  ASSERT_EQ(b["trials"].size(), a["trials"].size());
  for (size_t i = 0; i < a["trials"].size(); ++i) {
    const auto &x = a["trials"][i], &y = b["trials"][i];
    EXPECT_EQ(y["choice"], x["choice"]) << "trial " << i;
    EXPECT_EQ(y["ppl"], x["ppl"]) << "trial " << i;
    EXPECT_EQ(y["front"], x["front"]) << "trial " << i;
    EXPECT_EQ(y["reused"], false) << "evaluated on Slurm by this command";
  }
  // Every trial is a run of the project (imported once), plus the summary.
  EXPECT_EQ(runs::RunStore(remote + "/runs.sqlite").listRuns().size(), 13u);
  for (const auto& j : runs::JobLedger(remote).list()) {
    EXPECT_EQ(j.kind, "search");
    EXPECT_TRUE(j.imported);
  }
}

}  // namespace
}  // namespace qs

namespace qs {
namespace {

// No cluster needed: the pre-flight check happens before sbatch is looked for. Reference: the
// job's own pre-flight (the demo model needs a few MiB, far more than 1 MiB, far less than 4 GiB).
TEST(SlurmSweep, AConfigThatCannotFitTheTasksMemoryIsRefusedBeforeSubmitting) {
  QS_REQUIRE_QSCOPE();
  const std::string dir = test::tempDir("slurm-mem");
  const std::string proj = test::makeDemoProject(dir, "p");
  const std::string grid = dir + "/grid.yaml";
  fs::writeAtomic(grid, "quantize: {nsamples: 4, seqlen: 64, dataset: " + test::demoText() + ", eval: []}\n"
                        "list: [{method: rtn, wbits: 4}]\n");
  const std::string noSlurm = dir + "/no-slurm";
  std::filesystem::create_directories(noSlurm);
  const std::string base = "sweep " + shellQuote(proj) + " --grid " + shellQuote(grid) +
                           " --backend slurm --slurm-bin " + shellQuote(noSlurm) + " --mem ";
  auto small = runQscope(base + "1M");
  EXPECT_EQ(small.code, 1);
  EXPECT_NE(small.err.find("sweep config 0 (method=rtn wbits=4) needs about"), std::string::npos) << small.err;
  EXPECT_NE(small.err.find("more than the 1M each Slurm task gets (mem); raise --mem"), std::string::npos) << small.err;
  auto enough = runQscope(base + "4G");
  EXPECT_EQ(enough.code, 1);
  EXPECT_NE(enough.err.find("cannot submit"), std::string::npos) << "the check passed; sbatch is missing\n" << enough.err;
  EXPECT_TRUE(runs::JobLedger(proj).list().empty());
}

}  // namespace
}  // namespace qs
