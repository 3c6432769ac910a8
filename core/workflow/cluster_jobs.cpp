#include "core/workflow/cluster_jobs.h"

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <thread>

#include <yaml-cpp/yaml.h>

#include "core/algo/quantize_config.h"
#include "core/cluster/slurm.h"
#include "core/config/yaml_helpers.h"
#include "core/runs/process_owner.h"
#include "core/runs/project.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/memory.h"
#include "core/util/subprocess.h"
#include "core/workflow/preflight.h"

namespace qs::workflow {
namespace stdfs = std::filesystem;
namespace {

std::string scalarText(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

// The quantize document of `base` with `entries` laid over it.
std::string withEntries(const std::vector<std::pair<std::string, YAML::Node>>& entries) {
  YAML::Node section(YAML::NodeType::Map);
  for (const auto& [k, v] : entries) section[k] = v;
  YAML::Node doc(YAML::NodeType::Map);
  doc["quantize"] = section;
  YAML::Emitter e;
  e << doc;
  return e.c_str();
}

// The qscope a job runs by default: this program when it is qscope, else the qscope beside it (the
// GUI, quantscope, is built next to it), else the one on PATH.
std::string defaultQscope() {
  std::error_code ec;
  const auto self = stdfs::read_symlink("/proc/self/exe", ec);
  if (ec) return "qscope";
  if (self.filename() == "qscope") return self.string();
  const auto sibling = self.parent_path() / "qscope";
  return stdfs::exists(sibling) ? sibling.string() : std::string("qscope");
}

std::string utcStamp() { return runs::utcNow("%Y%m%d-%H%M%S"); }

cluster::Slurm slurmFor(const ClusterOptions& o) { return cluster::Slurm(o.slurmBin, o.env); }

}  // namespace

std::vector<SweepConfig> loadSweepGrid(const std::string& gridPath, const std::string& projectDir) {
  const YAML::Node root = config::loadYamlFile(gridPath);
  config::requireMap(root, gridPath, "", false);
  config::rejectUnknownKeys(root, {"base", "quantize", "grid", "list"}, gridPath);

  algo::QuantizeConfig base;
  const runs::Project project = runs::Project::open(projectDir);
  if (!project.defaultConfig("quantize").empty()) base = algo::loadQuantizeConfig(project.defaultConfig("quantize"));
  if (const std::string b = config::readString(root, "base", gridPath); !b.empty()) {
    const std::string path = stdfs::path(b).is_absolute() ? b : (stdfs::path(gridPath).parent_path() / b).string();
    if (!fs::exists(path)) throw config::keyError(gridPath, "base", "file not found: " + path);
    base = algo::loadQuantizeConfig(path, base);
  }
  if (YAML::Node q = root["quantize"]; q && !q.IsNull()) {
    config::requireMap(q, gridPath, "quantize");
    YAML::Node doc(YAML::NodeType::Map);
    doc["quantize"] = q;
    YAML::Emitter e;
    e << doc;
    base = algo::parseQuantizeConfig(e.c_str(), gridPath, base);
  }

  // The grid's axes (key, values) in the order written, and the explicit list.
  std::vector<std::pair<std::string, std::vector<YAML::Node>>> axes;
  if (YAML::Node g = root["grid"]; g && !g.IsNull()) {
    config::requireMap(g, gridPath, "grid");
    for (const auto& kv : g) {
      const std::string key = kv.first.Scalar();
      std::vector<YAML::Node> values;
      if (kv.second.IsSequence()) {
        for (const auto& v : kv.second) values.push_back(v);
      } else {
        values.push_back(kv.second);
      }
      if (values.empty()) throw config::keyError(gridPath, "grid." + key, "needs at least one value");
      axes.emplace_back(key, values);
    }
  }
  std::vector<std::vector<std::pair<std::string, YAML::Node>>> listed;
  if (YAML::Node l = root["list"]; l && !l.IsNull()) {
    if (!l.IsSequence()) throw config::keyError(gridPath, "list", "expected a list of maps of quantize keys");
    for (size_t i = 0; i < l.size(); ++i) {
      config::requireMap(l[i], gridPath, "list[" + std::to_string(i) + "]", false);
      std::vector<std::pair<std::string, YAML::Node>> entry;
      for (const auto& kv : l[i]) entry.emplace_back(kv.first.Scalar(), kv.second);
      listed.push_back(entry);
    }
  }
  if (axes.empty() && listed.empty()) throw fileError(gridPath, "a sweep needs 'grid:' (values per key) or 'list:' (configs)");
  if (listed.empty()) listed.emplace_back();

  std::vector<SweepConfig> out;
  for (size_t li = 0; li < listed.size(); ++li) {
    size_t combos = 1;
    for (const auto& a : axes) combos *= a.second.size();
    for (size_t c = 0; c < combos; ++c) {
      std::vector<std::pair<std::string, YAML::Node>> entries = listed[li];
      size_t rest = c;
      // The last axis varies fastest, as nested loops written in the file's order would.
      std::vector<size_t> pick(axes.size());
      for (size_t a = axes.size(); a-- > 0;) {
        pick[a] = rest % axes[a].second.size();
        rest /= axes[a].second.size();
      }
      for (size_t a = 0; a < axes.size(); ++a) entries.emplace_back(axes[a].first, axes[a].second[pick[a]]);
      std::string values;
      for (const auto& [k, v] : entries) values += (values.empty() ? "" : " ") + k + "=" + scalarText(v);
      const std::string where = gridPath + " (config " + std::to_string(out.size() + 1) + ": " + values + ")";
      algo::QuantizeConfig cfg = algo::parseQuantizeConfig(withEntries(entries), where, base);
      try {
        cfg.validate();
      } catch (const qs::Error& e) {
        throw Error(where + ": " + e.what());
      }
      out.push_back({cfg.label(), values, algo::toYaml(cfg)});
    }
  }
  return out;
}

std::vector<std::string> loadArgs(const std::string& dataDir, const std::string& device, const std::string& dtype) {
  std::vector<std::string> a;
  if (!dataDir.empty()) a.insert(a.end(), {"--data-dir", stdfs::absolute(dataDir).string()});
  if (device != "cpu") a.insert(a.end(), {"--device", device});
  if (dtype != "float32") a.insert(a.end(), {"--dtype", dtype});
  return a;
}

std::string describeSync(int imported, int failed, int active) {
  return "imported " + std::to_string(imported) + " finished run(s), recorded " + std::to_string(failed) +
         " failed/cancelled job(s); " + std::to_string(active) + " still pending or running";
}

config::SlurmProfile resolveSlurmProfile(const std::string& projectDir, const ClusterOptions& o) {
  const runs::Project project = runs::Project::open(projectDir);
  const auto& profiles = project.config().slurm;
  config::SlurmProfile p;
  if (!o.profile.empty()) {
    auto it = profiles.find(o.profile);
    if (it == profiles.end()) {
      std::string known;
      for (const auto& [name, _] : profiles) known += (known.empty() ? "" : ", ") + name;
      throw fileError(project.projectFile(), "no Slurm profile '" + o.profile + "' under slurm: (" +
                                                 (known.empty() ? "the project has none" : "it has " + known) + ")");
    }
    p = it->second;
  } else if (auto it = profiles.find("default"); it != profiles.end()) {
    p = it->second;
  }
  const auto& v = o.overrides;
  auto take = [](std::string& to, const std::string& from) {
    if (!from.empty()) to = from;
  };
  take(p.partition, v.partition);
  take(p.account, v.account);
  take(p.qos, v.qos);
  take(p.gres, v.gres);
  take(p.mem, v.mem);
  take(p.time, v.time);
  take(p.setup, v.setup);
  take(p.qscope, v.qscope);
  if (v.gpus > 0) p.gpus = v.gpus;
  if (v.cpusPerTask > 0) p.cpusPerTask = v.cpusPerTask;
  if (v.arrayMax > 0) p.arrayMax = v.arrayMax;
  p.sbatch.insert(p.sbatch.end(), v.sbatch.begin(), v.sbatch.end());
  return p;
}

SubmittedGroup submitArray(const std::string& projectDir, const std::string& prefix, const std::vector<ArrayTask>& tasks,
                           const ClusterOptions& o, bool dryRun) {
  if (o.backend != "slurm") throw Error("backend '" + o.backend + "' does not submit jobs (use slurm)");
  if (tasks.empty()) throw Error("nothing to submit");
  const config::SlurmProfile profile = resolveSlurmProfile(projectDir, o);
  const std::string project = stdfs::absolute(projectDir).lexically_normal().string();
  std::string qscope = !o.qscope.empty() ? o.qscope : !profile.qscope.empty() ? profile.qscope : defaultQscope();

  SubmittedGroup g;
  const std::string incoming = fs::join(project, "incoming");
  g.group = prefix + "-" + utcStamp();
  for (int n = 2; fs::exists(fs::join(incoming, g.group)); ++n) g.group = prefix + "-" + utcStamp() + "-" + std::to_string(n);
  const std::string groupRel = "incoming/" + g.group;
  const std::string groupDir = fs::join(project, groupRel);

  cluster::BatchJob job;
  job.name = "qscope-" + g.group;
  job.workDir = project;
  job.logPattern = fs::join(project, groupRel + "/task-%a/job.log");
  for (size_t i = 0; i < tasks.size(); ++i) {
    const std::string task = groupRel + "/task-" + std::to_string(i);
    std::vector<std::string> argv = {qscope};
    for (std::string a : tasks[i].args) {
      for (size_t at; (at = a.find("{task}")) != std::string::npos;) a.replace(at, 6, task);
      argv.push_back(a);
    }
    argv.insert(argv.end(), {"--bundle", task});
    argv.insert(argv.end(), o.jobArgs.begin(), o.jobArgs.end());
    job.commands.push_back(proc::quoteCommand(argv));
    job.exitFiles.push_back(fs::join(project, task + "/exit-status"));
    runs::RemoteJob r;
    r.group = g.group;
    r.taskIndex = static_cast<int>(i);
    r.backend = "slurm";
    r.name = tasks[i].name;
    r.kind = tasks[i].kind;
    r.bundle = task;
    r.logPath = task + "/job.log";
    r.configYaml = tasks[i].configYaml;
    r.command = job.commands.back();
    r.state = runs::JobState::Pending;
    g.jobs.push_back(r);
  }
  const std::string script = cluster::batchScript(profile, job);
  if (dryRun) {
    g.script = script;
    return g;
  }
  if (!fs::exists(qscope) && !proc::onPath(qscope))
    throw Error("the jobs would run '" + qscope + "', which is not here; set slurm." +
                (o.profile.empty() ? std::string("default") : o.profile) + ".qscope in project.yaml or --qscope");

  // Files first (the tasks read them), then sbatch, then the ledger rows. A refusal removes the folder.
  try {
    for (size_t i = 0; i < tasks.size(); ++i) {
      const std::string taskDir = fs::join(project, g.jobs[i].bundle);
      stdfs::create_directories(taskDir);
      for (const auto& [name, content] : tasks[i].files) fs::writeAtomic(fs::join(taskDir, name), content);
    }
    g.script = fs::join(groupDir, "job.sh");
    fs::writeAtomic(g.script, script);
    stdfs::permissions(g.script, stdfs::perms::owner_exec, stdfs::perm_options::add);
    g.schedulerId = slurmFor(o).submit(g.script);
  } catch (...) {
    std::error_code ec;
    stdfs::remove_all(groupDir, ec);
    throw;
  }
  for (auto& j : g.jobs) j.schedulerId = g.schedulerId + "_" + std::to_string(j.taskIndex);
  try {
    runs::JobLedger ledger(project);
    const auto ids = ledger.add(g.jobs);
    for (size_t i = 0; i < ids.size(); ++i) g.jobs[i].id = ids[i];
  } catch (...) {
    try {
      slurmFor(o).cancel({g.schedulerId});
    } catch (const std::exception& e) {
      log::warn(std::string("could not cancel job ") + g.schedulerId + " after failing to record it: " + e.what());
    }
    throw;
  }
  return g;
}

// A config whose pre-flight peak exceeds the memory Slurm gives each task (--mem) is refused
// before anything is submitted: the task would only be killed for it on the node. Best effort: a
// config the coordinator cannot estimate (its data only on the nodes) is left to the node's own
// pre-flight.
void checkFitsTaskMemory(const std::string& projectDir, const std::vector<SweepConfig>& configs,
                         const config::SlurmProfile& profile) {
  if (profile.mem.empty() || profile.mem == "0") return;  // 0: all of the node's memory
  std::string mem = profile.mem;
  if (std::isdigit(static_cast<unsigned char>(mem.back()))) mem += "M";  // Slurm's default unit is megabytes
  const int64_t limit = parseMemorySize(mem, "slurm mem");
  for (size_t i = 0; i < configs.size(); ++i) {
    QuantizeJobOptions q;
    q.projectDir = projectDir;
    q.configYaml = configs[i].configYaml;
    q.exec.maxMemoryBytes = limit;
    QuantizePreflight pre;
    try {
      pre = preflightQuantize(q, /*probe=*/false);
    } catch (const Error& e) {
      log::debug("sweep config " + std::to_string(i) + ": no pre-flight here (" + e.what() + ")");
      continue;
    }
    if (!pre.fits || pre.peakBytes > limit) {
      std::string advice;
      for (const auto& a : pre.advice)  // the budget here is --mem, not --max-memory
        if (a.find("--max-memory") == std::string::npos) advice += (advice.empty() ? "" : "; ") + a;
      throw Error("sweep config " + std::to_string(i) + " (" + configs[i].values + ") needs about " +
                  formatMemory(pre.peakBytes) + ", more than the " + profile.mem +
                  " each Slurm task gets (mem); raise --mem" + (advice.empty() ? "" : " or: " + advice));
    }
  }
}

SubmittedGroup submitSweep(const std::string& projectDir, const std::vector<SweepConfig>& configs,
                           const ClusterOptions& o, bool dryRun) {
  if (configs.empty()) throw Error("sweep: no configs to run");
  if (o.backend == "slurm") checkFitsTaskMemory(projectDir, configs, resolveSlurmProfile(projectDir, o));
  const std::string project = stdfs::absolute(projectDir).lexically_normal().string();
  std::vector<ArrayTask> tasks;
  for (size_t i = 0; i < configs.size(); ++i) {
    ArrayTask t;
    t.name = configs[i].label;
    t.kind = "quantize";
    t.configYaml = configs[i].configYaml;
    t.files = {{"config.yaml", "# sweep config " + std::to_string(i) + ": " + configs[i].values + "\n" + configs[i].configYaml}};
    t.args = {"quantize", project, "--config", "{task}/config.yaml", "--no-progress"};
    tasks.push_back(t);
  }
  return submitArray(projectDir, "sweep", tasks, o, dryRun);
}

SyncResult waitForGroup(const std::string& projectDir, const ClusterOptions& o, const std::string& group,
                        double pollSeconds, jobs::Progress& progress) {
  bool cancelled = false;
  while (true) {
    SyncResult s = syncJobs(projectDir, o, group);
    const size_t total = s.jobs.size();
    int running = 0;
    for (const auto& j : s.jobs) running += j.state == runs::JobState::Running;
    const size_t ended = total - static_cast<size_t>(s.active);
    progress.update(total ? static_cast<double>(ended) / total : 1.0,
                    std::to_string(ended) + "/" + std::to_string(total) + " ended, " + std::to_string(running) +
                        " running");
    if (s.active == 0) return s;
    if (progress.cancelRequested() && !cancelled) {
      log::info("cancelling the Slurm jobs of " + group + " (scancel)");
      cancelJobs(projectDir, o, {}, group);
      cancelled = true;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(pollSeconds));
  }
}

SyncResult syncJobs(const std::string& projectDir, const ClusterOptions& o, const std::string& group) {
  SyncResult out;
  const std::string project = stdfs::absolute(projectDir).lexically_normal().string();
  runs::JobLedger ledger(project);
  const auto pending = ledger.list(group, /*pendingOnly=*/true);
  std::vector<std::string> ids;
  for (const auto& j : pending)
    if (j.backend == "slurm" && !j.schedulerId.empty()) ids.push_back(j.schedulerId);
  std::map<std::string, cluster::TaskStatus> states;
  if (!ids.empty()) states = slurmFor(o).query(ids);

  runs::RunStore store(fs::join(project, "runs.sqlite"));
  for (const auto& j : pending) {
    auto it = states.find(j.schedulerId);
    if (it != states.end()) {
      const auto& t = it->second;
      std::string message;
      if (runs::isTerminal(t.state) && t.state != runs::JobState::Completed && !t.reason.empty()) message = t.reason;
      ledger.update(j.id, t.state, t.node, t.elapsedS, message);
    } else if (runs::isTerminal(j.state)) {
      // already recorded as ended (an import that failed earlier is retried below)
    } else {
      // The scheduler no longer knows it: the exit status its task wrote says how it ended.
      const std::string exitFile = fs::join(project, j.bundle + "/exit-status");
      if (fs::exists(exitFile)) {
        std::string rc = fs::readText(exitFile);
        while (!rc.empty() && (rc.back() == '\n' || rc.back() == ' ')) rc.pop_back();
        ledger.update(j.id, rc == "0" ? runs::JobState::Completed : runs::JobState::Failed, "", NAN,
                      rc == "0" ? "" : "exit status " + rc);
      } else {
        ledger.update(j.id, runs::JobState::Lost, "", NAN,
                      "the scheduler no longer knows job " + j.schedulerId + " and its task left no exit status");
      }
    }
    const runs::RemoteJob now = ledger.get(j.id);
    if (!runs::isTerminal(now.state)) {
      ++out.active;
      continue;
    }
    const int64_t runId = ledger.importEnded(j.id);
    if (runId == 0) continue;  // another coordinator got there first
    if (store.getRun(runId).status == runs::RunStatus::Finished) ++out.imported;
    else ++out.failed;
  }
  out.jobs = ledger.list(group);
  // A group whose every task has been imported leaves nothing under incoming/ (its bundles went with
  // the imports; the batch script and Slurm's spare output go now).
  std::map<std::string, bool> groupDone;
  for (const auto& j : pending) groupDone[j.group] = true;
  for (const auto& j : ledger.list()) {
    auto it = groupDone.find(j.group);
    if (it != groupDone.end() && !j.imported) it->second = false;
  }
  for (const auto& [g, done] : groupDone) {
    if (!done) continue;
    std::error_code ec;
    stdfs::remove_all(fs::join(project, "incoming/" + g), ec);
  }
  return out;
}

std::vector<std::string> cancelJobs(const std::string& projectDir, const ClusterOptions& o,
                                    const std::vector<int64_t>& ids, const std::string& group) {
  runs::JobLedger ledger(stdfs::absolute(projectDir).lexically_normal().string());
  std::vector<std::string> scheduler;
  std::vector<runs::RemoteJob> jobs;
  for (int64_t id : ids) jobs.push_back(ledger.get(id));
  if (!group.empty())
    for (const auto& j : ledger.list(group, true)) jobs.push_back(j);
  for (const auto& j : jobs) {
    if (j.imported || runs::isTerminal(j.state)) continue;
    if (!j.schedulerId.empty()) scheduler.push_back(j.schedulerId);
  }
  if (!scheduler.empty()) slurmFor(o).cancel(scheduler);
  return scheduler;
}

std::vector<int64_t> runSweepLocal(const std::vector<SweepConfig>& configs, const QuantizeJobOptions& base,
                                   jobs::Progress& progress) {
  std::vector<int64_t> ids;
  for (size_t i = 0; i < configs.size(); ++i) {
    QuantizeJobOptions o = base;
    o.configYaml = configs[i].configYaml;
    o.configName = "sweep config " + std::to_string(i + 1) + " (" + configs[i].values + ")";
    const double n = static_cast<double>(configs.size());
    jobs::SubProgress sub(progress, i / n, (i + 1) / n);
    progress.update(i / n, "config " + std::to_string(i + 1) + "/" + std::to_string(configs.size()) + ": " +
                               configs[i].values);
    ids.push_back(runQuantize(o, sub).runId);
  }
  return ids;
}

namespace {

class LocalBackend : public ExecutionBackend {
 public:
  std::string name() const override { return "local"; }
  std::vector<int64_t> runQuantizeConfigs(const std::vector<SweepConfig>& configs, const QuantizeJobOptions& base,
                                          jobs::Progress& progress) override {
    return runSweepLocal(configs, base, progress);
  }
};

class SlurmBackend : public ExecutionBackend {
 public:
  SlurmBackend(ClusterOptions o, double poll, std::function<void(const std::string&)> note)
      : o_(std::move(o)), poll_(poll), note_(std::move(note)) {}
  std::string name() const override { return "slurm" + (o_.profile.empty() ? std::string() : " (profile " + o_.profile + ")"); }
  std::vector<int64_t> runQuantizeConfigs(const std::vector<SweepConfig>& configs, const QuantizeJobOptions& base,
                                          jobs::Progress& progress) override {
    ClusterOptions o = o_;
    // The load options of the local job, for every task.
    const auto load = loadArgs(base.dataDir, base.device, base.dtype);
    o.jobArgs.insert(o.jobArgs.end(), load.begin(), load.end());
    if (!base.taskDir.empty()) o.jobArgs.insert(o.jobArgs.end(), {"--task-dir", stdfs::absolute(base.taskDir).string()});
    const SubmittedGroup g = submitSweep(base.projectDir, configs, o);
    if (note_)
      note_("submitted Slurm job array " + g.schedulerId + " (" + std::to_string(g.jobs.size()) + " tasks) as " +
            g.group + "; logs under " + base.projectDir + "/incoming/" + g.group + "/");
    const SyncResult s = waitForGroup(base.projectDir, o, g.group, poll_, progress);
    std::vector<int64_t> ids(configs.size(), 0);
    for (const auto& j : s.jobs)
      if (j.taskIndex >= 0 && static_cast<size_t>(j.taskIndex) < ids.size()) ids[static_cast<size_t>(j.taskIndex)] = j.runId;
    return ids;
  }

 private:
  ClusterOptions o_;
  double poll_;
  std::function<void(const std::string&)> note_;
};

}  // namespace

std::unique_ptr<ExecutionBackend> makeExecutionBackend(const ClusterOptions& options, double pollSeconds,
                                                       std::function<void(const std::string&)> note) {
  if (options.backend == "local") return std::make_unique<LocalBackend>();
  if (options.backend == "slurm") return std::make_unique<SlurmBackend>(options, pollSeconds, std::move(note));
  throw Error("--backend: '" + options.backend + "' is not an execution backend (local, slurm)");
}

}  // namespace qs::workflow
