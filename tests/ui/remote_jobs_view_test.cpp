// The Jobs dock's Slurm part on a project whose ledger holds jobs in every state (written here as
// `qscope sweep --backend slurm` writes them; no scheduler is asked): groups with their array
// progress, one row per task with state, node, elapsed and run, the reason a job failed, Cancel
// only for unfinished jobs, Open Log with the job's log; and "Run on" listing project.yaml's Slurm
// profiles. Saved as remote_jobs.png in the test's temp folder (QS_SHOT_DIR overrides).
#include <gtest/gtest.h>

#include <QComboBox>
#include <QPushButton>
#include <QTreeWidget>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/runs/remote_jobs.h"
#include "core/runs/run_store.h"
#include "core/util/fs.h"
#include "tests/support/test_paths.h"
#include "tests/ui/ui_test_app.h"
#include "ui/job_queue.h"
#include "ui/jobs_panel.h"
#include "ui/remote_jobs_view.h"

namespace {

using qs::runs::JobState;

std::string projectWithJobs() {
  const std::string dir = qs::test::tempDir("ui_remote");
  qs::fs::writeAtomic(dir + "/project.yaml",
                      "model: m\nslurm:\n  default:\n    partition: cpu\n  gpu:\n    partition: gpu\n    gres: gpu:1\n");
  qs::runs::RunStore(dir + "/runs.sqlite");
  qs::runs::JobLedger ledger(dir);
  std::vector<qs::runs::RemoteJob> jobs;
  const char* names[] = {"rtn w3 ch", "rtn w4 ch", "gptq w3 ch", "gptq w4 ch"};
  for (int i = 0; i < 4; ++i) {
    qs::runs::RemoteJob j;
    j.group = "sweep-20261207-050000";
    j.taskIndex = i;
    j.backend = "slurm";
    j.schedulerId = "41_" + std::to_string(i);
    j.name = names[i];
    j.kind = "quantize";
    j.bundle = "incoming/" + j.group + "/task-" + std::to_string(i);
    j.logPath = j.bundle + "/job.log";
    j.command = "qscope quantize /p --config " + j.bundle + "/config.yaml --bundle " + j.bundle;
    std::filesystem::create_directories(dir + "/" + j.bundle);
    jobs.push_back(j);
  }
  const auto ids = ledger.add(jobs);
  qs::fs::writeAtomic(dir + "/" + jobs[2].logPath, "[qscope] task 2 of job 41 on node3\nquantize: block 2/4\n");
  ledger.update(ids[0], JobState::Completed, "node1", 83);
  ledger.update(ids[1], JobState::Timeout, "node2", 3600, "TimeLimit");
  ledger.update(ids[2], JobState::Running, "node3", 125);
  ledger.update(ids[3], JobState::Pending, "", NAN);
  ledger.importEnded(ids[0]);  // no bundle run: recorded as failed, but imported
  return dir;
}

TEST(RemoteJobsView, ShowsEachTaskOfASweepWithItsStateAndOffersCancelForTheUnfinished) {
  qs::test::uiApp();
  const std::string dir = projectWithJobs();
  qs::ui::RemoteJobsView view;
  view.setPollInterval(3600 * 1000);  // no automatic sync against a scheduler that is not here
  view.setProject(QString::fromStdString(dir));
  QTreeWidget* tree = view.tree();
  ASSERT_EQ(tree->topLevelItemCount(), 1);
  QTreeWidgetItem* group = tree->topLevelItem(0);
  EXPECT_EQ(group->text(0), "sweep-20261207-050000");
  EXPECT_EQ(group->text(1), "41");
  EXPECT_EQ(group->text(2), "2/4 ended, 1 running, 1 failed");
  ASSERT_EQ(group->childCount(), 4);
  EXPECT_EQ(group->child(1)->text(2), "timeout*") << "ended, not yet imported";
  EXPECT_NE(group->child(1)->text(0).indexOf("TimeLimit"), -1) << "the reason is on the row";
  EXPECT_EQ(group->child(1)->text(4), "1:00:00");
  EXPECT_EQ(group->child(2)->text(2), "running*");
  EXPECT_EQ(group->child(2)->text(3), "node3");
  EXPECT_EQ(group->child(3)->text(3), "–");

  group->child(0)->setSelected(true);
  EXPECT_FALSE(view.cancelButton()->isEnabled()) << "an ended job cannot be cancelled";
  EXPECT_TRUE(view.logButton()->isEnabled());
  tree->clearSelection();
  group->child(2)->setSelected(true);
  EXPECT_TRUE(view.cancelButton()->isEnabled());
  const qlonglong runningId = group->child(2)->data(0, Qt::UserRole + 1).toLongLong();
  EXPECT_NE(view.logText(runningId).indexOf("block 2/4"), -1);

  view.resize(900, 260);
  EXPECT_TRUE(qs::test::saveScreenshot(view, dir, "remote_jobs.png"));
}

TEST(RemoteJobsView, RunOnListsTheProjectsSlurmProfiles) {
  qs::test::uiApp();
  qs::ui::JobQueue queue;
  qs::ui::JobsPanel panel(&queue);
  QComboBox* runOn = panel.runOnCombo();
  ASSERT_EQ(runOn->count(), 2);
  EXPECT_EQ(runOn->itemText(1), "Slurm (no profile in project.yaml)");
  EXPECT_EQ(panel.runOnProfile(), "");
  panel.setSlurmProfiles({"default", "gpu"});
  ASSERT_EQ(runOn->count(), 3);
  runOn->setCurrentIndex(2);
  EXPECT_EQ(panel.runOnProfile(), "gpu");
  EXPECT_EQ(runOn->currentText(), "Slurm (gpu)");
}

}  // namespace
