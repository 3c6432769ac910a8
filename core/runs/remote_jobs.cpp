#include "core/runs/remote_jobs.h"

#include <filesystem>
#include <algorithm>
#include <map>
#include <memory>

#include "core/runs/process_owner.h"
#include "core/runs/run_store.h"
#include "core/runs/schema.h"
#include "core/runs/sqlite_db.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"

namespace qs::runs {
namespace stdfs = std::filesystem;
namespace {

const std::vector<std::pair<JobState, const char*>>& stateNames() {
  static const std::vector<std::pair<JobState, const char*>> names = {
      {JobState::Submitted, "submitted"}, {JobState::Pending, "pending"},     {JobState::Running, "running"},
      {JobState::Completed, "completed"}, {JobState::Failed, "failed"},       {JobState::Cancelled, "cancelled"},
      {JobState::Timeout, "timeout"},     {JobState::NodeFail, "node_fail"},  {JobState::OutOfMemory, "out_of_memory"},
      {JobState::Lost, "lost"}};
  return names;
}

constexpr const char* kColumns =
    "id, job_group, task_index, backend, scheduler_id, name, kind, bundle, log_path, config_yaml, command, state, "
    "node, submitted, ended, elapsed_s, message, run_id, imported";

RemoteJob readJob(Statement& s) {
  RemoteJob j;
  j.id = s.getInt(0);
  j.group = s.getText(1);
  j.taskIndex = static_cast<int>(s.getInt(2));
  j.backend = s.getText(3);
  j.schedulerId = s.getText(4);
  j.name = s.getText(5);
  j.kind = s.getText(6);
  j.bundle = s.getText(7);
  j.logPath = s.getText(8);
  j.configYaml = s.getText(9);
  j.command = s.getText(10);
  j.state = parseJobState(s.getText(11));
  j.node = s.getText(12);
  j.submitted = s.getText(13);
  j.ended = s.getText(14);
  j.elapsedS = s.isNull(15) ? NAN : s.getDouble(15);
  j.message = s.getText(16);
  j.runId = s.getInt(17);
  j.imported = s.getInt(18) != 0;
  return j;
}

// The last non-empty line of a log, for a failed job's message.
std::string lastLine(const std::string& path) {
  if (!fs::exists(path)) return "";
  std::string text;
  try {
    text = fs::readText(path);
  } catch (const std::exception&) {
    return "";
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  const size_t nl = text.find_last_of("\n\r");
  std::string line = nl == std::string::npos ? text : text.substr(nl + 1);
  if (line.size() > 400) line = line.substr(0, 400) + "...";
  return line;
}

// Hard links `from` (a file or a folder, recursively) at `to`; copies where linking is refused
// (another filesystem). The bundle keeps its files until the import has committed.
void linkTree(const stdfs::path& from, const stdfs::path& to) {
  std::error_code ec;
  if (stdfs::is_directory(from)) {
    stdfs::create_directories(to, ec);
    if (ec) throw fileError(to.string(), "cannot create: " + ec.message());
    for (const auto& e : stdfs::directory_iterator(from)) linkTree(e.path(), to / e.path().filename());
    return;
  }
  stdfs::create_hard_link(from, to, ec);
  if (ec) {
    ec.clear();
    stdfs::copy_file(from, to, stdfs::copy_options::overwrite_existing, ec);
    if (ec) throw fileError(to.string(), "cannot copy the job's file " + from.string() + ": " + ec.message());
  }
}

}  // namespace

std::string toString(JobState s) {
  for (const auto& [k, n] : stateNames())
    if (k == s) return n;
  return "lost";
}

JobState parseJobState(const std::string& s) {
  for (const auto& [k, n] : stateNames())
    if (s == n) return k;
  throw Error("unknown job state '" + s + "'");
}

bool isTerminal(JobState s) {
  return s != JobState::Submitted && s != JobState::Pending && s != JobState::Running;
}

struct JobLedger::Impl {
  std::unique_ptr<Db> db;
};

JobLedger::JobLedger(std::string projectDir) : dir_(std::move(projectDir)), impl_(new Impl) {
  RunStore store(fs::join(dir_, "runs.sqlite"));  // creates and migrates; marks interrupted local runs
  impl_->db = std::make_unique<Db>(fs::join(dir_, "runs.sqlite"), 30000);
}

JobLedger::~JobLedger() { delete impl_; }
JobLedger::JobLedger(JobLedger&& o) noexcept : dir_(std::move(o.dir_)), impl_(o.impl_) { o.impl_ = nullptr; }
JobLedger& JobLedger::operator=(JobLedger&& o) noexcept {
  std::swap(dir_, o.dir_);
  std::swap(impl_, o.impl_);
  return *this;
}

std::vector<int64_t> JobLedger::add(const std::vector<RemoteJob>& jobs) {
  Db& db = *impl_->db;
  std::vector<int64_t> ids;
  WriteTransaction tx(db);
  auto s = db.prepare(
      "INSERT INTO remote_jobs (job_group, task_index, backend, scheduler_id, name, kind, bundle, log_path, config_yaml, "
      "command, state, submitted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const auto& j : jobs) {
    {
      auto dup = db.prepare("SELECT 1 FROM remote_jobs WHERE job_group = ? AND task_index = ?");
      dup.bind(1, j.group).bind(2, j.taskIndex);
      if (dup.step())
        throw fileError(db.path(), "job group " + j.group + " already has task " + std::to_string(j.taskIndex));
    }
    s.bind(1, j.group)
        .bind(2, j.taskIndex)
        .bind(3, j.backend)
        .bindTextOrNull(4, j.schedulerId)
        .bind(5, j.name)
        .bind(6, j.kind)
        .bind(7, j.bundle)
        .bindTextOrNull(8, j.logPath)
        .bindTextOrNull(9, j.configYaml)
        .bindTextOrNull(10, j.command)
        .bind(11, toString(j.state))
        .bind(12, j.submitted.empty() ? utcNow() : j.submitted);
    s.run();
    s.reset();
    ids.push_back(db.lastInsertId());
  }
  tx.commit();
  return ids;
}

void JobLedger::update(int64_t id, JobState state, const std::string& node, double elapsedS, const std::string& message) {
  Db& db = *impl_->db;
  WriteTransaction tx(db);
  auto s = db.prepare(
      "UPDATE remote_jobs SET state = ?, node = coalesce(?, node), elapsed_s = coalesce(?, elapsed_s), "
      "message = coalesce(?, message), ended = CASE WHEN ? AND ended IS NULL THEN ? ELSE ended END "
      "WHERE id = ? AND imported = 0");
  s.bind(1, toString(state)).bindTextOrNull(2, node).bind(3, elapsedS).bindTextOrNull(4, message);
  s.bind(5, static_cast<int64_t>(isTerminal(state))).bind(6, utcNow()).bind(7, id).run();
  tx.commit();
}

std::vector<RemoteJob> JobLedger::list(const std::string& group, bool pendingOnly) const {
  std::string sql = std::string("SELECT ") + kColumns + " FROM remote_jobs WHERE (? = '' OR job_group = ?)";
  if (pendingOnly) sql += " AND imported = 0";
  sql += " ORDER BY id DESC";
  auto s = impl_->db->prepare(sql);
  s.bind(1, group).bind(2, group);
  std::vector<RemoteJob> out;
  while (s.step()) out.push_back(readJob(s));
  return out;
}

RemoteJob JobLedger::get(int64_t id) const {
  auto s = impl_->db->prepare(std::string("SELECT ") + kColumns + " FROM remote_jobs WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) throw fileError(impl_->db->path(), "job " + std::to_string(id) + " not found");
  return readJob(s);
}

std::vector<std::string> JobLedger::groups() const {
  auto s = impl_->db->prepare("SELECT job_group FROM remote_jobs GROUP BY job_group ORDER BY max(id) DESC");
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.getText(0));
  return out;
}

int64_t JobLedger::importEnded(int64_t id) {
  Db& db = *impl_->db;
  if (get(id).imported) return 0;
  const stdfs::path project = stdfs::absolute(dir_);

  std::vector<std::pair<stdfs::path, stdfs::path>> linked;  // removed again when the import rolls back
  auto unlinkAll = [&] {
    std::error_code ec;
    for (auto& [from, to] : linked) stdfs::remove_all(to, ec);
  };
  // A folder left under exports/ by an import that was killed before its commit: the id was just
  // handed to this transaction's run, so no committed run owns that folder.
  auto clearOrphan = [&](const stdfs::path& dir) {
    std::error_code ec;
    if (stdfs::exists(dir)) {
      log::warn(dir.string() + ": left by an interrupted import; replaced");
      stdfs::remove_all(dir, ec);
    }
  };

  int64_t firstRun = 0;
  stdfs::path bundle;
  try {
    // The project's write lock first: a coordinator reads and removes a bundle only while it holds
    // it, so two coordinators never both read one (the second finds it imported and stops).
    WriteTransaction tx(db);
    const RemoteJob job = get(id);
    if (job.imported) return 0;
    if (!isTerminal(job.state))
      throw Error("job " + std::to_string(id) + " (" + job.schedulerId + ") is still " + toString(job.state) +
                  "; it is imported when it has ended");
    bundle = project / job.bundle;
    const std::string bundleDb = (bundle / "runs.sqlite").string();
    const std::string logPath = job.logPath.empty() ? "" : (project / job.logPath).string();

    // What the bundle holds: its finished runs (complete by construction: a RunWriter's end is one
    // transaction), or the message of the run that did not finish.
    std::vector<RunRecord> finished;
    std::string why;
    if (fs::exists(bundleDb)) {
      try {
        RunStore b(bundleDb, RunStoreOptions{30000, false});  // migrates a bundle an older qscope wrote
        auto runs = b.listRuns();
        std::reverse(runs.begin(), runs.end());  // oldest first
        for (const auto& r : runs) {
          if (r.status == RunStatus::Finished) finished.push_back(b.loadRun(r.id, true));
          else if (!r.statusMessage.empty()) why = r.statusMessage;
        }
      } catch (const std::exception& e) {
        log::warn(bundleDb + ": unreadable, the job is recorded as failed: " + e.what());
        finished.clear();
      }
    }
    auto linkLog = [&](int64_t runId, const std::string& rel) {
      if (logPath.empty() || !fs::exists(logPath)) return;
      const stdfs::path to = project / rel;
      if (!stdfs::exists(to)) {
        std::error_code ec;
        stdfs::create_directories(to, ec);
        linked.emplace_back(logPath, to);
      }
      linkTree(logPath, to / "job.log");
      insertRunRows(db, runId, {}, {},
                    {{"log", rel + "/job.log", static_cast<int64_t>(stdfs::file_size(to / "job.log")), ""}});
    };

    for (auto& rec : finished) {
      const RunInfo& r = rec.info;
      db.prepare(
            "INSERT INTO runs (name, kind, status, created, finished, duration_s, model_path, model_fingerprint, "
            "config_yaml, tool_version, device, notes, status_message) VALUES (?, ?, 'finished', ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)")
          .bind(1, r.name)
          .bind(2, toString(r.kind))
          .bind(3, r.created)
          .bindTextOrNull(4, r.finished)
          .bind(5, r.durationS)
          .bindTextOrNull(6, r.modelPath)
          .bindTextOrNull(7, r.modelFingerprint)
          .bindTextOrNull(8, r.configYaml)
          .bindTextOrNull(9, r.toolVersion)
          .bindTextOrNull(10, r.device)
          .bindTextOrNull(11, r.notes)
          .bindTextOrNull(12, r.statusMessage)
          .run();
      const int64_t runId = db.lastInsertId();
      if (firstRun == 0) firstRun = runId;
      // Files: the bundle's exports/run-<old>/ becomes exports/run-<new>/ (hard links; the bundle
      // keeps its copy until the commit), and the artifacts' paths follow.
      const std::string oldPrefix = "exports/run-" + std::to_string(r.id);
      const std::string newPrefix = "exports/run-" + std::to_string(runId);
      const stdfs::path from = bundle / oldPrefix, to = project / newPrefix;
      clearOrphan(to);
      if (stdfs::exists(from)) {
        linkTree(from, to);
        linked.emplace_back(from, to);
      }
      for (auto& a : rec.artifacts) {
        if (a.path.rfind(oldPrefix + "/", 0) == 0 || a.path == oldPrefix) a.path = newPrefix + a.path.substr(oldPrefix.size());
        else if (!stdfs::path(a.path).is_absolute()) a.path = (stdfs::path(job.bundle) / a.path).lexically_normal().string();
      }
      insertMetrics(db, runId, rec.metrics);
      insertRunRows(db, runId, rec.siteStats, rec.layerResults, rec.artifacts);
      linkLog(runId, newPrefix);
    }
    if (finished.empty()) {
      // No finished run: the job failed, was cancelled, timed out or lost its node. Its run says
      // so, with the bundle's own error where the job got far enough to write one, and the log.
      if (why.empty()) why = lastLine(logPath);
      std::string message = job.backend + " job " + job.schedulerId + " " + toString(job.state);
      if (!job.message.empty()) message += " (" + job.message + ")";
      if (!why.empty()) message += ": " + why;
      db.prepare("INSERT INTO runs (name, kind, status, created, finished, config_yaml, device, status_message) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
          .bind(1, job.name)
          .bind(2, job.kind)
          .bind(3, job.state == JobState::Cancelled ? "cancelled" : "failed")
          .bind(4, job.submitted)
          .bind(5, utcNow())
          .bindTextOrNull(6, job.configYaml)
          .bind(7, job.backend)
          .bind(8, message)
          .run();
      firstRun = db.lastInsertId();
      const std::string rel = "exports/run-" + std::to_string(firstRun);
      clearOrphan(project / rel);
      linkLog(firstRun, rel);
    }
    std::string newLog;
    {
      auto a = db.prepare("SELECT path FROM artifacts WHERE run_id = ? AND kind = 'log'");
      a.bind(1, firstRun);
      if (a.step()) newLog = a.getText(0);
    }
    db.prepare("UPDATE remote_jobs SET imported = 1, run_id = ?, log_path = coalesce(?, log_path), "
               "ended = coalesce(ended, ?) WHERE id = ? AND imported = 0")
        .bind(1, firstRun)
        .bindTextOrNull(2, newLog)
        .bind(3, utcNow())
        .bind(4, id)
        .run();
    if (db.changes() != 1) throw Error("job " + std::to_string(id) + " was imported concurrently");
    // After the commit the bundle goes; a coordinator that takes the lock next finds the job
    // imported and never opens it. (A failure to remove only leaves files.)
    tx.commit();
  } catch (...) {
    unlinkAll();
    throw;
  }
  std::error_code ec;
  stdfs::remove_all(bundle, ec);
  if (ec) log::warn(bundle.string() + ": imported, but the folder could not be removed: " + ec.message());
  return firstRun;
}

}  // namespace qs::runs
