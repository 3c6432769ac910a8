#include "core/runs/remote_jobs.h"

#include <filesystem>
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

void JobLedger::setSchedulerId(int64_t id, const std::string& schedulerId) {
  Db& db = *impl_->db;
  WriteTransaction tx(db);
  db.prepare("UPDATE remote_jobs SET scheduler_id = ? WHERE id = ?").bind(1, schedulerId).bind(2, id).run();
  tx.commit();
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
  const RemoteJob job = get(id);
  if (job.imported) return 0;
  if (!isTerminal(job.state))
    throw Error("job " + std::to_string(id) + " (" + job.schedulerId + ") is still " + toString(job.state) +
                "; it is imported when it has ended");
  const stdfs::path project = stdfs::absolute(dir_);
  const stdfs::path bundle = project / job.bundle;
  const std::string bundleDb = (bundle / "runs.sqlite").string();
  const std::string logPath = job.logPath.empty() ? "" : (project / job.logPath).string();

  // What the bundle holds: its finished runs (complete by construction: a RunWriter's end is one
  // transaction), or the message of the run that did not finish.
  struct Found {
    int64_t id;
    std::string status, message;
  };
  std::vector<Found> found;
  if (fs::exists(bundleDb)) {
    try {
      RunStore b(bundleDb, RunStoreOptions{30000, false});  // migrates a bundle an older qscope wrote
      (void)b;
      Db bdb(bundleDb, 30000, false);
      auto s = bdb.prepare("SELECT id, status, coalesce(status_message, '') FROM runs ORDER BY id");
      while (s.step()) found.push_back({s.getInt(0), s.getText(1), s.getText(2)});
    } catch (const std::exception& e) {
      log::warn(bundleDb + ": unreadable, the job is recorded as failed: " + e.what());
      found.clear();
    }
  }
  bool anyFinished = false;
  for (const auto& f : found) anyFinished |= f.status == "finished";

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

  // Attach first: SQLite refuses ATTACH inside a transaction.
  struct Attached {
    Db& db;
    bool on = false;
    ~Attached() {
      if (on) try {
          db.exec("DETACH DATABASE b");
        } catch (...) {
        }
    }
  } attached{db};
  if (anyFinished) {
    db.prepare("ATTACH DATABASE ? AS b").bind(1, bundleDb).run();
    attached.on = true;
  }

  const std::string endedState = toString(job.state);
  int64_t firstRun = 0;
  try {
    WriteTransaction tx(db);
    {
      auto s = db.prepare("SELECT imported FROM remote_jobs WHERE id = ?");
      s.bind(1, id);
      if (!s.step() || s.getInt(0) != 0) return 0;  // another coordinator imported it
    }
    if (anyFinished) {
      for (const auto& f : found) {
        if (f.status != "finished") continue;
        db.prepare(
              "INSERT INTO runs (name, kind, status, created, finished, duration_s, model_path, model_fingerprint, "
              "config_yaml, tool_version, device, notes, status_message, owner_pid, owner_host, owner_start) "
              "SELECT name, kind, status, created, finished, duration_s, model_path, model_fingerprint, config_yaml, "
              "tool_version, device, notes, status_message, owner_pid, owner_host, owner_start FROM b.runs WHERE id = ?")
            .bind(1, f.id)
            .run();
        const int64_t runId = db.lastInsertId();
        if (firstRun == 0) firstRun = runId;
        db.prepare("INSERT INTO metrics (run_id, key, value, protocol, unit, n, stderr) SELECT ?, key, value, "
                   "protocol, unit, n, stderr FROM b.metrics WHERE run_id = ? ORDER BY rowid")
            .bind(1, runId).bind(2, f.id).run();
        db.prepare("INSERT INTO layer_results (run_id, layer, site, rel_error, seconds, bits, extra_json) SELECT ?, "
                   "layer, site, rel_error, seconds, bits, extra_json FROM b.layer_results WHERE run_id = ? ORDER BY rowid")
            .bind(1, runId).bind(2, f.id).run();
        {
          auto stats = db.prepare("SELECT id FROM b.site_stats WHERE run_id = ? ORDER BY id");
          stats.bind(1, f.id);
          std::vector<int64_t> statIds;
          while (stats.step()) statIds.push_back(stats.getInt(0));
          for (int64_t sid : statIds) {
            db.prepare("INSERT INTO site_stats (run_id, layer, site, kind, channels, max_abs, kurtosis_mean, "
                       "kurtosis_max, outlier_channels, extra_json) SELECT ?, layer, site, kind, channels, max_abs, "
                       "kurtosis_mean, kurtosis_max, outlier_channels, extra_json FROM b.site_stats WHERE id = ?")
                .bind(1, runId).bind(2, sid).run();
            db.prepare("INSERT INTO site_arrays (stat_id, name, data) SELECT ?, name, data FROM b.site_arrays "
                       "WHERE stat_id = ? ORDER BY rowid")
                .bind(1, db.lastInsertId()).bind(2, sid).run();
          }
        }
        // Files: the bundle's exports/run-<old>/ becomes exports/run-<new>/ (hard links; the bundle
        // keeps its copy until the commit), and the artifacts' paths follow.
        const std::string oldPrefix = "exports/run-" + std::to_string(f.id);
        const std::string newPrefix = "exports/run-" + std::to_string(runId);
        const stdfs::path from = bundle / oldPrefix, to = project / newPrefix;
        clearOrphan(to);
        if (stdfs::exists(from)) {
          linkTree(from, to);
          linked.emplace_back(from, to);
        }
        auto arts = db.prepare("SELECT kind, path, bytes, checksum FROM b.artifacts WHERE run_id = ? ORDER BY id");
        arts.bind(1, f.id);
        while (arts.step()) {
          std::string path = arts.getText(1);
          if (path.rfind(oldPrefix + "/", 0) == 0 || path == oldPrefix) path = newPrefix + path.substr(oldPrefix.size());
          else if (!stdfs::path(path).is_absolute()) path = (stdfs::path(job.bundle) / path).lexically_normal().string();
          db.prepare("INSERT INTO artifacts (run_id, kind, path, bytes, checksum) VALUES (?, ?, ?, ?, ?)")
              .bind(1, runId).bind(2, arts.getText(0)).bind(3, path).bind(4, arts.getInt(2))
              .bindTextOrNull(5, arts.getText(3)).run();
        }
        if (!logPath.empty() && fs::exists(logPath)) {
          if (!stdfs::exists(to)) {
            std::error_code ec;
            stdfs::create_directories(to, ec);
            linked.emplace_back(logPath, to);
          }
          linkTree(logPath, to / "job.log");
          db.prepare("INSERT INTO artifacts (run_id, kind, path, bytes) VALUES (?, 'log', ?, ?)")
              .bind(1, runId).bind(2, newPrefix + "/job.log")
              .bind(3, static_cast<int64_t>(stdfs::file_size(to / "job.log"))).run();
        }
      }
    } else {
      // No finished run: the job failed, was cancelled, timed out or lost its node. Its run says
      // so, with the bundle's own error where the job got far enough to write one, and the log.
      std::string why;
      for (const auto& f : found)
        if (!f.message.empty()) why = f.message;
      if (why.empty()) why = lastLine(logPath);
      std::string message = job.backend + " job " + job.schedulerId + " " + endedState;
      if (!job.message.empty()) message += " (" + job.message + ")";
      if (!why.empty()) message += ": " + why;
      const bool cancelled = job.state == JobState::Cancelled;
      db.prepare("INSERT INTO runs (name, kind, status, created, finished, config_yaml, tool_version, device, "
                 "status_message, owner_host) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)")
          .bind(1, job.name)
          .bind(2, job.kind)
          .bind(3, cancelled ? "cancelled" : "failed")
          .bind(4, job.submitted)
          .bind(5, utcNow())
          .bindTextOrNull(6, job.configYaml)
          .bind(7, job.backend)
          .bind(8, message)
          .bindTextOrNull(9, job.node)
          .run();
      firstRun = db.lastInsertId();
      if (!logPath.empty() && fs::exists(logPath)) {
        const std::string rel = "exports/run-" + std::to_string(firstRun);
        const stdfs::path to = project / rel;
        clearOrphan(to);
        std::error_code ec;
        stdfs::create_directories(to, ec);
        linkTree(logPath, to / "job.log");
        linked.emplace_back(logPath, to);
        db.prepare("INSERT INTO artifacts (run_id, kind, path, bytes) VALUES (?, 'log', ?, ?)")
            .bind(1, firstRun).bind(2, rel + "/job.log")
            .bind(3, static_cast<int64_t>(stdfs::file_size(to / "job.log"))).run();
      }
    }
    auto done = db.prepare("UPDATE remote_jobs SET imported = 1, run_id = ?, log_path = coalesce(?, log_path), "
                           "ended = coalesce(ended, ?) WHERE id = ? AND imported = 0");
    std::string newLog;
    {
      auto a = db.prepare("SELECT path FROM artifacts WHERE run_id = ? AND kind = 'log'");
      a.bind(1, firstRun);
      if (a.step()) newLog = a.getText(0);
    }
    done.bind(1, firstRun).bindTextOrNull(2, newLog).bind(3, utcNow()).bind(4, id).run();
    if (db.changes() != 1) throw Error("job " + std::to_string(id) + " was imported concurrently");
    tx.commit();
  } catch (...) {
    unlinkAll();
    throw;
  }
  // Committed: the bundle has become runs; its folder goes (a failure here only leaves files).
  std::error_code ec;
  stdfs::remove_all(bundle, ec);
  if (ec) log::warn(bundle.string() + ": imported, but the folder could not be removed: " + ec.message());
  return firstRun;
}

}  // namespace qs::runs
