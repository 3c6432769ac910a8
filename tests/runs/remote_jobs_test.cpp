// The remote-job ledger and bundle import (core/runs/remote_jobs.h) without a scheduler: bundles
// are written here by a RunWriter as a remote job's `qscope quantize --bundle` writes them. The
// reference is the bundle itself: an imported run holds exactly its rows and files, once.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "core/runs/remote_jobs.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "tests/support/test_paths.h"

using namespace qs::runs;
namespace stdfs = std::filesystem;

namespace {

struct Fixture {
  std::string project = qs::test::tempDir("remote-jobs");
  Fixture() { RunStore(project + "/runs.sqlite"); }

  // A job of group g, task i, with its bundle folder.
  RemoteJob job(const std::string& g, int i) {
    RemoteJob j;
    j.group = g;
    j.taskIndex = i;
    j.backend = "slurm";
    j.schedulerId = "77_" + std::to_string(i);
    j.name = "gptq w4 task " + std::to_string(i);
    j.kind = "quantize";
    j.bundle = "incoming/" + g + "/task-" + std::to_string(i);
    j.logPath = j.bundle + "/job.log";
    j.configYaml = "quantize: {wbits: 4}\n";
    stdfs::create_directories(project + "/" + j.bundle);
    return j;
  }
  std::string bundleDir(const RemoteJob& j) const { return project + "/" + j.bundle; }
};

// Writes a run into the bundle as the remote qscope does: rows, a site statistic with an array,
// and exports/run-<id>/quantized.safetensors. `finish` = false leaves it `running` (a killed job).
int64_t writeBundleRun(const std::string& bundle, bool finish, RunStatus status = RunStatus::Finished) {
  NewRun n;
  n.name = "gptq w4";
  n.kind = RunKind::Quantize;
  n.configYaml = "quantize: {wbits: 4}\n";
  n.device = "cpu";
  auto w = std::make_unique<RunWriter>(bundle + "/runs.sqlite", n);
  const int64_t id = w->id();
  w->addMetric({"ppl.wikitext2", 12.5, "gptq-nonoverlapping", "", 10, NAN});
  w->addMetric({"ppl_fp.wikitext2", 12.0, "gptq-nonoverlapping", "", 10, NAN});
  LayerResult r1{0, "layers.0.q_proj", 0.01, 0.5, 4.1, ""}, r0{0, "layers.0.k_proj", 0.02, 0.5, 4.1, ""};
  w->addLayerResult(r1);
  w->addLayerResult(r0);
  SiteStat s;
  s.layer = 0;
  s.site = "q_proj";
  s.kind = "input";
  s.channels = 2;
  s.maxAbs = 3;
  s.arrays["max"] = {1.0f, 3.0f};
  w->addSiteStat(s);
  const std::string dir = bundle + "/exports/run-" + std::to_string(id);
  stdfs::create_directories(dir);
  qs::fs::writeAtomic(dir + "/quantized.safetensors", "weights");
  w->addArtifact({"quantized", dir, 0, ""});
  if (finish) {
    w->flush();
    w->finish(status, status == RunStatus::Failed ? "quantize: out of memory in block 3" : "");
  } else {
    w->flush();
    w.release();  // never finished: the row stays `running`, as when a node dies mid-run
  }
  return id;
}

TEST(RemoteJobs, AFinishedBundleBecomesOneRunWithItsRowsAndFilesExactlyOnce) {
  Fixture f;
  JobLedger ledger(f.project);
  auto j = f.job("sweep-a", 0);
  writeBundleRun(f.bundleDir(j), true);
  qs::fs::writeAtomic(f.project + "/" + j.logPath, "[qscope] task 0\nquantize done\n");
  const int64_t id = ledger.add({j})[0];
  EXPECT_THROW(ledger.importEnded(id), qs::Error) << "a job still pending is not imported";
  ledger.update(id, JobState::Completed, "node7", 42);

  const int64_t runId = ledger.importEnded(id);
  ASSERT_GT(runId, 0);
  EXPECT_EQ(ledger.importEnded(id), 0) << "a second import of the same job does nothing";
  EXPECT_EQ(JobLedger(f.project).importEnded(id), 0) << "nor does another coordinator's";

  RunStore store(f.project + "/runs.sqlite");
  ASSERT_EQ(store.listRuns().size(), 1u);
  const auto rec = store.loadRun(runId);
  EXPECT_EQ(rec.info.status, RunStatus::Finished);
  EXPECT_EQ(rec.info.name, "gptq w4");
  ASSERT_EQ(rec.metrics.size(), 2u);
  ASSERT_EQ(rec.layerResults.size(), 2u);
  EXPECT_EQ(rec.layerResults[0].site, "layers.0.q_proj") << "rows keep the order the job wrote them in";
  ASSERT_EQ(rec.siteStats.size(), 1u);
  EXPECT_EQ(rec.siteStats[0].arrays.at("max"), (std::vector<float>{1.0f, 3.0f}));
  // The files now live under the project's exports/run-<new>/, with the job's log beside them.
  ASSERT_EQ(rec.artifacts.size(), 2u);
  EXPECT_EQ(rec.artifacts[0].path, "exports/run-" + std::to_string(runId));
  EXPECT_EQ(qs::fs::readText(f.project + "/exports/run-" + std::to_string(runId) + "/quantized.safetensors"), "weights");
  EXPECT_EQ(rec.artifacts[1].kind, "log");
  EXPECT_NE(qs::fs::readText(f.project + "/" + rec.artifacts[1].path).find("quantize done"), std::string::npos);
  EXPECT_FALSE(stdfs::exists(f.bundleDir(j))) << "the bundle goes once imported";
  const auto after = ledger.get(id);
  EXPECT_TRUE(after.imported);
  EXPECT_EQ(after.runId, runId);
  EXPECT_EQ(after.node, "node7");
  ledger.update(id, JobState::Failed, "", NAN);
  EXPECT_EQ(ledger.get(id).state, JobState::Completed) << "an imported job keeps its final state";
}

TEST(RemoteJobs, ARunStillRunningInAKilledJobsBundleIsNeverImported) {
  Fixture f;
  JobLedger ledger(f.project);
  auto j = f.job("sweep-b", 0);
  writeBundleRun(f.bundleDir(j), false);
  qs::fs::writeAtomic(f.project + "/" + j.logPath,
                      "[qscope] task 0\nslurmstepd: error: *** JOB 9 ON n1 CANCELLED AT 2026-12-07T04:00:00 ***\n");
  const int64_t id = ledger.add({j})[0];
  ledger.update(id, JobState::NodeFail, "n1", 30, "NodeDown");
  const int64_t runId = ledger.importEnded(id);
  ASSERT_GT(runId, 0);
  RunStore store(f.project + "/runs.sqlite");
  const auto rec = store.loadRun(runId);
  EXPECT_EQ(rec.info.status, RunStatus::Failed);
  EXPECT_EQ(rec.info.statusMessage,
            "slurm job 77_0 node_fail (NodeDown): slurmstepd: error: *** JOB 9 ON n1 CANCELLED AT "
            "2026-12-07T04:00:00 ***");
  EXPECT_TRUE(rec.metrics.empty());
  EXPECT_TRUE(rec.layerResults.empty());
  EXPECT_TRUE(rec.siteStats.empty());
  ASSERT_EQ(rec.artifacts.size(), 1u);
  EXPECT_EQ(rec.artifacts[0].kind, "log");
  EXPECT_EQ(rec.info.configYaml, j.configYaml) << "the failed run still says what it was";
}

TEST(RemoteJobs, AJobWhoseRunFailedCarriesTheRunsOwnMessage) {
  Fixture f;
  JobLedger ledger(f.project);
  auto j = f.job("sweep-c", 0);
  writeBundleRun(f.bundleDir(j), true, RunStatus::Failed);
  const int64_t id = ledger.add({j})[0];
  ledger.update(id, JobState::Failed, "n1", 3, "NonZeroExitCode");
  RunStore store(f.project + "/runs.sqlite");
  const auto info = store.getRun(ledger.importEnded(id));
  EXPECT_EQ(info.status, RunStatus::Failed);
  EXPECT_EQ(info.statusMessage, "slurm job 77_0 failed (NonZeroExitCode): quantize: out of memory in block 3");
  EXPECT_TRUE(store.loadRun(info.id).metrics.empty()) << "a failed run's partial rows stay in the bundle";
}

TEST(RemoteJobs, ACancelledJobBecomesACancelledRun) {
  Fixture f;
  JobLedger ledger(f.project);
  auto j = f.job("sweep-d", 0);
  const int64_t id = ledger.add({j})[0];
  ledger.update(id, JobState::Cancelled, "", NAN);
  RunStore store(f.project + "/runs.sqlite");
  const auto info = store.getRun(ledger.importEnded(id));
  EXPECT_EQ(info.status, RunStatus::Cancelled);
  EXPECT_EQ(info.statusMessage, "slurm job 77_0 cancelled");
}

TEST(RemoteJobs, CoordinatorsRacingOnTheSameJobsImportEachOnce) {
  Fixture f;
  std::vector<RemoteJob> jobs;
  for (int i = 0; i < 6; ++i) {
    jobs.push_back(f.job("sweep-e", i));
    writeBundleRun(f.bundleDir(jobs.back()), true);
  }
  std::vector<int64_t> ids = JobLedger(f.project).add(jobs);
  for (int64_t id : ids) JobLedger(f.project).update(id, JobState::Completed, "n", 1);
  std::vector<std::thread> threads;
  std::atomic<int> imported{0};
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] {
      JobLedger mine(f.project);
      for (int64_t id : ids)
        if (mine.importEnded(id) > 0) ++imported;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(imported.load(), 6);
  EXPECT_EQ(RunStore(f.project + "/runs.sqlite").listRuns().size(), 6u);
}

TEST(RemoteJobs, AFolderLeftByAnImportKilledBeforeItsCommitIsReplaced) {
  Fixture f;
  JobLedger ledger(f.project);
  auto j = f.job("sweep-f", 0);
  writeBundleRun(f.bundleDir(j), true);
  // What a coordinator killed between linking the files and committing leaves: exports/run-1
  // with no run row.
  stdfs::create_directories(f.project + "/exports/run-1");
  qs::fs::writeAtomic(f.project + "/exports/run-1/stale", "x");
  const int64_t id = ledger.add({j})[0];
  ledger.update(id, JobState::Completed, "n", 1);
  const int64_t runId = ledger.importEnded(id);
  ASSERT_EQ(runId, 1);
  EXPECT_FALSE(stdfs::exists(f.project + "/exports/run-1/stale"));
  EXPECT_TRUE(stdfs::exists(f.project + "/exports/run-1/quantized.safetensors"));
}

TEST(RemoteJobs, ATaskIndexIsAddedOncePerGroup) {
  Fixture f;
  JobLedger ledger(f.project);
  ledger.add({f.job("g", 0)});
  EXPECT_THROW(ledger.add({f.job("g", 0)}), qs::Error);
  EXPECT_EQ(ledger.list().size(), 1u);
  EXPECT_EQ(ledger.groups(), std::vector<std::string>{"g"});
}

}  // namespace
