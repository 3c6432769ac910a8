#include "core/util/fs.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/util/error.h"
#include "core/util/log.h"

namespace qs::fs {

std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!exists(path)) throw fileError(path, "file not found");
    throw fileError(path, "cannot read file");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeAtomic(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw fileError(path, std::string("cannot write: ") + std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw fileError(path, "write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    throw fileError(path, std::string("cannot rename temporary file: ") + std::strerror(e));
  }
}

bool exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

bool isDirectory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

std::string join(const std::string& a, const std::string& b) {
  return (std::filesystem::path(a) / b).string();
}

std::string makeJobTempDir(const std::string& stem, const std::string& parent) {
  namespace stdfs = std::filesystem;
  std::error_code ec;
  const stdfs::path base = parent.empty() ? stdfs::temp_directory_path(ec) : stdfs::path(parent);
  if (ec) throw Error("temporary directory: " + ec.message() + " (set TMPDIR to a writable folder)");
  const std::string prefix = stem + "-";
  for (stdfs::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0 || !it->is_directory()) continue;
    const std::string rest = name.substr(prefix.size());
    const size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789") != dash) continue;
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    std::error_code rm;
    const auto removed = stdfs::remove_all(it->path(), rm);
    if (!rm) log::info("removed " + it->path().string() + " (" + std::to_string(removed) +
                       " files), the scratch folder of a killed job (process " + std::to_string(pid) + ")");
  }
  static std::atomic<int> counter{0};
  const stdfs::path p = base / (prefix + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  stdfs::create_directories(p, ec);
  if (ec) throw fileError(p.string(), "cannot create the job's scratch folder: " + ec.message());
  return p.string();
}

ScopedDir& ScopedDir::operator=(ScopedDir&& o) noexcept {
  if (this != &o) {
    ScopedDir old(std::move(*this));
    path_ = std::move(o.path_);
    o.path_.clear();
  }
  return *this;
}

ScopedDir::~ScopedDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

}  // namespace qs::fs
