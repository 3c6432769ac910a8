// The workbench end to end on a tiny OPT the test writes itself (tests/support/tiny_models.h):
// open project -> Analyse job -> Quantize & evaluate jobs -> the Runs table shows them (rename,
// filter, delete) -> Compare two runs (and two analyses' channel view) -> Export dialog (plan before writing) -> Export job -> the
// folder opens as a model; a failing job shows the core's message; closing the window cancels a
// running job and leaves the run cancelled. The export plan (core/workflow/export_job.h) is
// checked against the folder each format really writes: same files, same byte sizes.
#include <gtest/gtest.h>

#include <QCloseEvent>
#include <QAction>
#include <QComboBox>
#include <QFileInfo>
#include <QLabel>
#include <QPushButton>
#include <QProgressBar>
#include <QTableView>
#include <QTableWidget>
#include <QTimer>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"
#include "core/util/log.h"
#include "core/workflow/export_job.h"
#include "core/workflow/layer_preview.h"
#include "core/workflow/project_jobs.h"
#include "tests/support/tiny_models.h"
#include "tests/ui/ui_test_app.h"
#include "ui/compare_view.h"
#include "ui/export_dialog.h"
#include "ui/job_queue.h"
#include "ui/jobs_panel.h"
#include "ui/log_panel.h"
#include "ui/main_window.h"
#include "ui/outlier_explorer_panel.h"
#include "ui/preview_runner.h"
#include "ui/qcustomplot_include.h"
#include "ui/runs_panel.h"
#include "ui/tuning_panel.h"

namespace {

// A project folder around a 2-layer OPT (vocab 256, byte-level tokenizer) and a text file.
struct TinyProject {
  std::string dir, text;
};

TinyProject makeProject(const std::string& tag) {
  TinyProject p;
  const std::string root = qs::test::tempDir(tag);
  const std::string model = root + "/model";
  std::filesystem::create_directories(model);
  qs::test::writeTinyOpt(model, qs::test::TinyModelOptions().setVocab(256));
  qs::test::writeByteTokenizer(model);
  p.text = root + "/text.txt";
  std::string text;
  for (int i = 0; i < 60; ++i) text += "The quick brown fox jumps over the lazy dog. ";
  std::ofstream(p.text) << text;
  p.dir = root + "/project";
  qs::runs::Project::init(p.dir, model, "tiny");
  // The project's dataset is the text file (init names wikitext2, which tests cannot rely on).
  std::ofstream(p.dir + "/project.yaml") << "name: tiny\nmodel: " << model << "\ndatasets: [" << p.text << "]\n";
  return p;
}

// A quantize section small enough for the tiny model (positions 128) and the text above.
QString quantizeYaml(const TinyProject& p, int wbits, const QString& method = "gptq", const QString& extra = "") {
  return QStringLiteral("quantize:\n  method: %1\n  wbits: %2\n  groupsize: -1\n  nsamples: 4\n  seqlen: 32\n"
                        "  batch_size: 4\n  dataset: %3\n  eval: [%3]\n  eval_seqlen: 32\n")
             .arg(method)
             .arg(wbits)
             .arg(QString::fromStdString(p.text)) +
         extra;
}

class WorkflowTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { qs::test::uiApp(); }
};

TEST_F(WorkflowTest, AnalyseQuantizeRunsTableAndCompare) {
  const TinyProject p = makeProject("ui_workflow");
  qs::ui::MainWindow w;
  w.setErrorDialogsEnabled(false);
  w.show();
  ASSERT_EQ(w.openProject(QString::fromStdString(p.dir)), "");
  EXPECT_EQ(w.projectDir(), QString::fromStdString(p.dir));
  EXPECT_TRUE(w.jobsPanel()->analyseButton()->isEnabled());

  // Analyse: the explorer gets the new run.
  const int a = w.startAnalyse(4, 32);
  ASSERT_GT(a, 0);
  ASSERT_TRUE(w.jobQueue()->waitForIdle(120000));
  ASSERT_EQ(w.jobQueue()->job(a)->state, qs::ui::JobQueue::State::Finished) << w.jobQueue()->job(a)->result.toStdString();
  EXPECT_TRUE(w.jobQueue()->job(a)->result.contains("sites")) << w.jobQueue()->job(a)->result.toStdString();
  ASSERT_TRUE(qs::test::waitUntil([&] { return w.explorerPanel()->currentRun() > 0; }, 20000));
  EXPECT_FALSE(w.explorerPanel()->stats().empty());

  // "After OS+" in the channel view: the migrated ranges of the shown site, one per channel.
  qs::ui::OutlierExplorerPanel* e = w.explorerPanel();
  e->showSite(1, "q_proj", "input");
  e->setAfterOsPlus(true);
  ASSERT_TRUE(qs::test::waitUntil([&] { return e->afterRangesDrawn() > 0; }, 30000));
  EXPECT_EQ(e->afterRangesDrawn(), static_cast<int>(e->channelResult().rows.size()));
  EXPECT_TRUE(e->afterStatus().contains("max |x|")) << e->afterStatus().toStdString();
  e->showSite(1, "block_out", "residual");  // a residual stream: no pair migrates it
  ASSERT_TRUE(qs::test::waitUntil([&] { return e->afterStatus().contains("migrates no pair"); }, 30000))
      << e->afterStatus().toStdString();
  EXPECT_EQ(e->afterRangesDrawn(), 0);
  e->setAfterOsPlus(false);

  // Two quantize jobs queued back to back: the second waits for the first.
  ASSERT_EQ(w.tuningPanel()->setYaml(quantizeYaml(p, 4)), "");
  ASSERT_EQ(w.tuningPanel()->error(), "") << w.tuningPanel()->error().toStdString();
  const int q1 = w.startQuantize();
  // The second with OS+ migration and 8-bit activations, as `qscope quantize --migrate osplus --a-bits 8`.
  ASSERT_EQ(w.tuningPanel()->setYaml(quantizeYaml(p, 3, "rtn", "  migrate: osplus\n  a_bits: 8\n  osplus_search_steps: 10\n")), "");
  const int q2 = w.startQuantize();
  ASSERT_GT(q1, 0);
  ASSERT_GT(q2, 0);
  EXPECT_EQ(w.jobQueue()->job(q2)->state, qs::ui::JobQueue::State::Queued);
  ASSERT_TRUE(w.jobQueue()->waitForIdle(240000));
  for (int id : {q1, q2})
    ASSERT_EQ(w.jobQueue()->job(id)->state, qs::ui::JobQueue::State::Finished) << w.jobQueue()->job(id)->result.toStdString();
  EXPECT_TRUE(w.jobQueue()->job(q1)->result.contains("ppl")) << w.jobQueue()->job(q1)->result.toStdString();
  EXPECT_EQ(w.jobsPanel()->progressBar(q1)->value(), 1000);

  // The runs table shows all three, newest first; the stored config is the panel's.
  qs::ui::RunsPanel* runs = w.runsPanel();
  ASSERT_EQ(runs->visibleRows(), 3);
  qs::runs::RunStore store(qs::runs::Project::open(p.dir).runsPath());
  const auto list = store.listRuns();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].kind, qs::runs::RunKind::Quantize);
  EXPECT_NE(list[0].configYaml.find("wbits: 3"), std::string::npos) << list[0].configYaml;
  EXPECT_NE(list[1].configYaml.find("wbits: 4"), std::string::npos);
  EXPECT_EQ(list[2].kind, qs::runs::RunKind::Analysis);
  const qint64 r1 = list[1].id, r2 = list[0].id;
  const auto migrated = store.loadRun(r2, false);
  bool hasMigration = false, hasActPpl = false;
  for (const auto& m : migrated.metrics) {
    hasMigration |= m.key == "migration.max_abs.after";
    hasActPpl |= m.key.rfind("ppl.", 0) == 0;
  }
  EXPECT_TRUE(hasMigration) << "OS+ ran and its statistics were stored";
  EXPECT_TRUE(hasActPpl);
  ASSERT_EQ(migrated.artifacts.size(), 1u) << "the quantized-run artifact qscope export reads";
  EXPECT_TRUE(std::filesystem::exists(store.artifactPath(migrated.artifacts[0])));

  // Filter and rename.
  runs->setKindFilter("quantize");
  EXPECT_EQ(runs->visibleRows(), 2);
  runs->setKindFilter("");
  runs->setFilterText("rtn");
  EXPECT_EQ(runs->visibleRows(), 1);
  runs->setFilterText("");
  EXPECT_EQ(runs->renameRun(r1, "baseline gptq"), "");
  EXPECT_EQ(store.getRun(r1).name, "baseline gptq");
  EXPECT_NE(runs->renameRun(r1, "  "), "") << "an empty name is refused";

  // Compare the two quantize runs.
  runs->selectRuns({r1, r2});
  EXPECT_TRUE(runs->compareButton()->isEnabled());
  qs::ui::CompareView* cmp = w.compareView();
  runs->compareButton()->click();
  ASSERT_TRUE(qs::test::waitUntil([&] { return !cmp->loading() && cmp->comparison().runs.size() == 2; }, 20000));
  bool wbitsDiffers = false, methodDiffers = false;
  for (int r = 0; r < cmp->configTable()->rowCount(); ++r) {
    const QString key = cmp->configTable()->item(r, 0)->text();
    wbitsDiffers |= key == "quantize.wbits";
    methodDiffers |= key == "quantize.method";
    EXPECT_NE(key, "quantize.nsamples") << "equal keys are not listed";
  }
  EXPECT_TRUE(wbitsDiffers);
  EXPECT_TRUE(methodDiffers);
  bool migrateDiffers = false;
  for (int r = 0; r < cmp->configTable()->rowCount(); ++r) migrateDiffers |= cmp->configTable()->item(r, 0)->text() == "quantize.migrate";
  EXPECT_TRUE(migrateDiffers);
  bool ppl = false;
  for (int r = 0; r < cmp->metricTable()->rowCount(); ++r)
    if (cmp->metricTable()->item(r, 0)->text().startsWith("ppl.text")) {
      ppl = true;
      EXPECT_TRUE(cmp->metricTable()->item(r, 2)->text().contains("%")) << "the second run shows its delta";
    }
  EXPECT_TRUE(ppl);
  cmp->setSeries("rel_error");
  EXPECT_EQ(cmp->seriesPlot()->graphCount(), 2) << "one curve per run";

  // Export: the action is on (the project has quantize runs); the dialog plans before writing.
  EXPECT_TRUE(w.exportAction()->isEnabled());
  QStringList opened;
  w.setFolderOpener([&](const QString& dir) { opened << dir; });
  const QString dest = QString::fromStdString(p.dir) + "/exports/gui-gptq";
  std::vector<qs::workflow::ExportFileInfo> planned;
  {
    qs::ui::ExportDialog dialog(QString::fromStdString(p.dir), r1);
    EXPECT_EQ(dialog.runCount(), 2);
    EXPECT_TRUE(dialog.selectRun(r2));
    EXPECT_TRUE(dialog.selectFormat("scale-shift")) << "the OS+ run has scales/shifts";
    EXPECT_TRUE(dialog.selectRun(r1));
    EXPECT_FALSE(dialog.selectFormat("scale-shift")) << "the run without migration cannot provide them";
    EXPECT_TRUE(dialog.selectFormat("gptq"));
    dialog.setDestination(dest);
    ASSERT_TRUE(qs::test::waitUntil([&] { return !dialog.planning(); }, 60000));
    ASSERT_EQ(dialog.planError(), "");
    EXPECT_EQ(dialog.exportBlocker(), "");
    EXPECT_FALSE(std::filesystem::exists(dest.toStdString())) << "planning writes nothing";
    planned = dialog.plan().files;
    std::vector<std::string> names;
    for (const auto& f : planned) names.push_back(f.name);
    for (const char* f : {"config.json", "quantize_config.json", "model.safetensors", "vocab.json"})
      EXPECT_NE(std::find(names.begin(), names.end(), f), names.end()) << f;
    const int x = w.startExport(dialog.options());
    ASSERT_GT(x, 0);
    ASSERT_TRUE(w.jobQueue()->waitForIdle(120000));
    ASSERT_EQ(w.jobQueue()->job(x)->state, qs::ui::JobQueue::State::Finished) << w.jobQueue()->job(x)->result.toStdString();
  }
  EXPECT_EQ(w.lastExportDir(), QFileInfo(dest).absoluteFilePath());
  EXPECT_TRUE(opened.isEmpty()) << "the folder is offered, not opened, without dialogs";
  for (const auto& f : planned)
    EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(dest.toStdString() + "/" + f.name)), f.bytes) << f.name;
  EXPECT_TRUE(w.logPanel()->toPlainText().contains("Export written to")) << w.logPanel()->toPlainText().toStdString();
  // The export loads as a model (GPTQ folders are dequantized on load).
  QString loadedPath;
  QObject::connect(&w, &qs::ui::MainWindow::modelLoaded, [&](const QString& path) { loadedPath = path; });
  w.openModel(dest);
  ASSERT_TRUE(qs::test::waitUntil([&] { return !loadedPath.isEmpty() || !w.loading(); }, 30000));
  ASSERT_TRUE(qs::test::waitUntil([&] { return !loadedPath.isEmpty(); }, 30000)) << "the exported folder opens";
  // The same destination again: the plan says it exists and Export needs Replace.
  {
    qs::ui::ExportDialog dialog(QString::fromStdString(p.dir), r1);
    EXPECT_TRUE(dialog.selectFormat("gptq"));
    dialog.setDestination(dest);
    ASSERT_TRUE(qs::test::waitUntil([&] { return !dialog.planning(); }, 60000));
    EXPECT_TRUE(dialog.plan().dirExists);
    EXPECT_EQ(dialog.exportBlocker(), "the destination exists");
    dialog.setReplaceExisting(true);
    EXPECT_EQ(dialog.exportBlocker(), "");
  }

  // The channel view of the same site across runs: a second analysis (other windows) beside the
  // first; quantize runs hold no per-channel arrays, so the pair of quantize runs shares none.
  EXPECT_TRUE(cmp->channelSites().empty());
  const int a2 = w.startAnalyse(4, 16);
  ASSERT_TRUE(w.jobQueue()->waitForIdle(120000));
  ASSERT_EQ(w.jobQueue()->job(a2)->state, qs::ui::JobQueue::State::Finished) << w.jobQueue()->job(a2)->result.toStdString();
  const qint64 an1 = list[2].id, an2 = store.listRuns()[0].id;
  runs->refresh();
  runs->selectRuns({an1, an2});
  runs->compareButton()->click();
  ASSERT_TRUE(qs::test::waitUntil([&] {
    return !cmp->loading() && cmp->comparison().runs.size() == 2 && cmp->comparison().runs[1].id == an2;
  }, 20000));
  ASSERT_FALSE(cmp->channelSites().empty()) << "both analyses have per-channel statistics";
  EXPECT_EQ(cmp->showChannelSite(0), 2) << "one band per run";
  EXPECT_EQ(cmp->channelPlot()->graphCount(), 4) << "min and max of each run";

  // Delete (confirmation off for the test) removes the run from the store and the table.
  runs->setConfirmations(false);
  runs->selectRuns({r2});
  EXPECT_EQ(runs->deleteSelected(), "");
  EXPECT_FALSE(store.findRun(r2).has_value());
  EXPECT_EQ(runs->visibleRows(), 3);
}

TEST_F(WorkflowTest, AFailingJobShowsTheCoreMessage) {
  const TinyProject p = makeProject("ui_workflow_fail");
  qs::ui::MainWindow w;
  w.setErrorDialogsEnabled(false);
  ASSERT_EQ(w.openProject(QString::fromStdString(p.dir)), "");
  QString yaml = quantizeYaml(p, 4);
  yaml.replace("dataset: " + QString::fromStdString(p.text), "dataset: /nonexistent/calib.txt");
  ASSERT_EQ(w.tuningPanel()->setYaml(yaml), "");
  const int id = w.startQuantize();
  ASSERT_TRUE(w.jobQueue()->waitForIdle(60000));
  const auto* job = w.jobQueue()->job(id);
  EXPECT_EQ(job->state, qs::ui::JobQueue::State::Failed);
  EXPECT_TRUE(job->result.contains("/nonexistent/calib.txt")) << job->result.toStdString();
  EXPECT_FALSE(job->result.contains("frame #")) << "no stack trace";
  EXPECT_EQ(w.jobsPanel()->resultLabel(id)->text(), job->result);
  // Inputs are checked before the run row: a bad dataset leaves no failed run behind.
  EXPECT_TRUE(qs::runs::RunStore(qs::runs::Project::open(p.dir).runsPath()).listRuns().empty());
}

TEST_F(WorkflowTest, ClosingWithARunningJobCancelsItAndKeepsTheRunCancelled) {
  const TinyProject p = makeProject("ui_workflow_close");
  auto* w = new qs::ui::MainWindow;
  w->setErrorDialogsEnabled(false);  // no question box: closing cancels
  ASSERT_EQ(w->openProject(QString::fromStdString(p.dir)), "");
  // Many samples so the job is still running when the window closes.
  QString yaml = quantizeYaml(p, 4);
  ASSERT_EQ(w->tuningPanel()->setYaml(yaml.replace("nsamples: 4", "nsamples: 4000")), "");
  const int id = w->startQuantize();
  ASSERT_TRUE(qs::test::waitUntil([&] {
    const auto* j = w->jobQueue()->job(id);
    return j->state == qs::ui::JobQueue::State::Running && j->stage.startsWith("quantize");
  }, 60000)) << w->jobQueue()->job(id)->stage.toStdString();
  EXPECT_TRUE(w->close());
  EXPECT_EQ(w->jobQueue()->job(id)->state, qs::ui::JobQueue::State::Cancelled);
  delete w;
  const auto list = qs::runs::RunStore(qs::runs::Project::open(p.dir).runsPath()).listRuns();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].status, qs::runs::RunStatus::Cancelled);
}

// The export plan is what the export writes, for every format (file names and exact sizes), and
// nothing is written while planning; errors are the CLI's (bad options name the flag).
TEST_F(WorkflowTest, ExportPlanMatchesTheWrittenFolder) {
  const TinyProject p = makeProject("ui_export_plan");
  qs::workflow::QuantizeJobOptions q;
  q.projectDir = p.dir;
  q.configYaml = quantizeYaml(p, 4, "gptq", "  migrate: osplus\n  osplus_search_steps: 10\n").toStdString();
  const auto run = qs::workflow::runQuantizeJob(q, qs::jobs::Progress::none());
  const auto runs = qs::workflow::exportableRuns(p.dir);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].id, run.runId);
  EXPECT_EQ(runs[0].formats, (std::vector<std::string>{"hf-fp16", "gptq", "fake-fp16", "scale-shift"}));
  for (const std::string& format : runs[0].formats) {  // OPT: no gguf (tests/llamacpp plans a GGUF file)
    for (const char* dtype : {"float16", "float32"}) {
      qs::workflow::ExportJobOptions o;
      o.projectDir = p.dir;
      o.runId = run.runId;
      o.format = format;
      o.dtype = dtype;
      o.outDir = p.dir + "/exports/" + format + "-" + dtype;
      const auto plan = qs::workflow::planExportJob(o);
      EXPECT_FALSE(plan.dirExists);
      EXPECT_FALSE(std::filesystem::exists(o.outDir)) << "planning writes nothing";
      const auto done = qs::workflow::runExportJob(o, qs::jobs::Progress::none());
      ASSERT_EQ(plan.files.size(), done.files.size()) << format;
      int64_t total = 0;
      for (size_t i = 0; i < plan.files.size(); ++i) {
        EXPECT_EQ(plan.files[i].name, done.files[i].name);
        EXPECT_EQ(plan.files[i].bytes, static_cast<int64_t>(std::filesystem::file_size(o.outDir + "/" + done.files[i].name)))
            << format << " " << dtype << " " << done.files[i].name;
        total += plan.files[i].bytes;
      }
      EXPECT_EQ(plan.totalBytes, total);
      EXPECT_EQ(plan.tensorBytes, done.tensorBytes);
      EXPECT_TRUE(qs::workflow::planExportJob(o).dirExists);
      EXPECT_THROW(qs::workflow::runExportJob(o, qs::jobs::Progress::none()), qs::Error) << "exists, no force";
    }
  }
  qs::workflow::ExportJobOptions bad;
  bad.projectDir = p.dir;
  bad.runId = run.runId;
  bad.outDir = p.dir + "/exports/bad";
  bad.dtype = "int8";
  try {
    qs::workflow::planExportJob(bad);
    ADD_FAILURE() << "a bad dtype is refused";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--dtype"), std::string::npos) << e.what();
  }
  bad.dtype = "float16";
  bad.runId = 999;
  EXPECT_THROW(qs::workflow::planExportJob(bad), qs::Error);
  // Cancelled part way through the tensors (as the Jobs dock's Cancel does): no folder and no
  // temporary sibling are left.
  struct CancelAfter : qs::jobs::Progress {
    int updates = 0;
    void update(double, const std::string&) override { ++updates; }
    bool cancelRequested() const override { return updates >= 6; }
  } cancel;
  qs::workflow::ExportJobOptions c;
  c.projectDir = p.dir;
  c.runId = run.runId;
  c.format = "gptq";
  c.outDir = p.dir + "/exports/cancelled";
  EXPECT_THROW(qs::workflow::runExportJob(c, cancel), qs::Cancelled);
  EXPECT_GE(cancel.updates, 6) << "cancelled while writing tensors";
  EXPECT_FALSE(std::filesystem::exists(c.outDir));
  for (const auto& e : std::filesystem::directory_iterator(p.dir + "/exports"))
    EXPECT_EQ(e.path().filename().string().rfind("cancelled", 0), std::string::npos) << e.path();
  EXPECT_EQ(qs::workflow::formatFileSize(512), "512 B");
  EXPECT_EQ(qs::workflow::formatFileSize(3 << 20), "3.0 MiB");
}

// The facade the live preview runs: ranges after OS+ follow the definitions (z = (max+min)/2,
// s = max(1, r/t)) computed here by hand from the "before" ranges, and a settings-only change
// reuses the captured inputs.
TEST_F(WorkflowTest, LayerPreviewFollowsTheOsPlusDefinitions) {
  const TinyProject p = makeProject("ui_preview");
  qs::workflow::LayerPreviewer previewer;
  qs::workflow::LayerPreviewOptions o;
  o.modelPath = qs::runs::Project::open(p.dir).modelPath();
  o.dataset = p.text;
  o.samples = 4;
  o.seqlen = 32;
  o.layer = 1;
  o.configYaml = "quantize:\n  wbits: 4\n  a_bits: 6\n";
  const auto searched = previewer.preview(o);
  EXPECT_TRUE(searched.recaptured);
  ASSERT_FALSE(searched.minBefore.empty());
  EXPECT_EQ(searched.pair.rfind("layers.1.", 0), 0u) << searched.pair;
  EXPECT_GT(searched.threshold, 0);
  EXPECT_LE(searched.errorAfter, searched.errorBefore * (1 + 1e-9) + 1e-12)
      << "the search includes t = max range (s = 1), and shifting alone never hurts a zero-point grid here";

  o.threshold = 0.5;  // a fixed t: every channel's half-range after scaling is min(r, t)
  const auto fixed = previewer.preview(o);
  EXPECT_FALSE(fixed.recaptured) << "only the settings changed";
  for (size_t c = 0; c < fixed.minBefore.size(); ++c) {
    const double z = (double(fixed.maxBefore[c]) + fixed.minBefore[c]) / 2;
    const double r = (double(fixed.maxBefore[c]) - fixed.minBefore[c]) / 2;
    const double s = std::max(1.0, r / 0.5);
    EXPECT_NEAR(fixed.maxAfter[c], (fixed.maxBefore[c] - z) / s, 1e-5) << c;
    EXPECT_NEAR(fixed.minAfter[c], (fixed.minBefore[c] - z) / s, 1e-5) << c;
    EXPECT_LE(fixed.maxAfter[c], std::min(r, 0.5) + 1e-5);
  }
  EXPECT_DOUBLE_EQ(fixed.threshold, 0.5);

  o.shift = false;
  o.scale = false;
  const auto none = previewer.preview(o);
  EXPECT_EQ(none.minAfter, none.minBefore) << "no migration leaves the ranges alone";
  EXPECT_NEAR(none.errorAfter, none.errorBefore, 1e-9 * none.errorBefore);
  o.layer = 99;
  EXPECT_THROW(previewer.preview(o), qs::Error);
}

// The Tuning panel's preview: a change recomputes in the background and the newest wins.
TEST_F(WorkflowTest, TuningPanelLivePreview) {
  const TinyProject p = makeProject("ui_preview_panel");
  qs::ui::MainWindow w;
  w.setErrorDialogsEnabled(false);
  ASSERT_EQ(w.openProject(QString::fromStdString(p.dir)), "");
  qs::ui::TuningPanel* t = w.tuningPanel();
  ASSERT_EQ(t->setYaml(quantizeYaml(p, 4, "rtn", "  a_bits: 6\n")), "");
  ASSERT_TRUE(qs::test::waitUntil([&] { return t->previewsShown() > 0; }, 60000)) << t->previewInfo()->text().toStdString();
  EXPECT_EQ(t->previewResult().pair.rfind("layers.0.", 0), 0u);
  // Several changes in a row: only the last one's result is shown.
  t->setPreviewLayer(1);
  t->setPreviewThreshold(0.7);
  t->setPreviewThreshold(0.4);
  ASSERT_TRUE(qs::test::waitUntil([&] {
    return t->previewResult().threshold == 0.4 && t->previewResult().pair.rfind("layers.1.", 0) == 0;
  }, 30000)) << t->previewInfo()->text().toStdString();
  EXPECT_TRUE(t->previewInfo()->text().contains("error")) << t->previewInfo()->text().toStdString();
  // The preview's OS+ controls are the config keys the Quantize & Evaluate job runs.
  EXPECT_TRUE(w.quantizeConfigYaml().contains("osplus_threshold: 0.4")) << w.quantizeConfigYaml().toStdString();
  t->setPreviewShift(false);
  EXPECT_TRUE(w.quantizeConfigYaml().contains("osplus_shift: false")) << w.quantizeConfigYaml().toStdString();
  EXPECT_GE(t->previewPlot()->graphCount(), 2);
}

}  // namespace

// Issue 15: the Tuning panel estimates the quantize job's memory as the config changes (the
// pre-flight, memory part), and the Quantize job logs the whole pre-flight (with its time probe)
// before it starts.
TEST_F(WorkflowTest, TuningPanelShowsTheJobsMemoryAndTheJobLogsItsPreflight) {
  const TinyProject p = makeProject("ui_resources");
  qs::ui::MainWindow w;
  w.setErrorDialogsEnabled(false);
  w.show();
  ASSERT_EQ(w.tuningPanel()->setYaml(quantizeYaml(p, 4)), "");
  ASSERT_EQ(w.openProject(QString::fromStdString(p.dir)), "");
  qs::ui::TuningPanel* t = w.tuningPanel();
  ASSERT_TRUE(qs::test::waitUntil([&] { return t->resourceEstimates() > 0; }, 30000));
  const QString first = t->resourceLabel()->text();
  EXPECT_TRUE(first.startsWith("Resources: peak ~")) << first.toStdString();
  EXPECT_TRUE(first.contains("whole model")) << first.toStdString();
  EXPECT_TRUE(t->resourceLabel()->toolTip().contains("memory: peak about")) << t->resourceLabel()->toolTip().toStdString();
  // More calibration samples: a new estimate with a larger peak.
  const int before = t->resourceEstimates();
  ASSERT_EQ(t->setYaml(quantizeYaml(p, 4).replace("nsamples: 4", "nsamples: 64")), "");
  ASSERT_TRUE(qs::test::waitUntil([&] { return t->resourceEstimates() > before; }, 30000));
  EXPECT_NE(t->resourceLabel()->text(), first);

  // The job's log starts with its pre-flight (info level; the test main logs warnings only).
  const qs::log::Level level = qs::log::level();
  qs::log::setLevel(qs::log::Level::Info);
  const int id = w.startQuantize();
  ASSERT_GT(id, 0);
  ASSERT_TRUE(w.jobQueue()->waitForIdle(120000));
  ASSERT_EQ(w.jobQueue()->job(id)->state, qs::ui::JobQueue::State::Finished) << w.jobQueue()->job(id)->result.toStdString();
  ASSERT_TRUE(qs::test::waitUntil([&] { return w.logPanel()->toPlainText().contains("pre-flight: gptq w4"); }))
      << w.logPanel()->toPlainText().toStdString();
  EXPECT_TRUE(w.logPanel()->toPlainText().contains("time: about"));
  qs::log::setLevel(level);
}
