// The Search dialog and the Search job the main window runs from it (core/workflow/search_job.h,
// the steps of `qscope search`) on the bundled demo model: the dialog refuses a missing space file,
// maps its fields to the job's options and lists the project's Slurm profiles under "Run on"; a
// 4-trial search queued from the main window stores 4 trial runs and the summary, the same trials
// `qscope search` would (the CLI test covers the search itself). The dialog is saved as
// search_dialog.png in the test's temp folder (QS_SHOT_DIR overrides) to be looked at.
#include <gtest/gtest.h>

#include <QComboBox>
#include <QLineEdit>
#include <QPixmap>
#include <QSpinBox>

#include <cstdio>
#include <cstdlib>

#include "core/runs/run_store.h"
#include "core/util/fs.h"
#include "tests/support/demo_project.h"
#include "tests/support/test_paths.h"
#include "tests/ui/ui_test_app.h"
#include "ui/job_queue.h"
#include "ui/main_window.h"
#include "ui/search_dialog.h"

namespace {

std::string demoSpace(const std::string& dir) {
  const std::string path = dir + "/space.yaml";
  qs::fs::writeAtomic(path, "search:\n  space:\n    - name: \"layers.*.fc*\"\n"
                            "      weight: {format: bfp, mantissa_width: [3, 4, 6, 8], shared_exponent_width: 8, "
                            "block_size: 16}\n      input: same\n"
                            "  default: {weight: none, input: none}\n"
                            "  eval: {dataset: " + qs::test::demoText() + ", seqlen: 64, limit_windows: 2, batch_size: 2}\n");
  return path;
}

TEST(SearchDialog, MapsItsFieldsAndOffersTheProjectsSlurmProfiles) {
  qs::test::uiApp();
  qs::ui::SearchDialog d("/p", {"default", "gpu"});
  EXPECT_EQ(d.problem(), "Choose a search space file.");
  d.setSpaceFile("/no/such/space.yaml");
  EXPECT_EQ(d.problem(), "/no/such/space.yaml does not exist.");
  const std::string dir = qs::test::tempDir("ui_search_dialog");
  d.setSpaceFile(QString::fromStdString(demoSpace(dir)));
  EXPECT_EQ(d.problem(), "");
  d.trialsSpin()->setValue(6);
  ASSERT_EQ(d.runOnCombo()->count(), 3);
  auto o = d.options();
  EXPECT_EQ(o.trials, 6);
  EXPECT_EQ(o.objectives, "ppl,bits");
  EXPECT_EQ(o.algo, "nsga2");
  EXPECT_EQ(o.cluster.backend, "local");
  d.runOnCombo()->setCurrentIndex(2);
  o = d.options();
  EXPECT_EQ(o.cluster.backend, "slurm");
  EXPECT_EQ(o.cluster.profile, "gpu");
  EXPECT_TRUE(qs::test::saveScreenshot(d, dir, "search_dialog.png"));
}

TEST(SearchDialog, TheMainWindowRunsTheSearchAsAJob) {
  qs::test::uiApp();
  const std::string dir = qs::test::tempDir("ui_search_job");
  const std::string project = qs::test::makeDemoProject(dir, "search");
  qs::ui::MainWindow w;
  w.setErrorDialogsEnabled(false);
  ASSERT_EQ(w.openProject(QString::fromStdString(project)), "");
  qs::workflow::SearchJobOptions o;
  o.spaceFile = demoSpace(dir);
  o.trials = 4;
  o.seed = 1;
  const int id = w.startSearch(o);
  ASSERT_GT(id, 0);
  qs::ui::JobQueue* q = w.jobQueue();
  ASSERT_TRUE(qs::test::waitUntil([&] { return q->job(id) && q->job(id)->state == qs::ui::JobQueue::State::Finished; },
                                  120000))
      << (q->job(id) ? q->job(id)->result.toStdString() : "");
  EXPECT_NE(q->job(id)->result.indexOf("4 trials"), -1) << q->job(id)->result.toStdString();
  qs::runs::RunFilter f;
  f.kind = "search";
  EXPECT_EQ(qs::runs::RunStore(project + "/runs.sqlite").listRuns(f).size(), 5u) << "4 trials and the summary";
}

}  // namespace
