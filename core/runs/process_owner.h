// Who is writing a run: pid, host and the process start time. Stored with a running run so
// that the next open can tell a live writer from one that was killed (and a reused pid from
// the original process), and mark the orphaned run failed.
#pragma once
#include <cstdint>
#include <string>

namespace qs::runs {

struct ProcessOwner {
  int64_t pid = 0;
  std::string host;
  std::string start;  // process start time in clock ticks since boot (/proc/<pid>/stat); "" if unknown
};

ProcessOwner currentProcess();

// Whether the process `o` describes is still alive on this host. A zombie counts as gone, and
// so does a live pid whose start time differs (the pid was reused).
bool isAlive(const ProcessOwner& o);

// UTC time of now in strftime's `format`; by default ISO 8601, "2024-05-01T12:00:00Z".
std::string utcNow(const char* format = "%Y-%m-%dT%H:%M:%SZ");

}  // namespace qs::runs
