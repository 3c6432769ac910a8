// The run store: every run of a project (analysis, quantization, evaluation, search) in one
// SQLite file, runs.sqlite. Jobs record through a RunWriter; the CLI and the GUI read through
// a RunStore. Schema and migrations: schema.h.
//
// Visibility. A RunWriter commits its rows in batches while the run is `running`, so the GUI
// can draw live progress (per-layer results appearing as layers finish). A run's rows are
// therefore visible before it is complete; readers that want only complete results filter on
// status == finished (RunFilter::status). The end of a run is one transaction: the last batch
// and the status change commit together.
//   finished   all rows present
//   cancelled  the run row stays (so the user sees what was cancelled) but its metrics, site
//              statistics, layer results and artifacts — rows and files under exports/ — are
//              deleted in the same transaction that sets the status: no half-written run
//   failed     rows written so far stay, for diagnosis; status_message says why. A run whose
//              writer process died (crash, kill -9, power cut) is found `running` with a dead
//              owner when the store is next opened, and marked failed ("interrupted ...")
//
// Threads. A RunStore or RunWriter is one SQLite connection: use each from one thread at a
// time. Any number of readers and writers (threads or processes) may share the file: WAL mode
// lets readers proceed while a writer commits, and a busy timeout makes writers queue.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/runs/run_compare.h"
#include "core/runs/run_types.h"

namespace qs::runs {

class Db;

struct RunStoreOptions {
  int busyTimeoutMs = 30000;     // how long a statement waits for another connection's lock
  bool markInterrupted = true;   // on open, mark runs whose writer process is gone as failed
};

class RunStore {
 public:
  // Opens or creates the database at `path`, migrates it to kSchemaVersion and (by default)
  // marks interrupted runs failed. Throws qs::Error naming the file.
  explicit RunStore(const std::string& path, RunStoreOptions options = {});
  ~RunStore();
  RunStore(RunStore&&) noexcept;
  RunStore& operator=(RunStore&&) noexcept;

  const std::string& path() const { return path_; }
  // Folder holding the database; relative artifact paths resolve against it.
  std::string baseDir() const;
  int schemaVersion() const;
  // Ids this open marked failed because their writer was gone.
  const std::vector<int64_t>& interruptedOnOpen() const { return interrupted_; }

  // Newest first.
  std::vector<RunInfo> listRuns(const RunFilter& filter = {}) const;
  std::optional<RunInfo> findRun(int64_t id) const;
  // Throws qs::Error ("run 7 not found in <path>") when absent.
  RunInfo getRun(int64_t id) const;
  // The whole run; per-channel arrays only when `withArrays` (they can be megabytes).
  RunRecord loadRun(int64_t id, bool withArrays = true) const;
  // Site statistics of a run, optionally of one layer (layer >= 0) and/or one site.
  std::vector<SiteStat> loadSiteStats(int64_t id, int layer = -1, const std::string& site = "",
                                      bool withArrays = true) const;
  // Config diff, metric table and per-layer series of the runs, in the order given.
  Comparison compareRuns(const std::vector<int64_t>& ids) const;

  // Deletes a run with all its rows, and its artifact files that lie under <baseDir>/exports
  // (nothing outside the project is ever removed). Refuses a run still being written by a
  // live process. Returns the files/folders removed.
  std::vector<std::string> deleteRun(int64_t id);
  // Sets a run's display name (any status; the name is a label, not part of its results).
  // Throws qs::Error when the run does not exist or the name is empty.
  void renameRun(int64_t id, const std::string& name);
  // Adds (or replaces, by key) metrics of a run measured after it finished, such as an export's
  // load-back parity ("export.gguf.kl_mean"). Throws qs::Error when the run does not exist.
  void addMetrics(int64_t id, const std::vector<Metric>& metrics);

  // Marks `running` runs whose owner process is gone as failed; returns their ids. Runs owned
  // by another host are left alone (their process cannot be checked from here).
  std::vector<int64_t> markInterruptedRuns();

  // Absolute path of an artifact (stored paths may be relative to baseDir()).
  std::string artifactPath(const Artifact& a) const;
  // PRAGMA integrity_check: "ok" or SQLite's description of the damage.
  std::string integrityCheck() const;

 private:
  std::string path_;
  std::unique_ptr<Db> db_;
  std::vector<int64_t> interrupted_;
};

struct RunWriterOptions {
  int batchRows = 256;           // rows buffered before an automatic flush (one transaction)
  int busyTimeoutMs = 30000;     // how long a commit waits for readers' checkpoints / other writers
};

// Records one run. Construction inserts the run (status running, owner = this process);
// add*() buffer rows, flush() commits them in one transaction (also done automatically every
// batchRows rows); finish() commits the rest with the final status. A writer destroyed
// without finish() marks its run failed. Not copyable; one thread at a time.
class RunWriter {
 public:
  RunWriter(const std::string& dbPath, const NewRun& run, RunWriterOptions options = {});
  ~RunWriter();
  RunWriter(const RunWriter&) = delete;
  RunWriter& operator=(const RunWriter&) = delete;

  int64_t id() const { return id_; }
  void addMetric(const Metric& m);
  void addSiteStat(const SiteStat& s);
  void addLayerResult(const LayerResult& r);
  // Paths inside the database's folder are stored relative to it. bytes/checksum are computed
  // from the file when left empty.
  void addArtifact(const Artifact& a);
  void flush();

  // Final status: Finished, Failed (message says why) or Cancelled (rows and exported files
  // deleted). Throws qs::Error for Running.
  void finish(RunStatus status = RunStatus::Finished, const std::string& message = "");
  void cancel() { finish(RunStatus::Cancelled); }
  void fail(const std::string& message) { finish(RunStatus::Failed, message); }
  bool isFinished() const { return finished_; }

 private:
  void maybeFlush();
  void writePending();

  std::string dbPath_;
  std::unique_ptr<Db> db_;
  RunWriterOptions options_;
  int64_t id_ = 0;
  double startSeconds_ = 0;
  bool finished_ = false;
  std::vector<Metric> metrics_;
  std::vector<SiteStat> stats_;
  std::vector<LayerResult> results_;
  std::vector<Artifact> artifacts_;
};

}  // namespace qs::runs
