// The one log line a dispatched operation writes when a tensor sits on a CUDA device but no
// kernel is registered for it (CPU-only LibTorch build, no device at start-up): the work then runs
// on core's reference path, and the user is told once per operation, not once per call.
#pragma once
#include <string>

namespace qs::log {

// Logs "<op>: no CUDA kernel registered; using <fallback> on <device>" at info level the first
// time it is called for `op` in the process; later calls for the same op are silent. Returns
// whether it logged. Thread-safe.
bool fallbackOnce(const std::string& op, const std::string& device, const std::string& fallback);

}  // namespace qs::log
