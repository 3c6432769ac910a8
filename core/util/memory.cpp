#include "core/util/memory.h"

#include <malloc.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "core/util/error.h"

namespace qs {
namespace {

// "MemAvailable:   22886444 kB" -> bytes; -1 when absent.
int64_t meminfoField(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) {
      try {
        return std::stoll(line.substr(field.size() + 1)) * 1024;
      } catch (const std::exception&) {
        return -1;
      }
    }
  return -1;
}

// A number from a one-line file ("max" and unreadable files give -1).
int64_t fileNumber(const std::string& path) {
  std::ifstream in(path);
  std::string v;
  if (!(in >> v) || v == "max") return -1;
  try {
    return std::stoll(v);
  } catch (const std::exception&) {
    return -1;
  }
}

int64_t statusField(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) {
      try {
        return std::stoll(line.substr(key.size())) * 1024;
      } catch (const std::exception&) {
        return 0;
      }
    }
  return 0;
}

}  // namespace

HostMemory hostMemory() {
  HostMemory m;
  const int64_t total = meminfoField("MemTotal"), avail = meminfoField("MemAvailable");
  if (total > 0) m.totalBytes = total;
  if (avail > 0) {
    m.availableBytes = avail;
    m.source = "MemAvailable";
  }
  // A container's limit is lower than what the kernel reports for the machine.
  int64_t limit = fileNumber("/sys/fs/cgroup/memory.max");
  int64_t used = fileNumber("/sys/fs/cgroup/memory.current");
  if (limit <= 0) {
    limit = fileNumber("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    used = fileNumber("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  }
  if (limit > 0 && (m.totalBytes == 0 || limit < m.totalBytes)) {
    m.totalBytes = limit;
    const int64_t left = used >= 0 ? limit - used : limit;
    if (m.availableBytes == 0 || left < m.availableBytes) {
      m.availableBytes = left > 0 ? left : 0;
      m.source = "cgroup memory.max";
    }
  }
  return m;
}

namespace {
std::atomic<DeviceMemoryQuery> gDeviceMemory{nullptr};
}

void registerDeviceMemoryQuery(DeviceMemoryQuery query) { gDeviceMemory.store(query); }

bool deviceMemory(int index, int64_t& freeBytes, int64_t& totalBytes) {
  const DeviceMemoryQuery q = gDeviceMemory.load();
  return q != nullptr && q(index, &freeBytes, &totalBytes);
}

int64_t peakRssBytes() { return statusField("VmHWM"); }

void releaseFreedMemory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}
int64_t currentRssBytes() { return statusField("VmRSS"); }

int64_t parseMemorySize(const std::string& text, const std::string& key) {
  auto bad = [&] {
    return Error(key + ": expected a size such as 24G, 3.5GiB or 800M, got '" + text + "'");
  };
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) throw bad();
  double v = 0;
  try {
    v = std::stod(text.substr(0, i));
  } catch (const std::exception&) {
    throw bad();
  }
  std::string unit;
  for (size_t k = i; k < text.size(); ++k)
    if (!std::isspace(static_cast<unsigned char>(text[k]))) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(text[k])));
  double mult = 1;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") mult = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB") mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB") mult = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TB" || unit == "TIB") mult = 1024.0 * 1024 * 1024 * 1024;
  else throw bad();
  const double bytes = v * mult;
  if (!(bytes >= 1) || bytes > 9.0e18) throw Error(key + ": must be a positive size, got '" + text + "'");
  return static_cast<int64_t>(std::llround(bytes));
}

std::string formatMemory(int64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 4) v /= 1024.0, ++u;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace qs
