#include "core/util/fallback.h"

#include <mutex>
#include <set>

#include "core/util/log.h"

namespace qs::log {

bool fallbackOnce(const std::string& op, const std::string& device, const std::string& fallback) {
  static std::mutex mutex;
  static std::set<std::string> logged;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!logged.insert(op).second) return false;
  }
  info(op + ": no CUDA kernel registered; using " + fallback + " on " + device);
  return true;
}

}  // namespace qs::log
