#include "core/runs/schema.h"

#include "core/runs/float_blob.h"
#include "core/runs/run_types.h"
#include "core/runs/sqlite_db.h"
#include "core/util/error.h"

namespace qs::runs {
namespace {

// migrations[i] takes a database from version i to i + 1. Never edit a released entry: add one.
const char* const kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (0);
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('analysis', 'quantize', 'eval', 'search', 'train')),
  status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'cancelled')),
  created TEXT NOT NULL,
  finished TEXT,
  duration_s REAL,
  model_path TEXT,
  model_fingerprint TEXT,
  config_yaml TEXT,
  tool_version TEXT,
  device TEXT,
  notes TEXT
);
CREATE TABLE metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value REAL,
  protocol TEXT,
  unit TEXT,
  n INTEGER,
  stderr REAL,
  PRIMARY KEY (run_id, key)
);
CREATE TABLE site_stats (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  layer INTEGER NOT NULL,
  site TEXT NOT NULL,
  kind TEXT NOT NULL,
  channels INTEGER NOT NULL,
  max_abs REAL,
  kurtosis_mean REAL,
  kurtosis_max REAL,
  outlier_channels INTEGER,
  UNIQUE (run_id, layer, site, kind)
);
CREATE TABLE site_arrays (
  stat_id INTEGER NOT NULL REFERENCES site_stats(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (stat_id, name)
);
CREATE TABLE layer_results (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  layer INTEGER NOT NULL,
  site TEXT NOT NULL,
  rel_error REAL,
  seconds REAL,
  bits REAL,
  extra_json TEXT,
  PRIMARY KEY (run_id, layer, site)
);
CREATE TABLE artifacts (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  path TEXT NOT NULL,
  bytes INTEGER,
  checksum TEXT
);
)sql",
    // 1 -> 2
    R"sql(
ALTER TABLE runs ADD COLUMN status_message TEXT;
ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
ALTER TABLE runs ADD COLUMN owner_host TEXT;
ALTER TABLE runs ADD COLUMN owner_start TEXT;
ALTER TABLE site_stats ADD COLUMN extra_json TEXT;
CREATE INDEX runs_by_kind ON runs (kind, id);
CREATE INDEX runs_by_status ON runs (status);
CREATE INDEX site_stats_by_run ON site_stats (run_id, layer, site);
CREATE INDEX artifacts_by_run ON artifacts (run_id);
)sql",
    // 2 -> 3: jobs sent to another machine (a Slurm cluster) and the bundles they return
    R"sql(
CREATE TABLE remote_jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_group TEXT NOT NULL,
  task_index INTEGER NOT NULL,
  backend TEXT NOT NULL,
  scheduler_id TEXT,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  bundle TEXT NOT NULL UNIQUE,
  log_path TEXT,
  config_yaml TEXT,
  command TEXT,
  state TEXT NOT NULL,
  node TEXT,
  submitted TEXT NOT NULL,
  ended TEXT,
  elapsed_s REAL,
  message TEXT,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  imported INTEGER NOT NULL DEFAULT 0,
  UNIQUE (job_group, task_index)
);
CREATE INDEX remote_jobs_by_state ON remote_jobs (imported, state);
)sql",
};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kSchemaVersion, "one migration per schema version");

bool hasVersionTable(Db& db) {
  auto s = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'");
  return s.step();
}

}  // namespace

int schemaVersionOf(Db& db) {
  if (!hasVersionTable(db)) {
    auto any = db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'");
    if (any.step() && any.getInt(0) > 0)
      throw fileError(db.path(), "not a QuantScope run database (it has tables but no schema_version)");
    return 0;
  }
  auto s = db.prepare("SELECT max(version) FROM schema_version");
  return s.step() ? static_cast<int>(s.getInt(0)) : 0;
}

void migrate(Db& db) {
  // Cheap check first, so a reader that finds the current version takes no write lock.
  if (schemaVersionOf(db) == kSchemaVersion) return;
  // Re-read under the write lock: two processes may open a fresh project at once.
  WriteTransaction tx(db);
  int version = schemaVersionOf(db);
  if (version > kSchemaVersion)
    throw fileError(db.path(), "run database has schema version " + std::to_string(version) +
                                   ", newer than this QuantScope understands (" + std::to_string(kSchemaVersion) +
                                   "); update QuantScope to open it");
  for (int v = version; v < kSchemaVersion; ++v) {
    db.exec(kMigrations[v]);
    db.prepare("UPDATE schema_version SET version = ?").bind(1, v + 1).run();
  }
  tx.commit();
}

void insertMetrics(Db& db, int64_t runId, const std::vector<Metric>& metrics) {
  if (metrics.empty()) return;
  auto s = db.prepare(
      "INSERT OR REPLACE INTO metrics (run_id, key, value, protocol, unit, n, stderr) VALUES (?, ?, ?, ?, ?, ?, ?)");
  for (const auto& m : metrics) {
    s.bind(1, runId).bind(2, m.key).bind(3, m.value).bindTextOrNull(4, m.protocol).bindTextOrNull(5, m.unit);
    if (m.n > 0) s.bind(6, m.n); else s.bindNull(6);
    s.bind(7, m.stdError).run();
    s.reset();
  }
}

void insertRunRows(Db& db, int64_t runId, const std::vector<SiteStat>& stats, const std::vector<LayerResult>& results,
                   const std::vector<Artifact>& artifacts) {
  if (!stats.empty()) {
    auto s = db.prepare(
        "INSERT INTO site_stats (run_id, layer, site, kind, channels, max_abs, kurtosis_mean, kurtosis_max, "
        "outlier_channels, extra_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    auto a = db.prepare("INSERT INTO site_arrays (stat_id, name, data) VALUES (?, ?, ?)");
    for (const auto& st : stats) {
      s.bind(1, runId).bind(2, st.layer).bind(3, st.site).bind(4, st.kind).bind(5, st.channels);
      s.bind(6, st.maxAbs).bind(7, st.kurtosisMean).bind(8, st.kurtosisMax).bind(9, st.outlierChannels);
      s.bindTextOrNull(10, st.extraJson);
      try {
        s.run();
      } catch (const Error& e) {
        // Usually the UNIQUE (run, layer, site, kind) constraint: say which statistics collided.
        throw Error(std::string(e.what()) + " (run " + std::to_string(runId) + ", layer " + std::to_string(st.layer) +
                    ", site '" + st.site + "', kind '" + st.kind + "')");
      }
      s.reset();
      const int64_t statId = db.lastInsertId();
      for (const auto& [name, values] : st.arrays) {
        auto blob = detail::floatsToBlob(values);
        a.bind(1, statId).bind(2, name).bindBlob(3, blob.data(), blob.size()).run();
        a.reset();
      }
    }
  }
  if (!results.empty()) {
    auto s = db.prepare(
        "INSERT OR REPLACE INTO layer_results (run_id, layer, site, rel_error, seconds, bits, extra_json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    for (const auto& r : results) {
      s.bind(1, runId).bind(2, r.layer).bind(3, r.site).bind(4, r.relError).bind(5, r.seconds).bind(6, r.bits);
      s.bindTextOrNull(7, r.extraJson).run();
      s.reset();
    }
  }
  if (!artifacts.empty()) {
    auto s = db.prepare("INSERT INTO artifacts (run_id, kind, path, bytes, checksum) VALUES (?, ?, ?, ?, ?)");
    for (const auto& x : artifacts) {
      s.bind(1, runId).bind(2, x.kind).bind(3, x.path).bind(4, x.bytes).bindTextOrNull(5, x.checksum).run();
      s.reset();
    }
  }
}

}  // namespace qs::runs
