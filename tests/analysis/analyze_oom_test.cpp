// Out-of-memory in analyzeModel (issue 8): an allocator failure raised mid-pass (injected through
// Progress, as a CUDA forward would raise it) stops the analysis with a qs::Error naming samples,
// seqlen and batch size, and leaves no hook on the model.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <string>

#include "core/analysis/analyze.h"
#include "core/analysis/calibration.h"
#include "core/jobs/progress.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs::analysis {
namespace {

class OomAfterFirstBatch : public jobs::Progress {
 public:
  void update(double fraction, const std::string&) override {
    if (fraction > 0 && fraction < 1) C10_THROW_ERROR(OutOfMemoryError, "CUDA out of memory. Tried to allocate 1.50 GiB");
  }
};

TEST(AnalyzeOom, InjectedOomStopsWithWhatToLower) {
  auto m = model::openModel(test::writeTinyOpt(test::tempDir("ana_oom"), test::TinyModelOptions().setSeed(5)));
  CalibrationSet cal;
  cal.samples = 4;
  cal.seqlen = 12;
  for (int64_t i = 0; i < cal.samples * cal.seqlen; ++i) cal.ids.push_back(static_cast<int32_t>((i * 29) % 256));
  OomAfterFirstBatch progress;
  try {
    analyzeModel(*m, cal, AnalysisOptions().withBatchSize(2), progress);
    FAIL() << "the injected OOM did not surface";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "out of memory on cpu during analysis; lower the calibration samples (--samples, now 4), the sequence "
              "length (--seqlen, now 12) or the batch size (--batch-size, now 2) [CUDA out of memory. Tried to "
              "allocate 1.50 GiB]");
  }
  const at::Tensor ids = at::arange(12, at::kLong).unsqueeze(0);
  EXPECT_NO_THROW(m->forward(ids));  // no analysis hook left behind
}

}  // namespace
}  // namespace qs::analysis
