#include <chrono>
#include <filesystem>

#include "core/runs/artifact_files.h"
#include "core/runs/fingerprint.h"
#include "core/runs/float_blob.h"
#include "core/runs/process_owner.h"
#include "core/runs/run_store.h"
#include "core/runs/schema.h"
#include "core/runs/sqlite_db.h"
#include "core/util/error.h"
#include "core/util/log.h"

namespace qs::runs {
namespace stdfs = std::filesystem;
namespace {

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

RunWriter::RunWriter(const std::string& dbPath, const NewRun& run, RunWriterOptions options)
    : dbPath_(dbPath), db_(std::make_unique<Db>(dbPath, options.busyTimeoutMs)), options_(options) {
  migrate(*db_);
  ProcessOwner owner = currentProcess();
  WriteTransaction tx(*db_);
  auto s = db_->prepare(
      "INSERT INTO runs (name, kind, status, created, model_path, model_fingerprint, config_yaml, tool_version, "
      "device, notes, owner_pid, owner_host, owner_start) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, run.name)
      .bind(2, toString(run.kind))
      .bind(3, utcNow())
      .bindTextOrNull(4, run.modelPath)
      .bindTextOrNull(5, run.modelFingerprint)
      .bindTextOrNull(6, run.configYaml)
      .bindTextOrNull(7, run.toolVersion)
      .bindTextOrNull(8, run.device)
      .bindTextOrNull(9, run.notes)
      .bind(10, owner.pid)
      .bind(11, owner.host)
      .bindTextOrNull(12, owner.start);
  s.run();
  id_ = db_->lastInsertId();
  tx.commit();
  startSeconds_ = nowSeconds();
}

RunWriter::~RunWriter() {
  if (finished_ || !db_) return;
  try {
    finish(RunStatus::Failed, "abandoned: the job ended without finishing its run");
  } catch (const std::exception& e) {
    // The owner check on the next open will mark it interrupted instead.
    log::warn(dbPath_ + ": run " + std::to_string(id_) + " could not be marked failed: " + e.what());
  }
}

void RunWriter::addMetric(const Metric& m) {
  metrics_.push_back(m);
  maybeFlush();
}

void RunWriter::addSiteStat(const SiteStat& s) {
  stats_.push_back(s);
  maybeFlush();
}

void RunWriter::addLayerResult(const LayerResult& r) {
  results_.push_back(r);
  maybeFlush();
}

void RunWriter::addArtifact(const Artifact& a) {
  Artifact x = a;
  std::error_code ec;
  stdfs::path base = stdfs::absolute(dbPath_, ec).parent_path();
  stdfs::path abs = stdfs::absolute(x.path, ec).lexically_normal();
  auto rel = abs.lexically_relative(base);
  if (!rel.empty() && *rel.begin() != "..") x.path = rel.generic_string();
  if (x.checksum.empty() && stdfs::exists(abs, ec)) {
    auto sum = checksumPath(abs.string());
    x.checksum = sum.checksum;
    if (x.bytes == 0) x.bytes = sum.bytes;
  }
  artifacts_.push_back(std::move(x));
  maybeFlush();
}

void RunWriter::maybeFlush() {
  size_t n = metrics_.size() + stats_.size() + results_.size() + artifacts_.size();
  if (n >= static_cast<size_t>(std::max(1, options_.batchRows))) flush();
}

void RunWriter::flush() {
  if (finished_) throw Error("run " + std::to_string(id_) + " is already finished; nothing more can be added");
  if (metrics_.empty() && stats_.empty() && results_.empty() && artifacts_.empty()) return;
  WriteTransaction tx(*db_);
  writePending();
  tx.commit();
}

// Inserts the buffered rows inside the caller's transaction; clears the buffers only once the
// statements succeeded, so a failed commit can be retried.
void RunWriter::writePending() {
  insertMetrics(*db_, id_, metrics_);  // a metric recorded twice (re-evaluated) keeps the last value
  insertRunRows(*db_, id_, stats_, results_, artifacts_);
  metrics_.clear();
  stats_.clear();
  results_.clear();
  artifacts_.clear();
}

void RunWriter::finish(RunStatus status, const std::string& message) {
  if (finished_) return;
  if (status == RunStatus::Running) throw Error("RunWriter::finish: the final status cannot be 'running'");
  double duration = nowSeconds() - startSeconds_;
  if (status == RunStatus::Failed) {
    // A failed run must still get its status even when the buffered rows are what failed.
    try {
      flush();
    } catch (const std::exception& e) {
      log::warn(dbPath_ + ": run " + std::to_string(id_) + ": dropping unwritable rows: " + e.what());
      metrics_.clear();
      stats_.clear();
      results_.clear();
      artifacts_.clear();
    }
  }
  std::vector<Artifact> doomed;
  WriteTransaction tx(*db_);
  if (status == RunStatus::Cancelled) {
    // No half-written run: everything but the run row goes, in the transaction that sets the status.
    doomed = artifacts_;
    auto s = db_->prepare("SELECT kind, path, bytes, checksum FROM artifacts WHERE run_id = ?");
    s.bind(1, id_);
    while (s.step()) doomed.push_back({s.getText(0), s.getText(1), s.getInt(2), s.getText(3)});
    for (const char* table : {"metrics", "site_stats", "layer_results", "artifacts"})
      db_->prepare(std::string("DELETE FROM ") + table + " WHERE run_id = ?").bind(1, id_).run();
    metrics_.clear();
    stats_.clear();
    results_.clear();
    artifacts_.clear();
  } else {
    writePending();
  }
  auto s = db_->prepare(
      "UPDATE runs SET status = ?, status_message = ?, finished = ?, duration_s = ?, owner_pid = NULL, "
      "owner_host = NULL, owner_start = NULL WHERE id = ?");
  s.bind(1, toString(status)).bindTextOrNull(2, message).bind(3, utcNow()).bind(4, duration).bind(5, id_).run();
  tx.commit();
  finished_ = true;
  if (!doomed.empty()) removeExportedFiles(stdfs::absolute(dbPath_).parent_path().string(), doomed);
}

}  // namespace qs::runs
