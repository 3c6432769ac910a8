// project_jobs: see project_jobs.h. runQuantize is the one copy of the quantize steps
// (`qscope quantize` and the GUI's Quantize job both call it): FP perplexity and tasks,
// migration, the weight pipeline (checkpointed per block in a project), activation ranges,
// quantized perplexity and tasks; the metrics, layer results, migration statistics and
// quantized-run artifact. Inputs are checked before the run row is created, so a bad dataset,
// task file or config never leaves a failed run behind.
#include "core/workflow/project_jobs.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "core/algo/act_calibration.h"
#include "core/algo/gguf_export.h"
#include "core/algo/migration_run.h"
#include "core/algo/pipeline.h"
#include "core/algo/precision_eval.h"
#include "core/algo/quant_artifact.h"
#include "core/algo/quantized_run.h"
#include "core/algo/quantize_config.h"
#include "core/analysis/analyze.h"
#include "core/analysis/calibration.h"
#include "core/analysis/run_stats.h"
#include "core/eval/datasets.h"
#include "core/eval/perplexity.h"
#include "core/eval/tasks.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/quant/format_yaml.h"
#include "core/runs/fingerprint.h"
#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/fs.h"
#include "core/util/error.h"
#include "core/util/log.h"
#include "core/workflow/preflight.h"
#include "core/workflow/quantize_inputs.h"

namespace qs::workflow {
namespace {

bool hasMigrationCheckpoint(const std::string& checkpointDir) {
  return !checkpointDir.empty() && std::filesystem::exists(checkpointDir + "/" + algo::kMigrationCheckpointFile);
}

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

// A task's metrics as `qscope eval --tasks --project` stores them ("piqa/acc", the harness's
// protocol name, n, stderr); the FP model's under "fp/" ("fp/piqa/acc").
void recordTasks(runs::RunWriter& w, const std::vector<eval::TaskResult>& results, const std::string& prefix) {
  for (const auto& t : results)
    for (const auto& m : t.metrics)
      w.addMetric({prefix + t.task + "/" + m.name, m.value, eval::taskProtocol(t.task), "", t.n, m.stdError});
}

// The rows a quantize run stores (metrics and per-site layer results).
void recordQuantizeRun(runs::RunWriter& w, const algo::PipelineResult& pr, const std::vector<EvalSet>& evals,
                       const std::vector<eval::TaskResult>& tasksFp, const std::vector<eval::TaskResult>& tasksQ) {
  for (const auto& e : evals) {
    w.addMetric({"ppl_fp." + e.name, e.fp.perplexity, protocol(e.fp), "", e.fp.windows, NAN});
    w.addMetric({"ppl." + e.name, e.quantized.perplexity, protocol(e.quantized), "", e.quantized.windows, NAN});
  }
  recordTasks(w, tasksFp, "fp/");
  recordTasks(w, tasksQ, "");
  double bits = 0, weights = 0, seconds = 0;
  for (const auto& s : pr.sites) {
    nlohmann::json extra = {{"method", s.method},
                            {"group", s.group},
                            {"tokens", s.tokens},
                            {"hessian_seconds", s.hessianSeconds},
                            {"quant_seconds", s.quantSeconds},
                            {"outlier_bits", s.outlierBits},
                            {"resumed", s.resumed},
                            {"error_on", s.errorOnWeights ? "weights" : "calibration inputs"}};
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
      if (s == &a) {
        extra["threshold"] = m.records[i].threshold;
        if (m.method == algo::Migration::OsPlus)
          extra["objective"] = {{"before", m.records[i].errorBefore}, {"after", m.records[i].errorAfter}};
      }
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

// The quantized-run artifact (`qscope export RUN` and `qscope eval RUN` read it).
std::string writeArtifact(runs::RunWriter& w, const std::string& dir, const algo::QuantizeConfig& c,
                          const std::string& yaml, const std::string& modelPath, const algo::PipelineResult& pr,
                          const algo::MigrationOutcome& m, const std::string& dtype) {
  algo::QuantArtifact a;
  a.configYaml = yaml;
  a.modelPath = std::filesystem::absolute(modelPath).string();
  a.modelFingerprint = runs::fingerprintModel(modelPath);
  a.dtype = dtype;
  a.method = algo::methodName(c.layer.method);
  a.bits = c.layer.spec.bits;
  a.symmetric = c.layer.spec.symmetric;
  a.groupSize = c.layer.spec.chAxis == -1 ? -1 : c.layer.spec.groupSize;
  a.actOrder = c.layer.spec.actOrder;
  a.migration = algo::migrationName(m.method);
  a.migrations = m.records;
  a.grids = pr.grids;
  // A streamed run keeps its grids in the pipeline's block files: copied over one by one.
  if (pr.grids.empty()) a.gridFiles = pr.blockFiles;
  // Sites left at 16 bits (a llama.cpp grid's misfits) have no grid; a quantized one must.
  size_t missing = 0;
  for (const auto& s : pr.sites) missing += s.bitsPerWeight < 16 && !pr.grids.count(s.site);
  if (c.layer.spec.enabled() && !pr.grids.empty() && missing > 0)
    throw Error("quantize: " + std::to_string(missing) +
                " site(s) restored from a checkpoint written without integer grids; re-run without --resume to "
                "get an exportable run");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + algo::kQuantArtifactFile;
  algo::writeQuantArtifact(path, a);
  w.addArtifact({"quantized", dir, 0, ""});
  return path;
}

QuantizeReport makeReport(const algo::PipelineResult& pr, const algo::MigrationOutcome& m,
                          const std::vector<EvalSet>& evals) {
  QuantizeReport r;
  for (const auto& s : pr.sites)
    r.sites.push_back({s.block, s.group, s.site, s.method, s.relError, s.bitsPerWeight, s.hessianSeconds,
                       s.quantSeconds, s.tokens, s.resumed, s.errorOnWeights});
  for (const auto& e : evals)
    r.perplexity.push_back({e.name, e.fp.protocol, e.fp.seqlen, e.fp.windows, e.fp.totalWindows, e.fp.perplexity,
                            e.quantized.perplexity});
  r.blocks = pr.blocks;
  r.resumedBlocks = pr.resumedBlocks;
  r.samples = pr.samples;
  r.seqlen = pr.seqlen;
  r.seconds = pr.seconds;
  r.peakMemoryBytes = pr.peakMemoryBytes;
  r.peakMemorySource = pr.peakMemorySource;
  r.workingSetBytes = pr.peakWorkingBytes;
  r.migration = algo::migrationName(m.method);
  r.migrationSeconds = m.seconds;
  for (size_t i = 0; i < m.before.size() && i < m.after.size(); ++i) {
    const auto& b = m.before[i];
    const auto& a = m.after[i];
    const bool rec = i < m.records.size();
    r.migrationSites.push_back({b.pair, b.site, b.maxAbs, a.maxAbs, b.kurtosis, a.kurtosis, b.asymmetry, a.asymmetry,
                                rec ? m.records[i].threshold : 0.0, rec ? m.records[i].errorBefore : 0.0,
                                rec ? m.records[i].errorAfter : 0.0});
  }
  return r;
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
  e << YAML::Key << "softmax_inputs" << YAML::Value << opts.softmaxInputs;
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

std::string quantizeCheckpointDir(const runs::Project& project, int64_t runId) {
  return project.exportsDir() + "/.resume-" + std::to_string(runId);
}

std::string quantizeArtifactDir(const runs::Project& project, int64_t runId) {
  return project.exportsDir() + "/run-" + std::to_string(runId);
}

model::LoadOptions loadOptions(const std::string& device, const std::string& dtype, std::string& dtypeName) {
  model::LoadOptions lo;
  if (dtype == "float32" || dtype == "fp32" || dtype == "f32") lo.dtype = at::kFloat, dtypeName = "float32";
  else if (dtype == "bfloat16" || dtype == "bf16") lo.dtype = at::kBFloat16, dtypeName = "bfloat16";
  else if (dtype == "float16" || dtype == "fp16" || dtype == "f16" || dtype == "half") lo.dtype = at::kHalf, dtypeName = "float16";
  else throw Error("dtype: unknown value '" + dtype + "' (use float32, bfloat16 or float16)");
  try {
    lo.device = c10::Device(device);
  } catch (const std::exception&) {
    throw Error("device: unknown value '" + device + "' (use cpu, cuda or cuda:N)");
  }
  return lo;
}

model::Workload quantizeWorkload(const model::Model& model, const algo::QuantizeConfig& cfg) {
  const bool dataFree = cfg.layer.method == algo::Method::Rtn && !cfg.calibrateRtn;
  const bool evaluates = !cfg.eval.empty() || !cfg.evalTasks.empty();
  model::Workload w;
  w.batches = 1;
  w.rows = dataFree ? 1 : std::max(1, std::min(cfg.batchSize, cfg.nsamples));
  w.tokens = std::max<int64_t>(evaluates ? eval::resolveSeqlen(model, cfg.evalSeqlen) : 1, dataFree ? 1 : cfg.seqlen);
  w.head = evaluates;
  return w;
}

QuantizeInputs resolveQuantizeInputs(const QuantizeJobOptions& o) {
  QuantizeInputs in;
  std::optional<runs::Project>& project = in.project;
  if (!o.projectDir.empty()) project = runs::Project::open(o.projectDir);
  else if (o.modelPath.empty()) throw Error("quantize: neither a project nor a model was given");
  if (!o.bundleDir.empty()) {
    if (!project) throw Error("--bundle needs a project folder (the bundle is imported into its runs), got " + o.modelPath);
    project->redirectStore(o.bundleDir);
  }
  if (o.resumeRunId > 0 && !project)
    throw Error("--resume needs a project folder (runs and checkpoints live there), got " + o.modelPath);
  in.modelPath = project ? project->modelPath() : o.modelPath;
  in.dataDir = !o.dataDir.empty() ? o.dataDir : project ? project->dataDir() : "";
  in.load = loadOptions(o.device, o.dtype, in.dtypeName);

  // The resolved config: defaults < project default < configYaml; or the resumed run's.
  algo::QuantizeConfig& cfg = in.config;
  if (o.resumeRunId > 0) {
    const std::string rid = std::to_string(o.resumeRunId);
    if (!o.configYaml.empty()) throw Error("--resume continues run " + rid + " with its stored config; give no other config");
    auto store = project->openStore();
    const runs::RunInfo prev = store.getRun(o.resumeRunId);
    if (prev.kind != runs::RunKind::Quantize)
      throw Error("run " + rid + " is a " + runs::toString(prev.kind) + " run, not quantize");
    if (prev.status == runs::RunStatus::Running) throw Error("run " + rid + " is still being written by another process");
    cfg = algo::parseQuantizeConfig(prev.configYaml, "run " + rid + " config");
    in.resumeDir = quantizeCheckpointDir(*project, o.resumeRunId);
    if (algo::checkpointedBlocks(in.resumeDir) == 0 && !hasMigrationCheckpoint(in.resumeDir))
      throw Error("run " + rid + " has no checkpoint to resume (" + in.resumeDir +
                  "): it finished, was cancelled, or stopped before its migration or first block was done");
  } else {
    if (project && !project->defaultConfig("quantize").empty())
      cfg = algo::loadQuantizeConfig(project->defaultConfig("quantize"));
    if (!o.configYaml.empty())
      cfg = algo::parseQuantizeConfig(o.configYaml, o.configName.empty() ? "quantize config" : o.configName, cfg);
  }
  cfg.validate();
  return in;
}

QuantizeReport runQuantize(const QuantizeJobOptions& o, jobs::Progress& progress) {
  // A job that cannot fit the memory budget stops here, before its run exists, saying what to change.
  {
    const QuantizePreflight pre = preflightQuantize(o, /*probe=*/false);
    if (!pre.fits) throw Error("quantize: this job does not fit the memory budget\n" + describePreflight(pre));
  }
  QuantizeInputs in = resolveQuantizeInputs(o);
  std::optional<runs::Project>& project = in.project;
  const std::string& modelPath = in.modelPath;
  const std::string& dataDir = in.dataDir;
  const std::string& dtypeName = in.dtypeName;
  const model::LoadOptions& load = in.load;
  const algo::QuantizeConfig& cfg = in.config;
  const std::string& resumeDir = in.resumeDir;

  // Inputs before the model and the run: file and dataset errors come first.
  progress.update(0, "reading " + cfg.dataset);
  auto tokenizer = io::loadTokenizer(modelPath);
  const algo::CalibrationTensors cal = algo::calibrationTensors(cfg, *tokenizer, dataDir);
  const at::Tensor& ids = cal.ids;
  const at::Tensor& mask = cal.mask;
  std::vector<EvalSet> evals;
  for (const auto& name : cfg.eval) {
    auto text = eval::loadDataset(name, dataDir);
    if (text.path == cal.path)
      log::warn("quantize: calibration text " + cal.path + " is also evaluated; its perplexity is optimistic");
    evals.push_back({text.name, tokenizer->encode(text.text, true), {}, {}});
  }
  std::vector<eval::Task> tasks;
  if (!cfg.evalTasks.empty()) {
    eval::TaskLoadOptions tlo;
    tlo.withTaskDir(o.taskDir).withLimit(cfg.evalTasksLimit);
    for (const auto& name : cfg.evalTasks)
      for (const auto& spec : eval::parseTaskList(name)) tasks.push_back(eval::loadTask(spec, tlo));
  }
  progress.checkCancel();
  progress.update(0, "opening the model");
  auto model = model::openModel(modelPath, load);
  if (model->config().maxPositions > 0 && cfg.seqlen > model->config().maxPositions)
    throw Error("seqlen: " + std::to_string(cfg.seqlen) + " exceeds the model's max positions " +
                std::to_string(model->config().maxPositions));
  // A mix target's per-site grids, known before any work (a family llama.cpp cannot run fails here).
  const std::map<std::string, quant::QuantSpec> siteSpecs =
      cfg.ggufMix.empty() ? std::map<std::string, quant::QuantSpec>{}
                          : algo::ggufMixSiteSpecs(*model, cfg.ggufMix, cfg.layer.spec);
  eval::PerplexityOptions ppl;
  ppl.seqlen = eval::resolveSeqlen(*model, cfg.evalSeqlen);
  ppl.limitWindows = cfg.evalLimitWindows;
  // Whole or block by block: decided once for the job from its largest batch (an evaluation
  // window or a calibration batch); streaming also keeps quantized and migrated weights on disk.
  model->setExecOptions(o.exec);
  const model::ExecPlan execPlan = model::planExecution(*model, quantizeWorkload(*model, cfg), o.exec);
  log::info("quantize: " + execPlan.describe());

  const std::string yaml = algo::toYaml(cfg);
  std::unique_ptr<runs::RunWriter> writer;
  if (project) {
    runs::NewRun nr;
    nr.name = o.name.empty() ? cfg.label() : o.name;
    nr.kind = runs::RunKind::Quantize;
    nr.modelPath = modelPath;
    nr.modelFingerprint = runs::fingerprintModel(modelPath);
    nr.configYaml = yaml + algo::calibrationRecordYaml(cal, cfg);
    nr.toolVersion = o.toolVersion.empty() ? kToolVersion : o.toolVersion;
    nr.device = o.device;
    if (o.resumeRunId > 0) nr.notes = "resumed from run " + std::to_string(o.resumeRunId);
    writer = std::make_unique<runs::RunWriter>(project->runsPath(), nr);
  }
  const std::string ckptDir = writer ? quantizeCheckpointDir(*project, writer->id()) : "";
  const std::string exportDir = writer ? quantizeArtifactDir(*project, writer->id()) : "";
  // Streaming: the block files of a project run are its checkpoints; a bare model gets a temporary
  // folder. Migrated or format-emulated weights beyond a couple of blocks spill to disk (removed
  // when the job ends, however it ends).
  const std::string workDir = execPlan.streaming ? (writer ? ckptDir : qs::fs::makeJobTempDir("qscope-quantize")) : "";
  const qs::fs::ScopedDir spillDir(!execPlan.streaming ? ""
                                   : writer         ? project->exportsDir() + "/.spill-" + std::to_string(writer->id())
                                                    : workDir + "/spill");
  const qs::fs::ScopedDir tempDir(execPlan.streaming && !writer ? workDir : "");
  if (execPlan.streaming) {
    std::filesystem::create_directories(spillDir.path());
    model->setOverrideBudget(model->defaultOverrideBudget(), spillDir.path());
  }
  const std::string tag = yaml + "model: " + modelPath + "\ndtype: " + dtypeName + "\n";

  // Stage weights: evaluation and migration are cheap next to calibration on the models this runs on.
  const size_t evalItems = evals.size() + tasks.size();
  const double evalShare = evalItems == 0 ? 0.0 : tasks.empty() ? 0.15 : 0.3;
  const double migrateShare = cfg.migrate == algo::Migration::None ? 0.0 : 0.15;
  const double actShare = cfg.act.enabled() ? 0.05 : 0.0;
  const double qBegin = evalShare + migrateShare, qEnd = 1.0 - evalShare - actShare;
  const double itemShare = evalItems == 0 ? 0.0 : evalShare / static_cast<double>(evalItems);
  const std::string wa = "W" + std::to_string(cfg.layer.spec.bits) + (cfg.act.enabled() ? "A" + std::to_string(cfg.act.bits) : "");
  eval::LoglikelihoodOptions llo;
  // Perplexity then tasks, each a slice of [begin, begin + evalShare]; `after` = the quantized model.
  const auto evaluate = [&](double begin, bool after, std::vector<eval::TaskResult>& taskResults) {
    size_t k = 0;
    for (auto& e : evals) {
      StageProgress stage(progress, begin + itemShare * k, begin + itemShare * (k + 1),
                          (after ? wa : std::string("FP")) + " " + e.name);
      (after ? e.quantized : e.fp) = eval::evaluatePerplexity(*model, e.tokens, ppl, stage);
      ++k;
    }
    for (const auto& t : tasks) {
      StageProgress stage(progress, begin + itemShare * k, begin + itemShare * (k + 1),
                          (after ? wa : std::string("FP")) + " " + t.info.name);
      taskResults.push_back(eval::evaluateTask(*model, *tokenizer, t, llo, stage));
      ++k;
    }
  };

  algo::PipelineResult pr;
  algo::MigrationOutcome migration;
  std::vector<eval::TaskResult> tasksFp, tasksQ;
  std::string artifactPath;
  std::unique_ptr<algo::ActQuantSession> actSession;
  // Leaves the model without the session's transform whatever happens (it refers to the model).
  struct SessionReset {
    std::unique_ptr<algo::ActQuantSession>& s;
    ~SessionReset() { s.reset(); }
  } sessionReset{actSession};
  try {
    evaluate(0.0, false, tasksFp);
    // A resumed run continues in its predecessor's folder, then moves it under its own id.
    if (writer && !resumeDir.empty()) std::filesystem::rename(resumeDir, ckptDir);
    if (cfg.migrate != algo::Migration::None) {
      StageProgress stage(progress, evalShare, qBegin, algo::migrationName(cfg.migrate));
      const std::string saved = writer ? ckptDir + "/" + algo::kMigrationCheckpointFile : "";
      if (!saved.empty() && std::filesystem::exists(saved)) {
        // Resumed: fold the migration the killed run found instead of searching again.
        migration = algo::readMigrationCheckpoint(saved, tag);
        algo::applyMigrationRecords(*model, migration.records);
        log::info(std::string(algo::migrationName(cfg.migrate)) + ": " + std::to_string(migration.records.size()) +
                  " pairs folded from the checkpoint of the resumed run (" + saved + ")");
      } else {
        migration = algo::runMigration(*model, ids, cfg, stage);
        if (!saved.empty()) {
          std::filesystem::create_directories(ckptDir);
          algo::writeMigrationCheckpoint(saved, migration, tag);
        }
      }
    }
    {
      StageProgress stage(progress, qBegin, qEnd, "quantize");
      algo::PipelineOptions po;
      po.withLayer(cfg.layer).withBatchSize(cfg.batchSize).withTrueSequential(cfg.trueSequential);
      po.withKeepGrids(writer != nullptr).withCalibrateRtn(cfg.calibrateRtn);
      po.withSiteSpecs(siteSpecs);
      po.withOffload(execPlan.streaming, writer ? "" : workDir);
      if (writer) {
        po.withCheckpoint(ckptDir, tag).withResume(!resumeDir.empty());
      }
      pr = algo::quantizeModel(*model, ids, mask, po, stage);
    }
    if (cfg.act.enabled()) {
      StageProgress stage(progress, qEnd, qEnd + actShare, "a" + std::to_string(cfg.act.bits) + " ranges");
      actSession = algo::installActQuant(*model, cfg, ids, stage);
    }
    std::unique_ptr<algo::PrecisionEmulator> formats;  // restores the weights before the artifact is written
    if (!cfg.precision.empty()) {
      formats = std::make_unique<algo::PrecisionEmulator>(*model);
      formats->apply(quant::parsePrecisionConfig(cfg.precision, "quantize config key 'precision'"));
    }
    evaluate(1.0 - evalShare, true, tasksQ);
    formats.reset();
    actSession.reset();
    if (writer) {
      recordQuantizeRun(*writer, pr, evals, tasksFp, tasksQ);
      recordMigration(*writer, migration);
      artifactPath = writeArtifact(*writer, exportDir, cfg, yaml, modelPath, pr, migration, dtypeName);
      writer->finish();
      std::filesystem::remove_all(ckptDir);
    }
  } catch (const qs::Cancelled&) {
    if (writer) {
      writer->cancel();  // no metrics, no layer results
      std::filesystem::remove_all(ckptDir);
      std::filesystem::remove_all(exportDir);
    }
    throw;
  } catch (const std::exception& e) {
    if (writer) {
      writer->fail(e.what());
      std::filesystem::remove_all(exportDir);
      const int blocks = algo::checkpointedBlocks(ckptDir);
      if (blocks > 0 || hasMigrationCheckpoint(ckptDir))
        log::warn((hasMigrationCheckpoint(ckptDir) ? "the migration and " : std::string()) + std::to_string(blocks) +
                  " block(s) checkpointed; continue with: qscope quantize " + project->dir() + " --resume " +
                  std::to_string(writer->id()));
    }
    throw;
  }

  QuantizeReport r = makeReport(pr, migration, evals);
  r.streamed = execPlan.streaming;
  r.execution = execPlan.describe();
  r.runId = writer ? writer->id() : 0;
  r.modelPath = modelPath;
  r.label = cfg.label();
  r.configYaml = yaml;
  r.artifactPath = artifactPath;
  r.tasksFp = std::move(tasksFp);
  r.tasksQuantized = std::move(tasksQ);
  r.summary = (r.runId > 0 ? "run " + std::to_string(r.runId) + " (" + (o.name.empty() ? r.label : o.name) + ")"
                           : r.label) +
              ": " + std::to_string(pr.blocks) + " blocks in " + fmt(pr.seconds, 3) + " s";
  for (const auto& e : evals)
    r.summary += "; ppl " + e.name + " " + fmt(e.fp.perplexity) + " -> " + fmt(e.quantized.perplexity);
  for (size_t i = 0; i < r.tasksFp.size() && i < r.tasksQuantized.size(); ++i)
    if (!r.tasksFp[i].metrics.empty() && !r.tasksQuantized[i].metrics.empty())
      r.summary += "; " + r.tasksFp[i].task + " " + r.tasksFp[i].metrics.front().name + " " +
                   fmt(r.tasksFp[i].metrics.front().value) + " -> " + fmt(r.tasksQuantized[i].metrics.front().value);
  return r;
}

JobOutcome runQuantizeJob(const QuantizeJobOptions& o, jobs::Progress& progress) {
  // The GUI's job: the pre-flight estimate (with its probe) goes to the log first, as the CLI
  // prints it before `qscope quantize` starts.
  {
    StageProgress stage(progress, 0, 0, "pre-flight");
    log::info(describePreflight(preflightQuantize(o, /*probe=*/true, stage)));
  }
  const QuantizeReport r = runQuantize(o, progress);
  return {r.runId, r.summary};
}

}  // namespace qs::workflow
