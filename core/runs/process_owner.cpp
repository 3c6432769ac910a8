#include "core/runs/process_owner.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <fstream>
#include <sstream>
#include <vector>

namespace qs::runs {
namespace {

// Fields of /proc/<pid>/stat after the "(comm)" field, which may itself contain spaces:
// [0] is the state, [19] the start time.
std::vector<std::string> statFields(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return {};
  auto close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream ss(line.substr(close + 1));
  std::vector<std::string> f;
  for (std::string t; ss >> t;) f.push_back(t);
  return f;
}

}  // namespace

ProcessOwner currentProcess() {
  ProcessOwner o;
  o.pid = static_cast<int64_t>(::getpid());
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) == 0) o.host = host;
  auto f = statFields(o.pid);
  if (f.size() > 19) o.start = f[19];
  return o;
}

bool isAlive(const ProcessOwner& o) {
  if (o.pid <= 0) return false;
  if (::kill(static_cast<pid_t>(o.pid), 0) != 0 && errno == ESRCH) return false;
  auto f = statFields(o.pid);
  if (f.empty()) return true;  // no /proc (not Linux): trust kill()
  if (f[0] == "Z" || f[0] == "X") return false;
  if (!o.start.empty() && f.size() > 19 && f[19] != o.start) return false;
  return true;
}

std::string utcNow(const char* format) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

}  // namespace qs::runs
