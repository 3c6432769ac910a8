// Small filesystem helpers shared by readers and writers.
#pragma once
#include <string>
#include <utility>

namespace qs::fs {

// Whole file as a string; throws qs::Error naming the path.
std::string readText(const std::string& path);
// Writes to "<path>.tmp-<pid>" then renames over path, so readers never see a half-written file.
void writeAtomic(const std::string& path, const std::string& bytes);
bool exists(const std::string& path);
bool isDirectory(const std::string& path);
std::string join(const std::string& a, const std::string& b);

// A fresh folder "<stem>-<pid>-<n>" under `parent` (default: the system's temporary directory) for
// one job's scratch files. The job removes it when it ends, however it ends, short of being killed
// outright (SIGKILL, a second Ctrl-C); so first the folders "<stem>-<pid>-*" of processes that no
// longer exist are removed (a killed 7B quantize leaves gigabytes there). Returns the path.
std::string makeJobTempDir(const std::string& stem, const std::string& parent = "");

// A folder removed with its contents when this goes out of scope (however the job ends); an empty
// path owns nothing. Move-only.
class ScopedDir {
 public:
  ScopedDir() = default;
  explicit ScopedDir(std::string path) : path_(std::move(path)) {}
  ScopedDir(ScopedDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ScopedDir& operator=(ScopedDir&& o) noexcept;
  ScopedDir(const ScopedDir&) = delete;
  ScopedDir& operator=(const ScopedDir&) = delete;
  ~ScopedDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace qs::fs
