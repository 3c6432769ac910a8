// Out-of-memory as a user error (issue 8): withOomMessage turns LibTorch's allocator failures
// into qs::Error naming what to lower, lets every other error through untouched, and the
// perplexity entry point applies it. The OOM is injected (a Progress that throws the error
// the CUDA caching allocator throws), so the translation is tested without a GPU.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <functional>
#include <new>
#include <string>
#include <vector>

#include "core/eval/loglikelihood.h"
#include "core/eval/perplexity.h"
#include "core/jobs/progress.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/oom.h"
#include "core/util/oom_guard.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs {
namespace {

// The message text and type c10's CUDACachingAllocator throws.
[[noreturn]] void throwCudaOom() {
  C10_THROW_ERROR(OutOfMemoryError,
                  "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total capacity)\nmore lines");
}

OomContext calibration() {
  return OomContext{"quantization", "cuda:0", {}, ""}
      .add("calibration samples", "--nsamples", 128)
      .add("sequence length", "--seqlen", 2048)
      .add("batch size", "--batch-size", 4);
}

std::string messageOf(const std::function<void()>& f) {
  try {
    withOomMessage(calibration(), f);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(OutOfMemory, CudaOomBecomesErrorNamingWhatToLower) {
  EXPECT_EQ(messageOf(&throwCudaOom),
            "out of memory on cuda:0 during quantization; lower the calibration samples (--nsamples, now 128), "
            "the sequence length (--seqlen, now 2048) or the batch size (--batch-size, now 4) "
            "[CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total capacity)]");
}

TEST(OutOfMemory, OlderLibTorchPlainErrorWithOomTextIsTranslated) {
  const std::string m = messageOf([] { C10_THROW_ERROR(Error, "CUDA out of memory. Tried to allocate 20 MiB"); });
  EXPECT_EQ(m.rfind("out of memory on cuda:0 during quantization; lower", 0), 0u) << m;
}

TEST(OutOfMemory, RealCpuAllocatorFailureIsTranslated) {
  // Issue 15: `qscope eval` on a 7B model in float32 stopped with LibTorch's raw "[enforce fail at
  // alloc_cpu.cpp:75] ... DefaultCPUAllocator: can't allocate memory". A real failed allocation
  // (1 EiB: no address space has it) must become the message naming what to lower.
  const std::string m = messageOf([] { (void)at::empty({int64_t{1} << 60}, at::kByte); });
  EXPECT_EQ(m.rfind("out of memory on cuda:0 during quantization; lower the calibration samples", 0), 0u) << m;
  EXPECT_NE(m.find("can't allocate memory"), std::string::npos) << "the allocator's own first line is kept: " << m;
}

TEST(OutOfMemory, HostBadAllocNamesTheHost) {
  const std::string m = messageOf([] { throw std::bad_alloc(); });
  EXPECT_EQ(m.rfind("out of memory on the host during quantization; lower the calibration samples", 0), 0u) << m;
}

TEST(OutOfMemory, OtherErrorsPassThroughUnchanged) {
  EXPECT_THROW(withOomMessage(calibration(), [] { C10_THROW_ERROR(Error, "shape mismatch"); }), c10::Error);
  EXPECT_THROW(withOomMessage(calibration(), [] { throw Cancelled(); }), Cancelled);
  try {
    withOomMessage(calibration(), [] { throw Error("config.yaml: bad key"); });
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "config.yaml: bad key");
  }
  EXPECT_EQ(withOomMessage(calibration(), [] { return 42; }), 42);
}

// Throws the allocator's error from inside the evaluation loop, as a CUDA forward would.
class OomAtWindow : public jobs::Progress {
 public:
  void update(double fraction, const std::string&) override {
    if (fraction > 0) throwCudaOom();
  }
};

TEST(OutOfMemory, PerplexityEntryPointTranslatesInjectedOom) {
  auto model = model::openModel(test::writeTinyOpt(test::tempDir("oom_ppl"), test::TinyModelOptions().setSeed(8)));
  std::vector<int32_t> tokens(200);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 37) % 256);
  OomAtWindow progress;
  try {
    eval::evaluatePerplexity(*model, tokens, eval::PerplexityOptions().setSeqlen(32).setBatchSize(2), progress);
    FAIL() << "the injected OOM did not surface";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "out of memory on cpu during perplexity evaluation; lower the batch size (--batch-size, now 2) or the "
              "window length (--seqlen, now 32); or stream the model block by block (--exec stream, or a lower "
              "--max-memory) [CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total capacity)]");
  }
}

TEST(OutOfMemory, TaskEvaluationEntryPointTranslatesInjectedOom) {
  auto model = model::openModel(test::writeTinyOpt(test::tempDir("oom_ll"), test::TinyModelOptions().setSeed(9)));
  std::vector<eval::TokenizedRequest> requests(5, eval::TokenizedRequest{{1, 2, 3}, {4, 5}});
  OomAtWindow progress;
  try {
    eval::computeLoglikelihoods(*model, requests, eval::LoglikelihoodOptions().withBatchSize(2), progress);
    FAIL() << "the injected OOM did not surface";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("out of memory on cpu during task evaluation; lower the task batch size "
                                          "(--task-batch-size, now 2) or the maximum length (now 128)",
                                          0),
              0u)
        << e.what();
  }
}

}  // namespace
}  // namespace qs
