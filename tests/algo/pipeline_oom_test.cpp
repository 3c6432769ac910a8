// Out-of-memory in the calibration pipeline (issue 8): an allocator failure in the middle of a
// block (injected through Progress, as a CUDA forward or Hessian update would raise it) stops
// quantizeModel with a qs::Error naming samples, seqlen and batch size; like a cancel, it leaves
// no half-written checkpoint and no hook on the model.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/algo/pipeline.h"
#include "core/jobs/progress.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs::algo {
namespace {

class OomAt : public jobs::Progress {
 public:
  explicit OomAt(std::string at) : at_(std::move(at)) {}
  void update(double, const std::string& message) override {
    if (message.rfind(at_, 0) == 0)
      C10_THROW_ERROR(OutOfMemoryError, "CUDA out of memory. Tried to allocate 512.00 MiB");
  }

 private:
  std::string at_;
};

TEST(PipelineOom, InjectedOomStopsWithWhatToLowerAndLeavesNothingHalfWritten) {
  const std::string dir = test::tempDir("pipe_oom") + "/ckpt";
  auto m = model::openModel(test::writeTinyLlama(test::tempDir("pipe_oom_model"),
                                                 test::TinyModelOptions().setLayers(2).setSeed(3)));
  at::Generator gen = at::detail::createCPUGenerator(12);
  const at::Tensor ids = at::randint(0, 256, {6, 16}, gen, at::kLong);
  OomAt progress("block 1/2: self_attn.o_proj");
  const auto opts = PipelineOptions()
                        .withLayer(LayerQuantOptions().withMethod(Method::Gptq).withBits(3))
                        .withBatchSize(3)
                        .withCheckpoint(dir, "t");
  try {
    quantizeModel(*m, ids, {}, opts, progress);
    FAIL() << "the injected OOM did not surface";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "out of memory on cpu during quantization; lower the calibration samples (--nsamples, now 6), the "
              "sequence length (--seqlen, now 16) or the batch size (--batch-size, now 3) [CUDA out of memory. "
              "Tried to allocate 512.00 MiB]");
  }
  EXPECT_EQ(checkpointedBlocks(dir), 0);
  EXPECT_FALSE(std::filesystem::exists(dir + "/block-0.safetensors"));
  EXPECT_NO_THROW(m->forward(ids.narrow(0, 0, 1)));
}

}  // namespace
}  // namespace qs::algo
