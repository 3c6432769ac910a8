#include "core/runs/project.h"

#include <filesystem>

#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::runs {
namespace stdfs = std::filesystem;
namespace {
constexpr const char* kProjectFile = "project.yaml";

std::string folderName(const std::string& dir) {
  auto p = stdfs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}
}  // namespace

bool Project::isProject(const std::string& dir) { return fs::exists(fs::join(dir, kProjectFile)); }

Project Project::init(const std::string& dir, const std::string& model, const std::string& name) {
  std::string file = fs::join(dir, kProjectFile);
  if (fs::exists(file)) throw fileError(file, "a project already exists here; not overwriting it");
  if (model.empty()) throw Error("project init: --model is required");
  if (!fs::exists(model)) throw fileError(model, "model not found (give a model folder or a .gguf file)");
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  if (ec) throw fileError(dir, "cannot create the project folder: " + ec.message());

  config::ProjectConfig c;
  c.name = name.empty() ? folderName(dir) : name;
  stdfs::path m(model);
  if (m.is_absolute()) {
    c.model = m.lexically_normal().string();
  } else {
    auto rel = stdfs::absolute(m).lexically_normal().lexically_relative(stdfs::absolute(dir).lexically_normal());
    c.model = rel.empty() ? stdfs::absolute(m).string() : rel.generic_string();
  }
  c.datasets = {"wikitext2"};

  stdfs::create_directories(fs::join(dir, "exports"), ec);
  if (ec) throw fileError(fs::join(dir, "exports"), "cannot create: " + ec.message());
  Project p(dir, c);
  p.openStore();  // creates runs.sqlite at the current schema
  fs::writeAtomic(file, "# QuantScope project (see projects/README.md)\n" + config::emitProjectConfig(c));
  return p;
}

Project Project::open(const std::string& dir) {
  if (!fs::isDirectory(dir)) throw fileError(dir, "project folder not found");
  std::string file = fs::join(dir, kProjectFile);
  if (!fs::exists(file))
    throw fileError(dir, "not a QuantScope project folder (no project.yaml); create one with "
                         "`qscope project init " + dir + " --model MODEL`");
  auto c = config::loadProjectConfig(file);
  if (c.name.empty()) c.name = folderName(dir);
  return Project(dir, c);
}

std::string Project::projectFile() const { return fs::join(dir_, kProjectFile); }
std::string Project::runsPath() const { return fs::join(bundleDir_.empty() ? dir_ : bundleDir_, "runs.sqlite"); }
std::string Project::exportsDir() const { return fs::join(bundleDir_.empty() ? dir_ : bundleDir_, "exports"); }

void Project::redirectStore(const std::string& bundleDir) {
  std::error_code ec;
  stdfs::create_directories(fs::join(bundleDir, "exports"), ec);
  if (ec) throw fileError(bundleDir, "cannot create the job's bundle folder: " + ec.message());
  bundleDir_ = bundleDir;
}

std::string Project::resolve(const std::string& path) const {
  if (path.empty() || stdfs::path(path).is_absolute()) return path;
  return (stdfs::path(dir_) / path).lexically_normal().string();
}

std::string Project::defaultConfig(const std::string& kind) const {
  auto it = config_.configs.find(kind);
  return it == config_.configs.end() ? "" : resolve(it->second);
}

}  // namespace qs::runs
