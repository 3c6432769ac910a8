// A QuantScope project is a folder:
//   project.yaml   model, data and default configs (core/config/project_config.h)
//   runs.sqlite    every run (run_store.h)
//   exports/       quantized models and other files runs produce
// Relative paths in project.yaml resolve against the project folder, so a project and its
// model can move together.
#pragma once
#include <string>

#include "core/config/project_config.h"
#include "core/runs/run_store.h"

namespace qs::runs {

class Project {
 public:
  // Creates the folder (if needed), project.yaml, runs.sqlite and exports/. `model` is a path
  // as the user typed it (relative to the current directory); it must exist and is stored
  // relative to the project folder. `name` defaults to the folder name. Refuses to overwrite an
  // existing project.yaml.
  static Project init(const std::string& dir, const std::string& model, const std::string& name = "");
  // Reads and validates project.yaml. A folder without one is an error that suggests
  // `qscope project init`.
  static Project open(const std::string& dir);
  static bool isProject(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const config::ProjectConfig& config() const { return config_; }
  std::string name() const { return config_.name; }
  std::string projectFile() const;
  // runs.sqlite and exports/ of the project, or of its bundle (below).
  std::string runsPath() const;
  std::string exportsDir() const;
  // A job running away from the coordinator (a Slurm task on another node) records its run in a
  // bundle of its own instead of the project's runs.sqlite: <bundleDir>/runs.sqlite and
  // <bundleDir>/exports/, with the model, data and default configs still the project's. The
  // coordinator imports finished bundles once (core/runs/remote_jobs.h), so runs.sqlite on a
  // shared filesystem never has writers on several nodes. Creates the folder.
  void redirectStore(const std::string& bundleDir);
  const std::string& bundleDir() const { return bundleDir_; }
  // project.yaml's model / data_dir resolved against the project folder.
  std::string modelPath() const { return resolve(config_.model); }
  std::string dataDir() const { return config_.dataDir.empty() ? "" : resolve(config_.dataDir); }
  // Default q-config file for a job kind, resolved; "" when project.yaml names none.
  std::string defaultConfig(const std::string& kind) const;
  std::string resolve(const std::string& path) const;

  RunStore openStore(RunStoreOptions options = {}) const { return RunStore(runsPath(), options); }

 private:
  Project(std::string dir, config::ProjectConfig c) : dir_(std::move(dir)), config_(std::move(c)) {}
  std::string dir_;
  config::ProjectConfig config_;
  std::string bundleDir_;
};

}  // namespace qs::runs
