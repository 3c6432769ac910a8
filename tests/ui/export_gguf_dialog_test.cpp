// The Export dialog's GGUF path on the real stories260K model (HF folder in ../shared): a
// scaling-free RTN run offers gguf; choosing it enables the GGUF type (and disables dtype and
// shards), names a .gguf file by its type, and the plan lists that one file with its exact size
// and llama-quantize's type notes (output layer Q8_0, ffn_down F16) before anything is written.
// The dialog is saved as export_gguf_dialog.png in the test's temp folder (QS_SHOT_DIR overrides)
// to be looked at. Skips without ../shared.
#include <gtest/gtest.h>

#include <QComboBox>
#include <QLabel>
#include <QPixmap>
#include <QSpinBox>
#include <QTreeWidget>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/jobs/progress.h"
#include "core/runs/project.h"
#include "core/workflow/project_jobs.h"
#include "tests/support/test_paths.h"
#include "tests/ui/ui_test_app.h"
#include "ui/export_dialog.h"

namespace {

TEST(ExportGgufDialog, PlansOneFileWithLlamaQuantizesTypes) {
  QS_REQUIRE_SHARED();
  qs::test::uiApp();
  const std::string root = qs::test::tempDir("ui_gguf");
  const std::string dir = root + "/project";
  const std::string text = qs::test::sharedPath("text/wikitext-2-raw-test.txt");
  qs::runs::Project::init(dir, qs::test::sharedPath("models/stories260K/hf"), "stories");
  qs::workflow::QuantizeJobOptions q;
  q.projectDir = dir;
  q.configYaml = "quantize:\n  method: rtn\n  wbits: 4\n  groupsize: 32\n  nsamples: 2\n  seqlen: 32\n  dataset: " +
                 text + "\n  eval: []\n";
  const auto run = qs::workflow::runQuantizeJob(q, qs::jobs::Progress::none());

  qs::ui::ExportDialog dialog(QString::fromStdString(dir), run.runId);
  ASSERT_TRUE(dialog.selectFormat("gguf")) << "an HF LLaMA run without shifting offers GGUF";
  auto* type = dialog.findChild<QComboBox*>("ggufType");
  ASSERT_NE(type, nullptr);
  EXPECT_TRUE(type->isEnabled());
  type->setCurrentText("Q4_0");
  ASSERT_TRUE(qs::test::waitUntil([&] { return !dialog.planning(); }, 60000));
  ASSERT_EQ(dialog.planError(), "") << dialog.planError().toStdString();
  const auto o = dialog.options();
  EXPECT_EQ(o.ggufType, "Q4_0");
  EXPECT_TRUE(QString::fromStdString(o.outDir).endsWith("-q4_0.gguf")) << o.outDir;
  EXPECT_FALSE(std::filesystem::exists(o.outDir)) << "planning writes nothing";
  ASSERT_EQ(dialog.plan().files.size(), 1u);
  EXPECT_GT(dialog.plan().files[0].bytes, 200000);
  bool output = false, fallback = false;
  for (const auto& n : dialog.plan().notes) {
    output = output || n.find("output layer") != std::string::npos;
    fallback = fallback || n.find("172 columns") != std::string::npos;
  }
  EXPECT_TRUE(output && fallback) << "the plan shows llama-quantize's types";
  for (auto* spin : dialog.findChildren<QSpinBox*>()) EXPECT_FALSE(spin->isEnabled()) << "no shards for one file";

  EXPECT_TRUE(qs::test::saveScreenshot(dialog, root, "export_gguf_dialog.png"));
}

}  // namespace
