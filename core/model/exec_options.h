// How a job runs a model: whole (every block loaded, batch after batch) or streaming block by
// block under a memory budget (core/model/layerwise.h). Torch-free, so option structs that the
// GUI fills can carry it.
#pragma once
#include <cstdint>
#include <string>

namespace qs::model {

enum class ExecMode { Auto, Whole, Streaming };
const char* execModeName(ExecMode m);  // "auto", "whole", "stream"
// "auto" | "whole" | "stream"; throws qs::Error naming `key` otherwise.
ExecMode parseExecMode(const std::string& text, const std::string& key);

struct ExecOptions {
  ExecMode mode = ExecMode::Auto;  // "--exec": auto = whole when the estimate fits the budget, else stream
  // "--max-memory": budget for weights + activations on the compute device, bytes; 0 = 85% of what
  // is available there (host: MemAvailable or the cgroup limit; CUDA: free device memory).
  int64_t maxMemoryBytes = 0;

  ExecOptions& withMode(ExecMode v) { mode = v; return *this; }
  ExecOptions& withMaxMemory(int64_t v) { maxMemoryBytes = v; return *this; }
};

}  // namespace qs::model
