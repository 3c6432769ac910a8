// Out-of-memory as a user error: the message a job stops with when the device (or host) runs out
// of memory, naming what to lower. Torch-free; the catching wrapper that turns LibTorch's
// c10::OutOfMemoryError into this is core/util/oom_guard.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qs {

// What was running and the sizes the user can lower, largest lever first.
struct OomContext {
  std::string what;    // "quantization", "perplexity evaluation", ...
  std::string device;  // "cuda:0", "cpu"
  struct Knob {
    std::string name;  // "calibration samples"
    std::string flag;  // "--nsamples" (the CLI option; the GUI shows the same names)
    int64_t now = 0;   // the value the job ran with
  };
  std::vector<Knob> lower;
  std::string hint;    // a further way out, after the knobs ("or stream the model block by block ...")

  OomContext& add(const std::string& name, const std::string& flag, int64_t now) {
    lower.push_back({name, flag, now});
    return *this;
  }
};

// "out of memory on cuda:0 during quantization; lower the calibration samples (--nsamples, now
// 128), the sequence length (--seqlen, now 2048) or the batch size (--batch-size, now 4)
// [CUDA out of memory. Tried to allocate ...]": detail is the first line of the library's message.
std::string outOfMemoryMessage(const OomContext& context, const std::string& detail);

// Whether an exception text is an allocator's out-of-memory report (LibTorch versions before
// c10::OutOfMemoryError threw plain c10::Error with "CUDA out of memory"; the CPU allocator says
// "DefaultCPUAllocator: can't allocate memory").
bool isOutOfMemoryText(const std::string& what);

}  // namespace qs
