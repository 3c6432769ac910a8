// Host memory as a job sees it, and memory sizes as users write them: the budget that decides
// whether a model runs whole or streams block by block (core/model/layerwise.h), the peak
// resident set the benchmarks and run records report. Torch-free.
#pragma once
#include <cstdint>
#include <string>

namespace qs {

struct HostMemory {
  int64_t totalBytes = 0;      // MemTotal, or the cgroup limit when lower
  int64_t availableBytes = 0;  // MemAvailable, or what the cgroup limit leaves when lower
  std::string source;          // "MemAvailable" or "cgroup memory.max"
};
// Reads /proc/meminfo and the cgroup (v2 memory.max / v1 limit_in_bytes) limit; zeros when
// neither is readable.
HostMemory hostMemory();

// Peak resident set of this process (VmHWM) and the current one (VmRSS), bytes; 0 without /proc.
int64_t peakRssBytes();
int64_t currentRssBytes();

// Hands memory the allocator keeps after frees back to the system (glibc: malloc_trim), so a job
// that streams blocks keeps its resident set near what it uses; a no-op elsewhere.
void releaseFreedMemory();

// "24G", "3.5GiB", "800M", "512MB", "1024" (bytes): binary units (K = 1024). Throws qs::Error
// naming `key` for anything else or a value <= 0.
int64_t parseMemorySize(const std::string& text, const std::string& key);

// Free and total memory of CUDA device `index`: gpu/ registers the query at start-up (core knows no
// CUDA, DESIGN.md seam 1); false when none is registered or the device cannot be queried.
using DeviceMemoryQuery = bool (*)(int index, int64_t* freeBytes, int64_t* totalBytes);
void registerDeviceMemoryQuery(DeviceMemoryQuery query);
bool deviceMemory(int index, int64_t& freeBytes, int64_t& totalBytes);

// "1.5 GiB" (the model summary's formatBytes).
std::string formatMemory(int64_t bytes);

}  // namespace qs
