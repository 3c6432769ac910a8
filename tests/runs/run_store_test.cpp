// The run store: schema and migrations, writer/reader round trip (with float32 blobs), the
// visibility rules of running/cancelled/failed runs, deletion and run comparison.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/runs/fingerprint.h"
#include "core/runs/run_store.h"
#include "core/runs/schema.h"
#include "core/runs/sqlite_db.h"
#include "core/util/error.h"
#include "tests/support/test_paths.h"

using namespace qs::runs;

namespace {

std::string dbIn(const std::string& tag) { return qs::test::tempDir(tag) + "/runs.sqlite"; }

NewRun analysisRun(const std::string& name, int samples) {
  NewRun r;
  r.name = name;
  r.kind = RunKind::Analysis;
  r.modelPath = "models/stories260K.gguf";
  r.modelFingerprint = "fnv1a64:0123456789abcdef";
  r.configYaml = "calibration:\n  dataset: wikitext2\n  samples: " + std::to_string(samples) +
                 "\n  seqlen: 512\nsites: [q_proj, fc1]\n";
  r.toolVersion = "0.1.0";
  r.device = "cpu";
  return r;
}

SiteStat stat(int layer, const std::string& site, int channels, float scale) {
  SiteStat s;
  s.layer = layer;
  s.site = site;
  s.kind = "input";
  s.channels = channels;
  s.maxAbs = 10.0 * scale;
  s.kurtosisMean = 3.5;
  s.kurtosisMax = 40.0 * scale;
  s.outlierChannels = 2;
  s.extraJson = R"({"top_tokens":[{"id":13,"text":"\n","absmax":9.5}]})";
  std::vector<float> mn(channels), mx(channels);
  for (int c = 0; c < channels; ++c) {
    mn[c] = -scale * (c + 0.25f);
    mx[c] = scale * (c + 0.5f);
  }
  s.arrays["min"] = mn;
  s.arrays["max"] = mx;
  return s;
}

int64_t writeFinishedRun(const std::string& db, const std::string& name, int samples, float scale) {
  RunWriter w(db, analysisRun(name, samples));
  w.addMetric({"ppl.wikitext2", 10.0 * scale, "gptq-nonoverlapping seqlen=512", "", 40, 0.1});
  w.addMetric({"seconds", 2.0, "", "s", 0, NAN});
  for (int l = 0; l < 2; ++l) {
    w.addSiteStat(stat(l, "q_proj", 8, scale * (l + 1)));
    w.addSiteStat(stat(l, "fc1", 8, scale));
    w.addLayerResult({l, "q_proj", 0.01 * scale, 0.5, 4.0, R"({"damp":0.01})"});
  }
  w.finish();
  return w.id();
}

int64_t count(const std::string& db, const std::string& sql) {
  Db d(db, 1000);
  auto s = d.prepare(sql);
  return s.step() ? s.getInt(0) : -1;
}

}  // namespace

TEST(RunStore, FreshDatabaseIsAtCurrentSchemaInWalMode) {
  auto db = dbIn("fresh");
  RunStore store(db);
  EXPECT_EQ(store.schemaVersion(), kSchemaVersion);
  EXPECT_EQ(store.integrityCheck(), "ok");
  Db raw(db, 1000);
  auto s = raw.prepare("PRAGMA journal_mode");
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.getText(0), "wal");
  EXPECT_TRUE(store.listRuns().empty());
}

TEST(RunStore, MigratesVersion1DatabaseMadeByHand) {
  auto db = dbIn("v1");
  {
    // The v1 layout as released: no owner columns, no status_message, no extra_json.
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    const char* v1 = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('analysis','quantize','eval','search','train')),
  status TEXT NOT NULL CHECK (status IN ('running','finished','failed','cancelled')),
  created TEXT NOT NULL, finished TEXT, duration_s REAL, model_path TEXT, model_fingerprint TEXT,
  config_yaml TEXT, tool_version TEXT, device TEXT, notes TEXT);
CREATE TABLE metrics (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL,
  value REAL, protocol TEXT, unit TEXT, n INTEGER, stderr REAL, PRIMARY KEY (run_id, key));
CREATE TABLE site_stats (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  layer INTEGER NOT NULL, site TEXT NOT NULL, kind TEXT NOT NULL, channels INTEGER NOT NULL, max_abs REAL,
  kurtosis_mean REAL, kurtosis_max REAL, outlier_channels INTEGER, UNIQUE (run_id, layer, site, kind));
CREATE TABLE site_arrays (stat_id INTEGER NOT NULL REFERENCES site_stats(id) ON DELETE CASCADE,
  name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (stat_id, name));
CREATE TABLE layer_results (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, layer INTEGER NOT NULL,
  site TEXT NOT NULL, rel_error REAL, seconds REAL, bits REAL, extra_json TEXT, PRIMARY KEY (run_id, layer, site));
CREATE TABLE artifacts (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  kind TEXT NOT NULL, path TEXT NOT NULL, bytes INTEGER, checksum TEXT);
INSERT INTO runs (name, kind, status, created, finished, duration_s, config_yaml)
  VALUES ('old analysis', 'analysis', 'finished', '2024-01-01T00:00:00Z', '2024-01-01T00:01:00Z', 60, 'samples: 64');
INSERT INTO runs (name, kind, status, created) VALUES ('old crashed', 'quantize', 'running', '2024-01-02T00:00:00Z');
INSERT INTO metrics VALUES (1, 'ppl.wikitext2', 12.5, 'gptq-nonoverlapping', '', 10, NULL);
INSERT INTO site_stats (run_id, layer, site, kind, channels, max_abs) VALUES (1, 0, 'q_proj', 'input', 2, 3.0);
INSERT INTO site_arrays VALUES (1, 'max', x'0000803F00000040');
)sql";
    ASSERT_EQ(sqlite3_exec(h, v1, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(h);
    sqlite3_close(h);
  }
  RunStore store(db);
  EXPECT_EQ(store.schemaVersion(), kSchemaVersion);
  EXPECT_EQ(store.integrityCheck(), "ok");
  auto old = store.loadRun(1);
  EXPECT_EQ(old.info.name, "old analysis");
  EXPECT_EQ(old.info.status, RunStatus::Finished);
  ASSERT_EQ(old.metrics.size(), 1u);
  EXPECT_DOUBLE_EQ(old.metrics[0].value, 12.5);
  ASSERT_EQ(old.siteStats.size(), 1u);
  EXPECT_EQ(old.siteStats[0].arrays.at("max"), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_TRUE(old.siteStats[0].extraJson.empty());  // new column, NULL for old rows
  // A v1 run left running has no owner to check: it can only be an interrupted one.
  EXPECT_EQ(store.interruptedOnOpen(), std::vector<int64_t>{2});
  auto crashed = store.getRun(2);
  EXPECT_EQ(crashed.status, RunStatus::Failed);
  EXPECT_NE(crashed.statusMessage.find("interrupted"), std::string::npos);
  // New columns are usable after the migration.
  int64_t id = writeFinishedRun(db, "new", 128, 1.0f);
  EXPECT_EQ(store.loadRun(id).siteStats[0].extraJson.substr(0, 12), "{\"top_tokens");
}

TEST(RunStore, RefusesDatabaseNewerThanTheCode) {
  auto db = dbIn("newer");
  { RunStore s(db); }
  {
    Db raw(db, 1000);
    raw.exec("UPDATE schema_version SET version = 99");
  }
  try {
    RunStore s(db);
    FAIL() << "opened a newer database";
  } catch (const qs::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(db), std::string::npos) << m;
    EXPECT_NE(m.find("schema version 99"), std::string::npos) << m;
  }
}

TEST(RunStore, RejectsForeignSqliteFile) {
  auto db = dbIn("foreign");
  {
    Db raw(db, 1000);
    raw.exec("CREATE TABLE t (x)");
  }
  EXPECT_THROW(RunStore s(db), qs::Error);
}

TEST(RunStore, WriterReaderRoundTripWithBlobs) {
  auto db = dbIn("roundtrip");
  int64_t id = writeFinishedRun(db, "analysis 128", 128, 1.0f);
  RunStore store(db);
  auto r = store.loadRun(id);
  EXPECT_EQ(r.info.name, "analysis 128");
  EXPECT_EQ(r.info.kind, RunKind::Analysis);
  EXPECT_EQ(r.info.status, RunStatus::Finished);
  EXPECT_FALSE(r.info.created.empty());
  EXPECT_FALSE(r.info.finished.empty());
  EXPECT_GE(r.info.durationS, 0.0);
  EXPECT_EQ(r.info.modelFingerprint, "fnv1a64:0123456789abcdef");
  EXPECT_NE(r.info.configYaml.find("samples: 128"), std::string::npos);
  ASSERT_EQ(r.metrics.size(), 2u);
  EXPECT_EQ(r.metrics[0].key, "ppl.wikitext2");
  EXPECT_DOUBLE_EQ(r.metrics[0].value, 10.0);
  EXPECT_EQ(r.metrics[0].n, 40);
  EXPECT_DOUBLE_EQ(r.metrics[0].stdError, 0.1);
  EXPECT_TRUE(std::isnan(r.metrics[1].stdError));
  EXPECT_EQ(r.metrics[1].unit, "s");
  ASSERT_EQ(r.siteStats.size(), 4u);
  auto expected = stat(1, "q_proj", 8, 2.0f);
  const SiteStat* got = nullptr;
  for (auto& s : r.siteStats)
    if (s.layer == 1 && s.site == "q_proj") got = &s;
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->channels, 8);
  EXPECT_DOUBLE_EQ(got->maxAbs, expected.maxAbs);
  EXPECT_DOUBLE_EQ(got->kurtosisMax, expected.kurtosisMax);
  EXPECT_EQ(got->outlierChannels, 2);
  EXPECT_EQ(got->extraJson, expected.extraJson);
  EXPECT_EQ(got->arrays, expected.arrays);  // bit-exact float32
  ASSERT_EQ(r.layerResults.size(), 2u);
  EXPECT_DOUBLE_EQ(r.layerResults[1].relError, 0.01);
  EXPECT_EQ(r.layerResults[0].extraJson, R"({"damp":0.01})");

  auto noArrays = store.loadRun(id, false);
  EXPECT_TRUE(noArrays.siteStats[0].arrays.empty());
  auto one = store.loadSiteStats(id, 1, "fc1");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].arrays.at("max").size(), 8u);
}

TEST(RunStore, DuplicateSiteStatNamesTheSite) {
  auto db = dbIn("dup");
  RunWriter w(db, analysisRun("dup", 1));
  w.addSiteStat(stat(3, "fc2", 4, 1.0f));
  w.addSiteStat(stat(3, "fc2", 4, 1.0f));
  try {
    w.flush();
    FAIL();
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 3, site 'fc2'"), std::string::npos) << e.what();
  }
}

TEST(RunStore, RowsOfARunningRunAreVisibleForLiveProgress) {
  auto db = dbIn("live");
  RunWriterOptions opts;
  opts.batchRows = 1000;
  RunWriter w(db, analysisRun("live", 8), opts);
  w.addLayerResult({0, "q_proj", 0.1, 0.2, 4, ""});
  RunStore store(db);
  EXPECT_EQ(store.getRun(w.id()).status, RunStatus::Running);  // our own live process: not interrupted
  EXPECT_TRUE(store.interruptedOnOpen().empty());
  EXPECT_TRUE(store.loadRun(w.id()).layerResults.empty());  // buffered, not committed yet
  w.flush();
  EXPECT_EQ(store.loadRun(w.id()).layerResults.size(), 1u);
  RunFilter finishedOnly;
  finishedOnly.status = "finished";
  EXPECT_TRUE(store.listRuns(finishedOnly).empty());
  w.finish();
  EXPECT_EQ(store.listRuns(finishedOnly).size(), 1u);
}

TEST(RunStore, CancelLeavesNoPartialRowsOrExports) {
  auto dir = qs::test::tempDir("cancel");
  std::string db = dir + "/runs.sqlite";
  std::filesystem::create_directories(dir + "/exports/w4");
  std::ofstream(dir + "/exports/w4/model.safetensors") << "partial";
  std::ofstream(dir + "/user-file.txt") << "keep me";
  int64_t id;
  {
    RunWriterOptions opts;
    opts.batchRows = 2;  // force some rows to be committed before the cancel
    RunWriter w(db, analysisRun("to cancel", 8), opts);
    id = w.id();
    for (int l = 0; l < 5; ++l) w.addSiteStat(stat(l, "q_proj", 4, 1.0f));
    w.addArtifact({"export", dir + "/exports/w4", 0, ""});
    w.addArtifact({"log", dir + "/user-file.txt", 0, ""});
    w.flush();
    EXPECT_GT(count(db, "SELECT count(*) FROM site_stats"), 0);
    w.cancel();
  }
  RunStore store(db);
  auto r = store.loadRun(id);
  EXPECT_EQ(r.info.status, RunStatus::Cancelled);
  EXPECT_TRUE(r.siteStats.empty());
  EXPECT_TRUE(r.artifacts.empty());
  EXPECT_EQ(count(db, "SELECT count(*) FROM site_arrays"), 0);
  EXPECT_FALSE(std::filesystem::exists(dir + "/exports/w4"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/user-file.txt"));  // outside exports/: never removed
}

TEST(RunStore, AbandonedWriterMarksRunFailed) {
  auto db = dbIn("abandon");
  int64_t id;
  {
    RunWriter w(db, analysisRun("abandoned", 8));
    id = w.id();
    w.addMetric({"x", 1.0, "", "", 0, NAN});
  }
  RunStore store(db);
  auto r = store.loadRun(id);
  EXPECT_EQ(r.info.status, RunStatus::Failed);
  EXPECT_NE(r.info.statusMessage.find("abandoned"), std::string::npos);
  EXPECT_EQ(r.metrics.size(), 1u);  // kept for diagnosis
}

TEST(RunStore, ListFiltersNewestFirst) {
  auto db = dbIn("list");
  writeFinishedRun(db, "alpha", 1, 1.0f);
  NewRun q = analysisRun("beta w4", 1);
  q.kind = RunKind::Quantize;
  { RunWriter w(db, q); w.finish(); }
  writeFinishedRun(db, "gamma", 1, 1.0f);
  RunStore store(db);
  auto all = store.listRuns();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].name, "gamma");
  EXPECT_EQ(all[2].name, "alpha");
  RunFilter f;
  f.kind = "quantize";
  ASSERT_EQ(store.listRuns(f).size(), 1u);
  EXPECT_EQ(store.listRuns(f)[0].name, "beta w4");
  f = {};
  f.nameContains = "mm";
  EXPECT_EQ(store.listRuns(f).size(), 1u);
  f = {};
  f.limit = 2;
  EXPECT_EQ(store.listRuns(f).size(), 2u);
  f = {};
  f.kind = "quantise";
  EXPECT_THROW(store.listRuns(f), qs::Error);
  EXPECT_THROW(store.getRun(42), qs::Error);
}

TEST(RunStore, DeleteRemovesRowsAndExportsOnly) {
  auto dir = qs::test::tempDir("delete");
  std::string db = dir + "/runs.sqlite";
  std::filesystem::create_directories(dir + "/exports");
  std::ofstream(dir + "/exports/run.log") << "log";
  std::ofstream(dir + "/outside.txt") << "x";
  int64_t keep = writeFinishedRun(db, "keep", 1, 1.0f);
  int64_t gone;
  {
    RunWriter w(db, analysisRun("gone", 1));
    w.addSiteStat(stat(0, "q_proj", 4, 1.0f));
    w.addArtifact({"log", dir + "/exports/run.log", 0, ""});
    w.addArtifact({"note", dir + "/outside.txt", 0, ""});
    w.finish();
    gone = w.id();
  }
  RunStore store(db);
  auto rec = store.loadRun(gone);
  ASSERT_EQ(rec.artifacts.size(), 2u);
  EXPECT_EQ(rec.artifacts[0].path, "exports/run.log");  // stored relative to the project
  EXPECT_EQ(rec.artifacts[0].bytes, 3);
  EXPECT_EQ(rec.artifacts[0].checksum.rfind("fnv1a64:", 0), 0u);
  auto removed = store.deleteRun(gone);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(dir + "/exports/run.log"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/outside.txt"));
  EXPECT_FALSE(store.findRun(gone));
  EXPECT_TRUE(store.findRun(keep));
  EXPECT_EQ(count(db, "SELECT count(*) FROM site_stats WHERE run_id = " + std::to_string(gone)), 0);
  EXPECT_EQ(count(db, "SELECT count(*) FROM site_arrays"), 4 * 2);  // only the kept run's
}

TEST(RunStore, DeleteRefusesALiveRun) {
  auto db = dbIn("deletelive");
  RunWriter w(db, analysisRun("live", 1));
  RunStore store(db);
  EXPECT_THROW(store.deleteRun(w.id()), qs::Error);
  w.finish();
  EXPECT_NO_THROW(store.deleteRun(w.id()));
}

TEST(RunCompare, ConfigDiffMetricsAndAlignedSeries) {
  auto db = dbIn("compare");
  int64_t a = writeFinishedRun(db, "a", 128, 1.0f);
  int64_t b;
  {
    NewRun nr = analysisRun("b", 64);
    nr.configYaml += "extra: {outlier_threshold: 6}\n";
    RunWriter w(db, nr);
    w.addMetric({"ppl.wikitext2", 11.0, "gptq-nonoverlapping seqlen=512", "", 40, NAN});
    w.addMetric({"ppl.ptb", 30.0, "gptq-nonoverlapping seqlen=512", "", 40, NAN});
    w.addSiteStat(stat(0, "q_proj", 8, 3.0f));
    w.addSiteStat(stat(2, "q_proj", 8, 3.0f));  // a layer run a lacks
    w.finish();
    b = w.id();
  }
  RunStore store(db);
  auto c = store.compareRuns({a, b});
  ASSERT_EQ(c.runs.size(), 2u);
  EXPECT_EQ(c.runs[0].id, a);
  ASSERT_EQ(c.configDiff.size(), 2u);
  EXPECT_EQ(c.configDiff[0].key, "calibration.samples");
  EXPECT_EQ(c.configDiff[0].values[0], std::optional<std::string>("128"));
  EXPECT_EQ(c.configDiff[0].values[1], std::optional<std::string>("64"));
  EXPECT_EQ(c.configDiff[1].key, "extra.outlier_threshold");
  EXPECT_FALSE(c.configDiff[1].values[0]);
  ASSERT_EQ(c.metrics.size(), 3u);  // ppl.ptb, ppl.wikitext2, seconds
  EXPECT_EQ(c.metrics[0].key, "ppl.ptb");
  EXPECT_FALSE(c.metrics[0].values[0]);
  EXPECT_DOUBLE_EQ(c.metrics[0].values[1]->value, 30.0);
  EXPECT_DOUBLE_EQ(c.metrics[1].values[0]->value, 10.0);
  EXPECT_DOUBLE_EQ(c.metrics[1].values[1]->value, 11.0);

  const LayerSeries* maxAbs = nullptr;
  for (auto& s : c.series)
    if (s.name == "input.max_abs") maxAbs = &s;
  ASSERT_NE(maxAbs, nullptr);
  // layer 0: q_proj, fc1; layer 1: q_proj, fc1; layer 2: q_proj (b only)
  ASSERT_EQ(maxAbs->rows.size(), 5u);
  EXPECT_EQ(maxAbs->rows[0].layer, 0);
  EXPECT_EQ(maxAbs->rows[0].site, "q_proj");
  EXPECT_EQ(maxAbs->rows[1].site, "fc1");
  EXPECT_DOUBLE_EQ(*maxAbs->rows[0].values[0], 10.0);
  EXPECT_DOUBLE_EQ(*maxAbs->rows[0].values[1], 30.0);
  EXPECT_FALSE(maxAbs->rows[1].values[1]);  // b has no fc1
  EXPECT_EQ(maxAbs->rows[4].layer, 2);
  EXPECT_FALSE(maxAbs->rows[4].values[0]);
  bool haveRelError = false;
  for (auto& s : c.series) haveRelError |= s.name == "rel_error";
  EXPECT_TRUE(haveRelError);

  EXPECT_THROW(store.compareRuns({a}), qs::Error);
}

TEST(RunCompare, IdenticalConfigsHaveNoDiffAndRunFieldsAreCompared) {
  RunRecord x, y;
  x.info.configYaml = "a: 1\nb: [1, 2]\n";
  y.info.configYaml = "b: [1, 2]\na: 1\n";  // key order does not matter
  x.info.device = "cpu";
  y.info.device = "cuda:0";
  auto c = compareRecords({x, y});
  ASSERT_EQ(c.configDiff.size(), 1u);
  EXPECT_EQ(c.configDiff[0].key, "run.device");
  y.info.configYaml = "a: [unclosed";
  y.info.id = 9;
  try {
    compareRecords({x, y});
    FAIL();
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("run 9 config"), std::string::npos) << e.what();
  }
}

TEST(Fingerprint, ModelFolderAndFile) {
  auto dir = qs::test::tempDir("fp");
  std::ofstream(dir + "/config.json") << R"({"hidden_size": 64})";
  std::ofstream(dir + "/model.safetensors") << std::string(100000, 'a');
  std::ofstream(dir + "/README.md") << "ignored";
  auto f1 = fingerprintModel(dir);
  EXPECT_EQ(f1.rfind("fnv1a64:", 0), 0u);
  EXPECT_EQ(f1.size(), 8u + 16u);
  std::ofstream(dir + "/README.md") << "still ignored";
  EXPECT_EQ(fingerprintModel(dir), f1);
  std::ofstream(dir + "/config.json") << R"({"hidden_size": 65})";
  auto f2 = fingerprintModel(dir);
  EXPECT_NE(f2, f1);
  std::ofstream(dir + "/model.safetensors") << std::string(100001, 'a');  // size change
  EXPECT_NE(fingerprintModel(dir), f2);
  EXPECT_NE(fingerprintModel(dir + "/model.safetensors"), fingerprintModel(dir));
  EXPECT_THROW(fingerprintModel(dir + "/nope"), qs::Error);
  auto empty = qs::test::tempDir("fp-empty");
  EXPECT_THROW(fingerprintModel(empty), qs::Error);
}
