// The run database schema and its forward migrations. A database records its version in
// schema_version; opening with newer code applies the missing migrations in one transaction,
// and opening a database newer than the code is an error (never a silent downgrade).
//
// Version history
//   1  runs, metrics, site_stats (+ site_arrays), layer_results, artifacts
//   2  runs.status_message and the owner columns (owner_pid, owner_host, owner_start) that let
//      a later open tell a live run from one whose process died; site_stats.extra_json;
//      indexes for listing and comparing
//   3  remote_jobs: jobs sent to another machine (a Slurm cluster), their scheduler state and the
//      run their bundle became (imported = 1 once, in the transaction that inserts the run)
//
// Site statistics layout: one site_stats row per (run, layer, site, kind) with the summary
// columns, and one site_arrays row per named per-channel array (float32 little-endian BLOB).
// A (stat, name, blob) layout rather than one column per statistic, so the statistics engine
// can add arrays (per-token absmax, histograms) without a migration.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qs::runs {

class Db;
struct Artifact;
struct LayerResult;
struct Metric;
struct SiteStat;

constexpr int kSchemaVersion = 3;

// Version recorded in the database; 0 for an empty file.
int schemaVersionOf(Db& db);
// Brings the database to kSchemaVersion. Throws qs::Error when it is newer than this code.
void migrate(Db& db);

// Inserts run `runId`'s metrics (a key recorded again keeps the last value), inside the caller's
// transaction: the one statement RunWriter and RunStore::addMetrics share.
void insertMetrics(Db& db, int64_t runId, const std::vector<Metric>& metrics);
// Inserts run `runId`'s site statistics (with their arrays), layer results and artifacts as given,
// inside the caller's transaction (RunWriter's batches, a remote job's imported run).
void insertRunRows(Db& db, int64_t runId, const std::vector<SiteStat>& stats, const std::vector<LayerResult>& results,
                   const std::vector<Artifact>& artifacts);

}  // namespace qs::runs
