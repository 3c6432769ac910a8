// core/workflow's runQuantizeJob, the entry the GUI's Quantize job calls (the same runQuantize as
// `qscope quantize`), on the bundled demo model with a task file the test writes: the run holds
// the perplexity, the FP and quantized task metrics and the artifact, and its per-block
// checkpoint is gone once the run finishes; per-task progress messages are reported; a job
// cancelled in the middle of the FP tasks or of the weight pipeline leaves the run cancelled,
// with no metrics, no artifact folder and no checkpoint. Needs nothing from ../shared.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"
#include "core/workflow/project_jobs.h"
#include "tests/support/demo_project.h"
#include "tests/support/test_paths.h"

namespace {

using qs::test::demoModel;
using qs::test::demoText;

std::string makeProject(const std::string& dir) {
  const std::string proj = qs::test::makeDemoProject(dir, "job");
  std::ofstream(dir + "/piqa.jsonl")
      << R"({"query": "Question: How do you open a door?\nAnswer:", "choices": [" turn the handle", " kick it"], "gold": 0})" << "\n"
      << R"({"query": "Question: How do you dry a shirt?\nAnswer:", "choices": [" hang it up", " wet it"], "gold": 0})" << "\n";
  return proj;
}

std::string config(const std::string& dir) {
  return "quantize:\n  method: rtn\n  wbits: 8\n  nsamples: 2\n  seqlen: 64\n  dataset: \"" + demoText() +
         "\"\n  eval: [\"" + demoText() + "\"]\n  eval_seqlen: 64\n  eval_limit_windows: 3\n  eval_tasks: [\"piqa=" +
         dir + "/piqa.jsonl\"]\n";
}

// Records messages; requests cancellation once a message starts with `trigger`.
class Recorder : public qs::jobs::Progress {
 public:
  explicit Recorder(std::string trigger = "") : trigger_(std::move(trigger)) {}
  void update(double, const std::string& message) override {
    messages.push_back(message);
    if (!trigger_.empty() && message.rfind(trigger_, 0) == 0) cancel_ = true;
  }
  bool cancelRequested() const override { return cancel_; }
  std::vector<std::string> messages;

 private:
  std::string trigger_;
  bool cancel_ = false;
};

bool anyStartsWith(const std::vector<std::string>& xs, const std::string& prefix) {
  for (const auto& x : xs)
    if (x.rfind(prefix, 0) == 0) return true;
  return false;
}

}  // namespace

TEST(QuantizeJob, GuiEntryStoresTasksArtifactAndDropsTheCheckpoint) {
  const std::string dir = qs::test::tempDir("qjob");
  const std::string proj = makeProject(dir);
  qs::workflow::QuantizeJobOptions o;
  o.projectDir = proj;
  o.configYaml = config(dir);
  o.configName = "tuning panel";
  Recorder progress;
  const auto out = qs::workflow::runQuantizeJob(o, progress);
  ASSERT_GT(out.runId, 0);
  EXPECT_NE(out.summary.find("piqa acc"), std::string::npos) << out.summary;
  EXPECT_TRUE(anyStartsWith(progress.messages, "FP piqa")) << "per-task progress before quantization";
  EXPECT_TRUE(anyStartsWith(progress.messages, "W8 piqa")) << "per-task progress after quantization";

  const auto project = qs::runs::Project::open(proj);
  const auto rec = project.openStore().loadRun(out.runId, false);
  EXPECT_EQ(rec.info.status, qs::runs::RunStatus::Finished);
  std::vector<std::string> keys;
  for (const auto& m : rec.metrics) keys.push_back(m.key);
  for (const char* key : {"fp/piqa/acc", "piqa/acc", "piqa/acc_norm", "ppl.sample.txt", "ppl_fp.sample.txt"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
  EXPECT_TRUE(std::filesystem::exists(qs::workflow::quantizeArtifactDir(project, out.runId) + "/quantized.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(qs::workflow::quantizeCheckpointDir(project, out.runId)));
}

TEST(QuantizeJob, CancelLeavesACancelledRunAndNoFiles) {
  for (const std::string trigger : {"FP piqa", "quantize: block 2"}) {
    const std::string dir = qs::test::tempDir("qjob_cancel");
    const std::string proj = makeProject(dir);
    qs::workflow::QuantizeJobOptions o;
    o.projectDir = proj;
    o.configYaml = config(dir);
    Recorder progress(trigger);
    EXPECT_THROW(qs::workflow::runQuantizeJob(o, progress), qs::Cancelled) << trigger;
    const auto project = qs::runs::Project::open(proj);
    const auto store = project.openStore();
    const auto runs = store.listRuns();
    ASSERT_EQ(runs.size(), 1u) << trigger;
    const auto rec = store.loadRun(runs[0].id, false);
    EXPECT_EQ(rec.info.status, qs::runs::RunStatus::Cancelled) << trigger;
    EXPECT_TRUE(rec.metrics.empty()) << trigger;
    EXPECT_FALSE(std::filesystem::exists(qs::workflow::quantizeArtifactDir(project, runs[0].id))) << trigger;
    EXPECT_FALSE(std::filesystem::exists(qs::workflow::quantizeCheckpointDir(project, runs[0].id))) << trigger;
  }
}
