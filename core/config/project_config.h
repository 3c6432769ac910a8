// project.yaml <-> ProjectConfig: what a QuantScope project folder says about itself (model,
// data, default q-configs). Paths are stored as written; core/runs/project.h resolves relative
// ones against the project folder.
//
// Header-only for the same reason as yaml_helpers.h: qs_runs opens projects without linking
// qs_config.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/config/yaml_helpers.h"

namespace qs::config {

// How jobs of this project are sent to a Slurm cluster (project.yaml `slurm: {PROFILE: {...}}`);
// each field becomes an #SBATCH line, flags of `qscope sweep --backend slurm` override them.
struct SlurmProfile {
  std::string partition, account, qos;
  std::string gres;                                  // "gpu:a100:1"
  int gpus = 0;                                      // --gpus; 0 = none asked
  int cpusPerTask = 0;                               // 0 = the partition's default
  std::string mem;                                   // "64G"
  std::string time;                                  // time limit, "04:00:00" or minutes
  int arrayMax = 0;                                  // array tasks running at once; 0 = no limit
  std::vector<std::string> sbatch;                   // further #SBATCH options ("--constraint=a100")
  std::string setup;                                 // shell lines run before qscope ("module load cuda/12.4")
  std::string qscope;                                // qscope on the nodes; "" = the path of the submitting binary
};

inline const std::vector<std::string>& slurmProfileKeys() {
  static const std::vector<std::string> keys = {"partition", "account", "qos",   "gres",  "gpus",  "cpus_per_task",
                                                "mem",       "time",    "array_max", "sbatch", "setup", "qscope"};
  return keys;
}

inline SlurmProfile parseSlurmProfile(const YAML::Node& n, const std::string& file, const std::string& prefix) {
  requireMap(n, file, prefix);
  rejectUnknownKeys(n, slurmProfileKeys(), file, prefix);
  SlurmProfile p;
  p.partition = readString(n, "partition", file, prefix);
  p.account = readString(n, "account", file, prefix);
  p.qos = readString(n, "qos", file, prefix);
  p.gres = readString(n, "gres", file, prefix);
  p.gpus = static_cast<int>(readInt(n, "gpus", file, prefix));
  p.cpusPerTask = static_cast<int>(readInt(n, "cpus_per_task", file, prefix));
  p.mem = readString(n, "mem", file, prefix);
  p.time = readString(n, "time", file, prefix);
  p.arrayMax = static_cast<int>(readInt(n, "array_max", file, prefix));
  p.sbatch = readStringList(n, "sbatch", file, prefix);
  p.setup = readString(n, "setup", file, prefix);
  p.qscope = readString(n, "qscope", file, prefix);
  if (p.gpus < 0) throw keyError(file, joinKey(prefix, "gpus"), "must be >= 0");
  if (p.cpusPerTask < 0) throw keyError(file, joinKey(prefix, "cpus_per_task"), "must be >= 0");
  if (p.arrayMax < 0) throw keyError(file, joinKey(prefix, "array_max"), "must be >= 0");
  for (size_t i = 0; i < p.sbatch.size(); ++i)
    if (p.sbatch[i].rfind("-", 0) != 0)
      throw keyError(file, joinKey(prefix, "sbatch") + "[" + std::to_string(i) + "]",
                     "expected an sbatch option such as --constraint=a100, got '" + p.sbatch[i] + "'");
  return p;
}

inline void emitSlurmProfile(YAML::Emitter& e, const SlurmProfile& p) {
  e << YAML::BeginMap;
  auto str = [&](const char* k, const std::string& v) {
    if (!v.empty()) e << YAML::Key << k << YAML::Value << v;
  };
  auto num = [&](const char* k, int v) {
    if (v != 0) e << YAML::Key << k << YAML::Value << v;
  };
  str("partition", p.partition);
  str("account", p.account);
  str("qos", p.qos);
  str("gres", p.gres);
  num("gpus", p.gpus);
  num("cpus_per_task", p.cpusPerTask);
  str("mem", p.mem);
  str("time", p.time);
  num("array_max", p.arrayMax);
  if (!p.sbatch.empty()) {
    e << YAML::Key << "sbatch" << YAML::Value << YAML::BeginSeq;
    for (const auto& x : p.sbatch) e << x;
    e << YAML::EndSeq;
  }
  if (!p.setup.empty()) {
    // A literal block always ends in a newline; a one-line setup stays a plain string so it round-trips.
    e << YAML::Key << "setup" << YAML::Value;
    if (p.setup.back() == '\n') e << YAML::Literal;
    e << p.setup;
  }
  str("qscope", p.qscope);
  e << YAML::EndMap;
}

struct ProjectConfig {
  std::string name;                                  // display name; defaults to the folder name
  std::string model;                                 // model folder or .gguf; relative to the project folder
  std::string dataDir;                               // folder holding text/ for named datasets; "" = default search
  std::vector<std::string> datasets;                 // evaluation/calibration datasets (names or paths)
  std::map<std::string, std::string> configs;        // default q-config per job kind ("quantize": "configs/w4.yaml")
  std::string notes;                                 // free text for people
  std::map<std::string, SlurmProfile> slurm;         // Slurm profiles by name ("default", "gpu")
};

// Keys project.yaml may hold, in the order they are written.
inline const std::vector<std::string>& projectConfigKeys() {
  static const std::vector<std::string> keys = {"name", "model", "data_dir", "datasets", "configs", "notes", "slurm"};
  return keys;
}

// Parses project.yaml text; `file` names it in messages. Unknown keys and a missing model are errors.
inline ProjectConfig parseProjectConfig(const std::string& text, const std::string& file) {
  YAML::Node root = parseYaml(text, file);
  if (root.IsNull()) throw fileError(file, "empty project file; it needs at least 'model: PATH'");
  requireMap(root, file, "", false);
  rejectUnknownKeys(root, projectConfigKeys(), file);
  ProjectConfig c;
  c.name = readString(root, "name", file);
  c.model = readString(root, "model", file, "", true);
  if (c.model.empty()) throw keyError(file, "model", "must not be empty");
  c.dataDir = readString(root, "data_dir", file);
  c.datasets = readStringList(root, "datasets", file);
  c.configs = readStringMap(root, "configs", file);
  c.notes = readString(root, "notes", file);
  if (YAML::Node sl = root["slurm"]; sl && !sl.IsNull()) {
    if (!sl.IsMap()) throw keyError(file, "slurm", "expected a map of profile names to Slurm options, got " + yamlTypeName(sl));
    for (const auto& kv : sl) {
      const std::string name = kv.first.Scalar();
      c.slurm[name] = parseSlurmProfile(kv.second, file, "slurm." + name);
    }
  }
  return c;
}

inline ProjectConfig loadProjectConfig(const std::string& path) { return parseProjectConfig(fs::readText(path), path); }

inline std::string emitProjectConfig(const ProjectConfig& c) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  if (!c.name.empty()) e << YAML::Key << "name" << YAML::Value << c.name;
  e << YAML::Key << "model" << YAML::Value << c.model;
  if (!c.dataDir.empty()) e << YAML::Key << "data_dir" << YAML::Value << c.dataDir;
  if (!c.datasets.empty()) {
    e << YAML::Key << "datasets" << YAML::Value << YAML::BeginSeq;
    for (const auto& d : c.datasets) e << d;
    e << YAML::EndSeq;
  }
  if (!c.configs.empty()) {
    e << YAML::Key << "configs" << YAML::Value << YAML::BeginMap;
    for (const auto& [k, v] : c.configs) e << YAML::Key << k << YAML::Value << v;
    e << YAML::EndMap;
  }
  if (!c.slurm.empty()) {
    e << YAML::Key << "slurm" << YAML::Value << YAML::BeginMap;
    for (const auto& [name, p] : c.slurm) {
      e << YAML::Key << name << YAML::Value;
      emitSlurmProfile(e, p);
    }
    e << YAML::EndMap;
  }
  if (!c.notes.empty()) {
    // A literal block reads best but always ends in a newline; other notes stay quoted so they round-trip.
    e << YAML::Key << "notes" << YAML::Value;
    if (c.notes.back() == '\n') e << YAML::Literal;
    e << c.notes;
  }
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace qs::config
