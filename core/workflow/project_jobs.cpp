// project_jobs: see project_jobs.h. The steps mirror app/qscope/cmd_analyze.cpp and
// cmd_quantize.cpp (without --resume: FP perplexity, migration, the weight pipeline, activation
// ranges, quantized perplexity; the same metrics, layer results, migration statistics and
// quantized-run artifact): inputs are checked before the run row is created, so a bad dataset or
// config never leaves a failed run behind. The CLI still carries its own copy of these steps;
// moving it onto runQuantizeJob would leave one.
#include "core/workflow/project_jobs.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "core/algo/act_calibration.h"
#include "core/algo/migration_run.h"
#include "core/algo/pipeline.h"
#include "core/algo/quant_artifact.h"
#include "core/algo/quantize_config.h"
#include "core/analysis/analyze.h"
#include "core/analysis/calibration.h"
#include "core/analysis/run_stats.h"
#include "core/eval/datasets.h"
#include "core/eval/perplexity.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"
#include "core/runs/fingerprint.h"
#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"
#include "core/util/log.h"

namespace qs::workflow {
namespace {

const char* const kToolVersion = "0.1.0";

// Maps a stage onto [begin, end] of the parent and prefixes its messages ("quantize: block 2/5").
class StageProgress : public jobs::Progress {
 public:
  StageProgress(jobs::Progress& parent, double begin, double end, std::string stage)
      : parent_(parent), begin_(begin), end_(end), stage_(std::move(stage)) {}
  void update(double fraction, const std::string& message) override {
    parent_.update(begin_ + (end_ - begin_) * std::clamp(fraction, 0.0, 1.0),
                   message.empty() ? stage_ : stage_ + ": " + message);
  }
  bool cancelRequested() const override { return parent_.cancelRequested(); }

 private:
  jobs::Progress& parent_;
  double begin_, end_;
  std::string stage_;
};

std::string fmt(double v, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

struct EvalSet {
  std::string name;
  std::vector<int32_t> tokens;
  eval::PerplexityResult fp, quantized;
};

std::string protocol(const eval::PerplexityResult& r) { return r.protocol + " seqlen=" + std::to_string(r.seqlen); }

// The rows `qscope quantize` stores for a run (metrics and per-site layer results).
void recordQuantizeRun(runs::RunWriter& w, const algo::PipelineResult& pr, const std::vector<EvalSet>& evals) {
  for (const auto& e : evals) {
    w.addMetric({"ppl_fp." + e.name, e.fp.perplexity, protocol(e.fp), "", e.fp.windows, NAN});
    w.addMetric({"ppl." + e.name, e.quantized.perplexity, protocol(e.quantized), "", e.quantized.windows, NAN});
  }
  double bits = 0, weights = 0, seconds = 0;
  for (const auto& s : pr.sites) {
    nlohmann::json extra = {{"method", s.method},
                            {"group", s.group},
                            {"tokens", s.tokens},
                            {"hessian_seconds", s.hessianSeconds},
                            {"quant_seconds", s.quantSeconds},
                            {"outlier_bits", s.outlierBits},
                            {"resumed", s.resumed}};
    w.addLayerResult({s.block, s.site, s.relError, s.hessianSeconds + s.quantSeconds, s.bitsPerWeight, extra.dump()});
    bits += s.bitsPerWeight;
    weights += 1;
    seconds += s.hessianSeconds + s.quantSeconds;
  }
  if (weights > 0) w.addMetric({"bits_per_weight.mean_site", bits / weights, "", "bits", static_cast<int64_t>(weights), NAN});
  w.addMetric({"time.quantize", pr.seconds, "this process (resumed blocks excluded)", "s", pr.blocks - pr.resumedBlocks, NAN});
  w.addMetric({"time.sites", seconds, "sum of per-site Hessian + quantizer seconds", "s", static_cast<int64_t>(pr.sites.size()), NAN});
  w.addMetric({"memory.peak", static_cast<double>(pr.peakMemoryBytes), pr.peakMemorySource, "bytes", 0, NAN});
  w.addMetric({"memory.working_set", static_cast<double>(pr.peakWorkingBytes), "one block's weights + activations",
               "bytes", 0, NAN});
}

// The migration rows `qscope quantize` stores: before/after statistics per migrated site and
// the summary metrics.
void recordMigration(runs::RunWriter& w, const algo::MigrationOutcome& m) {
  if (m.method == algo::Migration::None) return;
  double maxB = 0, maxA = 0, kurB = 0, kurA = 0, asyB = 0, asyA = 0;
  for (size_t i = 0; i < m.before.size() && i < m.after.size(); ++i) {
    const auto& b = m.before[i];
    const auto& a = m.after[i];
    for (const auto* s : {&b, &a}) {
      runs::SiteStat st;
      st.layer = s->block;
      st.site = s->site;
      st.kind = s == &b ? "migration_before" : "migration_after";
      st.maxAbs = s->maxAbs;
      st.kurtosisMean = s->kurtosis;
      st.kurtosisMax = s->kurtosis;
      nlohmann::json extra = {{"pair", s->pair}, {"asymmetry", s->asymmetry}, {"method", algo::migrationName(m.method)},
                              {"kurtosis", "Pearson, all input values of <= 4096 calibration tokens"}};
      if (s == &a) extra["threshold"] = m.records[i].threshold;
      st.extraJson = extra.dump();
      w.addSiteStat(st);
    }
    maxB = std::max(maxB, b.maxAbs);
    maxA = std::max(maxA, a.maxAbs);
    kurB += b.kurtosis / static_cast<double>(m.before.size());
    kurA += a.kurtosis / static_cast<double>(m.after.size());
    asyB = std::max(asyB, b.asymmetry);
    asyA = std::max(asyA, a.asymmetry);
  }
  const int64_t n = static_cast<int64_t>(m.before.size());
  const std::string proto = std::string(algo::migrationName(m.method)) + " migrated site inputs, calibration set";
  w.addMetric({"migration.max_abs.before", maxB, proto + " (max over sites)", "", n, NAN});
  w.addMetric({"migration.max_abs.after", maxA, proto + " (max over sites)", "", n, NAN});
  w.addMetric({"migration.kurtosis.before", kurB, proto + " (mean over sites)", "", n, NAN});
  w.addMetric({"migration.kurtosis.after", kurA, proto + " (mean over sites)", "", n, NAN});
  w.addMetric({"migration.asymmetry.before", asyB, proto + " (max over sites of max |center|)", "", n, NAN});
  w.addMetric({"migration.asymmetry.after", asyA, proto + " (max over sites of max |center|)", "", n, NAN});
  w.addMetric({"time.migration", m.seconds, proto, "s", n, NAN});
}

// The quantized-run artifact (`qscope export RUN` reads it), as `qscope quantize` writes it.
void writeArtifact(runs::RunWriter& w, const runs::Project& project, const algo::QuantizeConfig& c,
                   const std::string& yaml, const std::string& modelPath, const algo::PipelineResult& pr,
                   const algo::MigrationOutcome& m) {
  algo::QuantArtifact a;
  a.configYaml = yaml;
  a.modelPath = std::filesystem::absolute(modelPath).string();
  a.modelFingerprint = runs::fingerprintModel(modelPath);
  a.dtype = "float32";
  a.method = algo::methodName(c.layer.method);
  a.bits = c.layer.spec.bits;
  a.symmetric = c.layer.spec.symmetric;
  a.groupSize = c.layer.spec.chAxis == -1 ? -1 : c.layer.spec.groupSize;
  a.actOrder = c.layer.spec.actOrder;
  a.migration = algo::migrationName(m.method);
  a.migrations = m.records;
  a.grids = pr.grids;
  const std::string dir = project.dir() + "/exports/run-" + std::to_string(w.id());
  std::filesystem::create_directories(dir);
  algo::writeQuantArtifact(dir + "/" + algo::kQuantArtifactFile, a);
  w.addArtifact({"quantized", dir, 0, ""});
}

}  // namespace

std::string projectDataset(const runs::Project& project, const std::string& given) {
  if (!given.empty()) return given;
  if (!project.config().datasets.empty()) {
    const std::string& d = project.config().datasets.front();
    auto known = eval::knownDatasets();
    return std::find(known.begin(), known.end(), d) != known.end() ? d : project.resolve(d);
  }
  return "wikitext2";
}

std::string analysisConfigYaml(const eval::DatasetText& text, const std::string& modelPath,
                               const analysis::CalibrationOptions& cal, const analysis::AnalysisOptions& opts,
                               const std::string& device, const std::string& dtype) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "model" << YAML::Value << modelPath;
  e << YAML::Key << "calibration" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "dataset" << YAML::Value << text.name;
  e << YAML::Key << "dataset_path" << YAML::Value << text.path;
  e << YAML::Key << "samples" << YAML::Value << cal.samples;
  e << YAML::Key << "seqlen" << YAML::Value << cal.seqlen;
  e << YAML::Key << "seed" << YAML::Value << cal.seed;
  e << YAML::Key << "rng" << YAML::Value << "mt19937_64";
  e << YAML::Key << "per_document" << YAML::Value << cal.documents;
  e << YAML::Key << "remove_padding" << YAML::Value << cal.removePadding;
  e << YAML::EndMap;
  e << YAML::Key << "analysis" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "sites" << YAML::Value << opts.sites;
  e << YAML::Key << "weights" << YAML::Value << opts.weights;
  e << YAML::Key << "block_outputs" << YAML::Value << opts.blockOutputs;
  e << YAML::Key << "matmul_inputs" << YAML::Value << opts.matmulInputs;
  e << YAML::Key << "top_tokens" << YAML::Value << opts.topTokens;
  e << YAML::Key << "batch_size" << YAML::Value << opts.batchSize;
  e << YAML::Key << "kurtosis" << YAML::Value << "pearson";
  e << YAML::Key << "outliers" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "abs_threshold" << YAML::Value << opts.outliers.absThreshold;
  e << YAML::Key << "median_factor" << YAML::Value << opts.outliers.medianFactor;
  e << YAML::EndMap << YAML::EndMap;
  e << YAML::Key << "run" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "device" << YAML::Value << device;
  e << YAML::Key << "dtype" << YAML::Value << dtype;
  e << YAML::EndMap << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

JobOutcome runAnalyzeJob(const AnalyzeJobOptions& o, jobs::Progress& progress) {
  const runs::Project project = runs::Project::open(o.projectDir);
  const std::string modelPath = project.modelPath();
  progress.update(0, "reading " + projectDataset(project, o.dataset));
  const eval::DatasetText text = eval::loadDataset(projectDataset(project, o.dataset), project.dataDir());
  auto tokenizer = io::loadTokenizer(modelPath);
  analysis::CalibrationOptions cal;
  cal.withSamples(o.samples).withSeqlen(o.seqlen).withSeed(o.seed);
  analysis::CalibrationSet samples = analysis::makeCalibrationSet(text.text, text.path, *tokenizer, cal);
  samples.source = text.name;
  progress.checkCancel();
  progress.update(0, "opening the model");
  auto model = model::openModel(modelPath);

  analysis::AnalysisOptions opts;
  opts.withBatchSize(o.batchSize);
  runs::NewRun nr;
  nr.name = o.name.empty() ? "analysis " + std::to_string(o.samples) + "x" + std::to_string(o.seqlen) : o.name;
  nr.kind = runs::RunKind::Analysis;
  nr.modelPath = modelPath;
  nr.modelFingerprint = runs::fingerprintModel(modelPath);
  nr.configYaml = analysisConfigYaml(text, modelPath, cal, opts);
  nr.toolVersion = kToolVersion;
  nr.device = "cpu";
  runs::RunWriter writer(project.runsPath(), nr);
  // Each block's rows commit when the block is done, so the explorer can watch the run fill up.
  opts.onBlock = [&](const std::vector<analysis::SiteResult>& block) {
    auto rows = block;
    analysis::fillTokenText(rows, *tokenizer);
    for (const auto& r : rows) writer.addSiteStat(analysis::toSiteStat(r, opts.outliers));
    writer.flush();
  };
  analysis::AnalysisResult result;
  try {
    StageProgress stage(progress, 0, 1, "analyse");
    result = analysis::analyzeModel(*model, samples, opts, stage);
    for (const auto& m : analysis::analysisMetrics(result)) writer.addMetric(m);
    writer.finish();
  } catch (const qs::Cancelled&) {
    writer.cancel();
    throw;
  } catch (const std::exception& e) {
    writer.fail(e.what());
    throw;
  }
  JobOutcome out;
  out.runId = writer.id();
  out.summary = "run " + std::to_string(out.runId) + ": " + std::to_string(result.sites.size()) + " sites over " +
                std::to_string(result.samples) + " x " + std::to_string(result.seqlen) + " tokens of " + text.name +
                " in " + fmt(result.seconds, 3) + " s";
  return out;
}

JobOutcome runQuantizeJob(const QuantizeJobOptions& o, jobs::Progress& progress) {
  const runs::Project project = runs::Project::open(o.projectDir);
  const std::string modelPath = project.modelPath();
  const std::string dataDir = project.dataDir();
  algo::QuantizeConfig base;
  if (!project.defaultConfig("quantize").empty()) base = algo::loadQuantizeConfig(project.defaultConfig("quantize"));
  const algo::QuantizeConfig cfg =
      o.configYaml.empty() ? base
                           : algo::parseQuantizeConfig(o.configYaml, o.configName.empty() ? "quantize config" : o.configName, base);
  cfg.validate();

  // Inputs before the model and the run: file and dataset errors come first.
  progress.update(0, "reading " + cfg.dataset);
  auto tokenizer = io::loadTokenizer(modelPath);
  const eval::DatasetText calText = eval::loadDataset(cfg.dataset, dataDir);
  std::vector<EvalSet> evals;
  for (const auto& name : cfg.eval) {
    auto text = eval::loadDataset(name, dataDir);
    if (text.path == calText.path)
      log::warn("quantize: calibration text " + calText.path + " is also evaluated; its perplexity is optimistic");
    evals.push_back({text.name, tokenizer->encode(text.text, true), {}, {}});
  }
  analysis::CalibrationOptions co;
  co.withSamples(cfg.nsamples).withSeqlen(cfg.seqlen).withSeed(cfg.seed);
  const analysis::CalibrationSet cal = analysis::makeCalibrationSet(calText.text, calText.path, *tokenizer, co);
  at::Tensor ids = at::from_blob(const_cast<int32_t*>(cal.ids.data()), {cal.samples, cal.seqlen}, at::kInt).to(at::kLong);
  at::Tensor mask;
  if (!cal.mask.empty())
    mask = at::from_blob(const_cast<uint8_t*>(cal.mask.data()), {cal.samples, cal.seqlen}, at::kByte).to(at::kLong);
  progress.checkCancel();
  progress.update(0, "opening the model");
  auto model = model::openModel(modelPath);
  if (model->config().maxPositions > 0 && cfg.seqlen > model->config().maxPositions)
    throw Error("seqlen: " + std::to_string(cfg.seqlen) + " exceeds the model's max positions " +
                std::to_string(model->config().maxPositions));
  eval::PerplexityOptions ppl;
  ppl.seqlen = eval::resolveSeqlen(*model, cfg.evalSeqlen);
  ppl.limitWindows = cfg.evalLimitWindows;

  runs::NewRun nr;
  nr.name = o.name.empty() ? cfg.label() : o.name;
  nr.kind = runs::RunKind::Quantize;
  nr.modelPath = modelPath;
  nr.modelFingerprint = runs::fingerprintModel(modelPath);
  nr.configYaml = algo::toYaml(cfg);
  nr.toolVersion = kToolVersion;
  nr.device = "cpu";
  runs::RunWriter writer(project.runsPath(), nr);

  // Stage weights: evaluation and migration are cheap next to calibration on the models this runs on.
  const double evalShare = evals.empty() ? 0.0 : 0.15;
  const double migrateShare = cfg.migrate == algo::Migration::None ? 0.0 : 0.15;
  const double actShare = cfg.act.enabled() ? 0.05 : 0.0;
  const double qBegin = evalShare + migrateShare, qEnd = 1.0 - evalShare - actShare;
  const std::string wa = "W" + std::to_string(cfg.layer.spec.bits) + (cfg.act.enabled() ? "A" + std::to_string(cfg.act.bits) : "");
  algo::PipelineResult pr;
  algo::MigrationOutcome migration;
  std::unique_ptr<algo::ActQuantSession> actSession;
  // Leaves the model without the session's transform whatever happens (it refers to the model).
  struct SessionReset {
    std::unique_ptr<algo::ActQuantSession>& s;
    ~SessionReset() { s.reset(); }
  } sessionReset{actSession};
  const std::string exportDir = project.dir() + "/exports/run-" + std::to_string(writer.id());
  try {
    for (size_t i = 0; i < evals.size(); ++i) {
      const double w = evalShare / static_cast<double>(evals.size());
      StageProgress stage(progress, w * i, w * (i + 1), "FP " + evals[i].name);
      evals[i].fp = eval::evaluatePerplexity(*model, evals[i].tokens, ppl, stage);
    }
    if (cfg.migrate != algo::Migration::None) {
      StageProgress stage(progress, evalShare, qBegin, algo::migrationName(cfg.migrate));
      migration = algo::runMigration(*model, ids, cfg, stage);
    }
    {
      StageProgress stage(progress, qBegin, qEnd, "quantize");
      algo::PipelineOptions po;
      po.withLayer(cfg.layer).withBatchSize(cfg.batchSize).withTrueSequential(cfg.trueSequential).withKeepGrids(true);
      pr = algo::quantizeModel(*model, ids, mask, po, stage);
    }
    if (cfg.act.enabled()) {
      StageProgress stage(progress, qEnd, qEnd + actShare, "a" + std::to_string(cfg.act.bits) + " ranges");
      actSession = std::make_unique<algo::ActQuantSession>(*model, cfg.act, cfg.exceptQuantizer);
      actSession->calibrate(ids, stage);
    }
    for (size_t i = 0; i < evals.size(); ++i) {
      const double w = evalShare / static_cast<double>(evals.size());
      StageProgress stage(progress, 1.0 - evalShare + w * i, 1.0 - evalShare + w * (i + 1), wa + " " + evals[i].name);
      evals[i].quantized = eval::evaluatePerplexity(*model, evals[i].tokens, ppl, stage);
    }
    actSession.reset();
    recordQuantizeRun(writer, pr, evals);
    recordMigration(writer, migration);
    writeArtifact(writer, project, cfg, nr.configYaml, modelPath, pr, migration);
    writer.finish();
  } catch (const qs::Cancelled&) {
    writer.cancel();  // rows and the artifact folder under exports/ go with it
    std::filesystem::remove_all(exportDir);
    throw;
  } catch (const std::exception& e) {
    writer.fail(e.what());
    throw;
  }
  JobOutcome out;
  out.runId = writer.id();
  out.summary = "run " + std::to_string(out.runId) + " (" + nr.name + "): " + std::to_string(pr.blocks) + " blocks in " +
                fmt(pr.seconds, 3) + " s";
  for (const auto& e : evals)
    out.summary += "; ppl " + e.name + " " + fmt(e.fp.perplexity) + " -> " + fmt(e.quantized.perplexity);
  return out;
}

}  // namespace qs::workflow
