#include "core/runs/run_store.h"

#include <filesystem>

#include "core/runs/artifact_files.h"
#include "core/runs/float_blob.h"
#include "core/runs/process_owner.h"
#include "core/runs/schema.h"
#include "core/runs/sqlite_db.h"
#include "core/util/error.h"
#include "core/util/log.h"

namespace qs::runs {
namespace stdfs = std::filesystem;
namespace {

const char* const kRunColumns =
    "id, name, kind, status, status_message, created, finished, duration_s, model_path, model_fingerprint, "
    "config_yaml, tool_version, device, notes";

RunInfo readRun(const Statement& s) {
  RunInfo r;
  r.id = s.getInt(0);
  r.name = s.getText(1);
  r.kind = parseRunKind(s.getText(2));
  r.status = parseRunStatus(s.getText(3));
  r.statusMessage = s.getText(4);
  r.created = s.getText(5);
  r.finished = s.getText(6);
  r.durationS = s.getDouble(7);
  r.modelPath = s.getText(8);
  r.modelFingerprint = s.getText(9);
  r.configYaml = s.getText(10);
  r.toolVersion = s.getText(11);
  r.device = s.getText(12);
  r.notes = s.getText(13);
  return r;
}

// A read snapshot: the several SELECTs of one query see the same committed state even while a
// writer commits between them (WAL readers never block writers).
class ReadSnapshot {
 public:
  explicit ReadSnapshot(Db& db) : db_(db) { db_.exec("BEGIN DEFERRED"); }
  ~ReadSnapshot() {
    try {
      db_.exec("COMMIT");
    } catch (...) {
    }
  }

 private:
  Db& db_;
};

bool isUnder(const stdfs::path& p, const stdfs::path& dir) {
  auto rel = p.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != ".." && rel != ".";
}

}  // namespace

std::vector<std::string> removeExportedFiles(const std::string& baseDir, const std::vector<Artifact>& artifacts) {
  std::vector<std::string> removed;
  std::error_code ec;
  stdfs::path base = stdfs::absolute(baseDir, ec);
  stdfs::path exports = stdfs::weakly_canonical(base / "exports", ec);
  for (const auto& a : artifacts) {
    stdfs::path raw(a.path);
    stdfs::path p = stdfs::weakly_canonical(raw.is_absolute() ? raw : base / raw, ec);
    if (ec || !isUnder(p, exports) || !stdfs::exists(p, ec)) continue;
    stdfs::remove_all(p, ec);
    if (ec)
      log::warn(p.string() + ": could not remove artifact: " + ec.message());
    else
      removed.push_back(p.string());
  }
  return removed;
}

RunStore::RunStore(const std::string& path, RunStoreOptions options)
    : path_(path), db_(std::make_unique<Db>(path, options.busyTimeoutMs)) {
  migrate(*db_);
  if (options.markInterrupted) interrupted_ = markInterruptedRuns();
}

RunStore::~RunStore() = default;
RunStore::RunStore(RunStore&&) noexcept = default;
RunStore& RunStore::operator=(RunStore&&) noexcept = default;

std::string RunStore::baseDir() const {
  auto p = stdfs::absolute(path_).parent_path();
  return p.string();
}

int RunStore::schemaVersion() const { return schemaVersionOf(*db_); }

std::vector<int64_t> RunStore::markInterruptedRuns() {
  ProcessOwner self = currentProcess();
  struct Orphan {
    int64_t id;
    std::string why;
  };
  std::vector<Orphan> orphans;
  {
    auto s = db_->prepare("SELECT id, owner_pid, owner_host, owner_start FROM runs WHERE status = 'running'");
    while (s.step()) {
      ProcessOwner o{s.getInt(1), s.getText(2), s.getText(3)};
      if (s.isNull(1)) {
        orphans.push_back({s.getInt(0), "interrupted: no writer process recorded (run predates owner tracking)"});
      } else if (o.host == self.host && !isAlive(o)) {
        orphans.push_back({s.getInt(0), "interrupted: writer process " + std::to_string(o.pid) + " on " + o.host +
                                            " ended without finishing the run"});
      }
    }
  }
  std::vector<int64_t> ids;
  if (orphans.empty()) return ids;
  WriteTransaction tx(*db_);
  auto upd = db_->prepare(
      "UPDATE runs SET status = 'failed', status_message = ?, finished = ? WHERE id = ? AND status = 'running'");
  std::string now = utcNow();
  for (const auto& o : orphans) {
    upd.bind(1, o.why).bind(2, now).bind(3, o.id).run();
    if (db_->changes() > 0) ids.push_back(o.id);
    upd.reset();
  }
  tx.commit();
  for (auto id : ids) log::warn(path_ + ": run " + std::to_string(id) + " was interrupted; marked failed");
  return ids;
}

std::vector<RunInfo> RunStore::listRuns(const RunFilter& filter) const {
  std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs WHERE 1";
  if (!filter.kind.empty()) {
    parseRunKind(filter.kind);  // a typo in --kind is an error, not an empty list
    sql += " AND kind = ?";
  }
  if (!filter.status.empty()) {
    parseRunStatus(filter.status);
    sql += " AND status = ?";
  }
  if (!filter.nameContains.empty()) sql += " AND instr(name, ?) > 0";
  sql += " ORDER BY id DESC";
  if (filter.limit > 0) sql += " LIMIT " + std::to_string(filter.limit);
  auto s = db_->prepare(sql);
  int i = 1;
  if (!filter.kind.empty()) s.bind(i++, filter.kind);
  if (!filter.status.empty()) s.bind(i++, filter.status);
  if (!filter.nameContains.empty()) s.bind(i++, filter.nameContains);
  std::vector<RunInfo> out;
  while (s.step()) out.push_back(readRun(s));
  return out;
}

std::optional<RunInfo> RunStore::findRun(int64_t id) const {
  auto s = db_->prepare(std::string("SELECT ") + kRunColumns + " FROM runs WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return readRun(s);
}

RunInfo RunStore::getRun(int64_t id) const {
  auto r = findRun(id);
  if (!r) throw fileError(path_, "run " + std::to_string(id) + " not found (see `qscope runs list`)");
  return *r;
}

std::vector<SiteStat> RunStore::loadSiteStats(int64_t id, int layer, const std::string& site, bool withArrays) const {
  std::string sql =
      "SELECT id, layer, site, kind, channels, max_abs, kurtosis_mean, kurtosis_max, outlier_channels, extra_json "
      "FROM site_stats WHERE run_id = ?";
  if (layer >= 0) sql += " AND layer = ?";
  if (!site.empty()) sql += " AND site = ?";
  sql += " ORDER BY layer, id";
  auto s = db_->prepare(sql);
  int i = 1;
  s.bind(i++, id);
  if (layer >= 0) s.bind(i++, layer);
  if (!site.empty()) s.bind(i++, site);
  std::vector<SiteStat> out;
  std::vector<int64_t> statIds;
  while (s.step()) {
    SiteStat st;
    statIds.push_back(s.getInt(0));
    st.layer = static_cast<int>(s.getInt(1));
    st.site = s.getText(2);
    st.kind = s.getText(3);
    st.channels = s.getInt(4);
    st.maxAbs = s.getDouble(5);
    st.kurtosisMean = s.getDouble(6);
    st.kurtosisMax = s.getDouble(7);
    st.outlierChannels = s.getInt(8);
    st.extraJson = s.getText(9);
    out.push_back(std::move(st));
  }
  if (withArrays) {
    auto a = db_->prepare("SELECT name, data FROM site_arrays WHERE stat_id = ? ORDER BY rowid");
    for (size_t k = 0; k < out.size(); ++k) {
      a.bind(1, statIds[k]);
      while (a.step()) {
        std::string what = path_ + ": run " + std::to_string(id) + " layer " + std::to_string(out[k].layer) + " " +
                           out[k].site + " array '" + a.getText(0) + "'";
        out[k].arrays[a.getText(0)] = detail::blobToFloats(a.getBlob(1), what);
      }
      a.reset();
    }
  }
  return out;
}

RunRecord RunStore::loadRun(int64_t id, bool withArrays) const {
  ReadSnapshot snap(*db_);
  RunRecord r;
  r.info = getRun(id);
  {
    auto s = db_->prepare("SELECT key, value, protocol, unit, n, stderr FROM metrics WHERE run_id = ? ORDER BY key");
    s.bind(1, id);
    while (s.step())
      r.metrics.push_back({s.getText(0), s.getDouble(1), s.getText(2), s.getText(3), s.getInt(4), s.getDouble(5)});
  }
  r.siteStats = loadSiteStats(id, -1, "", withArrays);
  {
    auto s = db_->prepare(
        "SELECT layer, site, rel_error, seconds, bits, extra_json FROM layer_results WHERE run_id = ? "
        "ORDER BY layer, rowid");
    s.bind(1, id);
    while (s.step())
      r.layerResults.push_back({static_cast<int>(s.getInt(0)), s.getText(1), s.getDouble(2), s.getDouble(3),
                                s.getDouble(4), s.getText(5)});
  }
  {
    auto s = db_->prepare("SELECT kind, path, bytes, checksum FROM artifacts WHERE run_id = ? ORDER BY id");
    s.bind(1, id);
    while (s.step()) r.artifacts.push_back({s.getText(0), s.getText(1), s.getInt(2), s.getText(3)});
  }
  return r;
}

Comparison RunStore::compareRuns(const std::vector<int64_t>& ids) const {
  if (ids.size() < 2) throw Error("compare needs at least two run ids");
  std::vector<RunRecord> records;
  for (auto id : ids) records.push_back(loadRun(id, false));
  return compareRecords(records);
}

std::string RunStore::artifactPath(const Artifact& a) const {
  stdfs::path p(a.path);
  return p.is_absolute() ? p.string() : (stdfs::path(baseDir()) / p).lexically_normal().string();
}

std::vector<std::string> RunStore::deleteRun(int64_t id) {
  auto info = getRun(id);
  if (info.status == RunStatus::Running) {
    auto s = db_->prepare("SELECT owner_pid, owner_host, owner_start FROM runs WHERE id = ?");
    s.bind(1, id);
    if (s.step()) {
      ProcessOwner o{s.getInt(0), s.getText(1), s.getText(2)};
      if (!s.isNull(0) && (o.host != currentProcess().host || isAlive(o)))
        throw fileError(path_, "run " + std::to_string(id) + " is still running (process " + std::to_string(o.pid) +
                                   " on " + o.host + "); cancel it before deleting");
    }
  }
  std::vector<Artifact> artifacts;
  {
    auto s = db_->prepare("SELECT kind, path, bytes, checksum FROM artifacts WHERE run_id = ?");
    s.bind(1, id);
    while (s.step()) artifacts.push_back({s.getText(0), s.getText(1), s.getInt(2), s.getText(3)});
  }
  // Rows first: a crash between the two steps leaves stray files in exports/, never a run
  // whose artifacts are gone.
  {
    WriteTransaction tx(*db_);
    db_->prepare("DELETE FROM runs WHERE id = ?").bind(1, id).run();  // children cascade
    tx.commit();
  }
  return removeExportedFiles(baseDir(), artifacts);
}

void RunStore::renameRun(int64_t id, const std::string& name) {
  if (name.find_first_not_of(" \t\n") == std::string::npos)
    throw fileError(path_, "run " + std::to_string(id) + ": a run name must not be empty");
  getRun(id);  // "run N not found in <path>"
  WriteTransaction tx(*db_);
  db_->prepare("UPDATE runs SET name = ? WHERE id = ?").bind(1, name).bind(2, id).run();
  tx.commit();
}

void RunStore::addMetrics(int64_t id, const std::vector<Metric>& metrics) {
  getRun(id);  // "run N not found in <path>"
  WriteTransaction tx(*db_);
  insertMetrics(*db_, id, metrics);
  tx.commit();
}

std::string RunStore::integrityCheck() const {
  auto s = db_->prepare("PRAGMA integrity_check");
  std::string out;
  while (s.step()) out += (out.empty() ? "" : "\n") + s.getText(0);
  return out;
}

}  // namespace qs::runs
