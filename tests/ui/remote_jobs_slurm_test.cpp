// Quantize & Evaluate with "Run on: Slurm (default)" against a real Slurm 22.05 (a one-node
// loopback cluster this test starts, tests/support/slurm_cluster.h): the main window submits the
// Tuning panel's config as a job, the Jobs dock shows it, its worker-thread sync imports the run
// when the job ends, and the Runs dock lists it. Reference: the same config run in this process
// (the local backend) gives the same perplexity. Skipped only where the daemons cannot start.
#include <gtest/gtest.h>

#include <QComboBox>
#include <QTreeWidget>

#include <algorithm>
#include <map>

#include "core/jobs/progress.h"
#include "core/runs/run_store.h"
#include "core/util/fs.h"
#include "core/workflow/project_jobs.h"
#include "tests/support/demo_project.h"
#include "tests/support/slurm_cluster.h"
#include "tests/ui/ui_test_app.h"
#include "ui/jobs_panel.h"
#include "ui/main_window.h"
#include "ui/remote_jobs_view.h"
#include "ui/runs_panel.h"
#include "core/workflow/search_job.h"
#include "ui/tuning_panel.h"

namespace {

double metric(const std::string& project, int64_t run, const std::string& key) {
  for (const auto& m : qs::runs::RunStore(project + "/runs.sqlite").loadRun(run, false).metrics)
    if (m.key == key) return m.value;
  return NAN;
}

TEST(RemoteJobsSlurm, QuantizeAndEvaluateOnSlurmComesBackAsARun) {
  QS_REQUIRE_QSCOPE();
  qs::test::uiApp();
  const std::string dir = qs::test::tempDir("ui_slurm");
  qs::test::LoopbackSlurm slurm;
  QS_START_SLURM(slurm, dir);
  const std::string project = qs::test::makeDemoProject(dir, "remote");
  qs::fs::writeAtomic(project + "/project.yaml", "name: remote\nmodel: " + qs::test::demoModel() +
                                                     "\nslurm:\n  default:\n    time: '10'\n    qscope: " +
                                                     qs::test::qscopeBinary() + "\n");
  const std::string text = qs::test::demoText();
  const std::string config = "quantize:\n  method: gptq\n  wbits: 3\n  nsamples: 4\n  seqlen: 64\n  dataset: " + text +
                             "\n  eval: [" + text + "]\n  eval_seqlen: 128\n";

  qs::ui::MainWindow w;
  w.setErrorDialogsEnabled(false);
  ASSERT_EQ(w.openProject(QString::fromStdString(project)), "");
  ASSERT_EQ(w.tuningPanel()->setYaml(QString::fromStdString(config)), "");
  QComboBox* runOn = w.jobsPanel()->runOnCombo();
  ASSERT_EQ(runOn->count(), 2);
  runOn->setCurrentIndex(1);
  ASSERT_EQ(runOn->currentText(), "Slurm (default)");
  qs::ui::RemoteJobsView* remote = w.jobsPanel()->remoteJobs();
  remote->setPollInterval(500);

  bool imported = false;
  QObject::connect(remote, &qs::ui::RemoteJobsView::runsImported, [&] { imported = true; });
  const int job = w.startQuantize();
  ASSERT_GT(job, 0);
  ASSERT_TRUE(qs::test::waitUntil([&] { return remote->tree()->topLevelItemCount() == 1; }, 30000))
      << "the submitted job appears under Slurm jobs";
  ASSERT_TRUE(qs::test::waitUntil([&] { return imported; }, 120000)) << "the run comes back when the job ends";
  QTreeWidgetItem* task = remote->tree()->topLevelItem(0)->child(0);
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(task->text(2), "completed");
  EXPECT_EQ(task->text(3), "localhost");
  const int64_t runId = task->text(5).toLongLong();
  ASSERT_GT(runId, 0);
  EXPECT_EQ(qs::runs::RunStore(project + "/runs.sqlite").getRun(runId).status, qs::runs::RunStatus::Finished);
  EXPECT_TRUE(qs::test::waitUntil([&] { return w.runsPanel()->visibleRows() >= 1; }, 5000)) << "the Runs dock lists it";

  // The same config in this process.
  qs::workflow::QuantizeJobOptions o;
  o.projectDir = project;
  o.configYaml = w.quantizeConfigYaml().toStdString();
  const auto local = qs::workflow::runQuantizeJob(o, qs::jobs::Progress::none());
  EXPECT_EQ(metric(project, runId, "ppl." + std::string("sample.txt")), metric(project, local.runId, "ppl.sample.txt"));
}

}  // namespace

namespace {

// Jobs › Mixed-Precision Search… with Run on: Slurm: the job coordinates one array per generation
// and ends with the same trials as the local search (reference: the same job run here).
TEST(RemoteJobsSlurm, ASearchJobOnSlurmGivesTheLocalSearchsTrials) {
  QS_REQUIRE_QSCOPE();
  qs::test::uiApp();
  const std::string dir = qs::test::tempDir("ui_slurm_search");
  qs::test::LoopbackSlurm slurm;
  QS_START_SLURM(slurm, dir);
  const std::string space = dir + "/space.yaml";
  qs::fs::writeAtomic(space, "search:\n  space:\n    - name: \"layers.*.fc*\"\n"
                             "      weight: {format: bfp, mantissa_width: [3, 4, 6, 8], shared_exponent_width: 8, "
                             "block_size: 16}\n      input: same\n    - name: \"layers.*.self_attn.*\"\n"
                             "      weight: {format: bfp, mantissa_width: [3, 4, 6, 8], shared_exponent_width: 8, "
                             "block_size: 16}\n      input: same\n  default: {weight: none, input: none}\n"
                             "  eval: {dataset: " + qs::test::demoText() + ", seqlen: 64, limit_windows: 2, batch_size: 2}\n");
  std::map<std::string, std::vector<double>> pplOf;  // project -> trial ppl in trial order
  for (const std::string where : {"local", "slurm"}) {
    const std::string project = qs::test::makeDemoProject(dir + "/" + where, where);
    qs::fs::writeAtomic(project + "/project.yaml", "name: " + where + "\nmodel: " + qs::test::demoModel() +
                                                       "\nslurm:\n  default:\n    qscope: " + qs::test::qscopeBinary() + "\n");
    qs::ui::MainWindow w;
    w.setErrorDialogsEnabled(false);
    ASSERT_EQ(w.openProject(QString::fromStdString(project)), "");
    qs::workflow::SearchJobOptions o;
    o.spaceFile = space;
    o.trials = 10;
    o.seed = 5;
    o.pollSeconds = 0.5;
    if (std::string(where) == "slurm") {
      o.cluster.backend = "slurm";
      o.cluster.profile = "default";
    }
    const int id = w.startSearch(o);
    qs::ui::JobQueue* q = w.jobQueue();
    ASSERT_TRUE(qs::test::waitUntil([&] { return q->job(id) && q->job(id)->state != qs::ui::JobQueue::State::Queued &&
                                                 q->job(id)->state != qs::ui::JobQueue::State::Running; },
                                    180000));
    ASSERT_EQ(q->job(id)->state, qs::ui::JobQueue::State::Finished) << q->job(id)->result.toStdString();
    qs::runs::RunStore store(project + "/runs.sqlite");
    auto runs = store.listRuns();
    std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& r : runs)
      if (r.name.find(" trial ") != std::string::npos) pplOf[where].push_back(metric(project, r.id, "ppl.sample.txt"));
  }
  ASSERT_EQ(pplOf["local"].size(), 10u);
  EXPECT_EQ(pplOf["slurm"], pplOf["local"]);
}

}  // namespace
