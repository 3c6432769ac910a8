// qscope quantize PROJECT|MODEL [--config cfg.yaml] [--method ... --wbits ...]: the layer-wise
// weight quantization pipeline (core/algo/pipeline.h) with perplexity before and after.
// With a PROJECT the run is stored (resolved config, metrics, per-layer results) and
// checkpointed after every block under exports/.resume-<run>/, so a killed run continues with
// --resume RUN_ID. With a MODEL the result is printed only. Ctrl-C cancels: the run is marked
// cancelled with no rows and its checkpoint is removed.
// --migrate osplus|smoothquant folds outlier migration into the FP model first (calibrated on the
// same calibration set), then the weight method runs block by block, then evaluation runs with
// activation fake-quant when --a-bits < 16. A project run also stores the migration statistics
// (before/after per migrated site) and exports/run-<id>/quantized.safetensors for `qscope export`.
#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/algo/act_calibration.h"
#include "core/algo/migration_run.h"
#include "core/algo/pipeline.h"
#include "core/algo/quant_artifact.h"
#include "core/algo/quantize_config.h"
#include "core/quant/qconfig_yaml.h"
#include "core/analysis/calibration.h"
#include "core/eval/datasets.h"
#include "core/eval/perplexity.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/runs/fingerprint.h"
#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/fs.h"
#include "core/util/log.h"

namespace qs::cli {
namespace {

struct EvalSet {
  std::string name;
  std::vector<int32_t> tokens;
  eval::PerplexityResult fp, quantized;
};

class QuantizeCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("quantize", "Quantize a model's weights block by block (RTN, GPTQ, QuantEase) "
                                               "and compare perplexity before/after");
    cmd->add_option("target", target_, "project folder (the run is stored) or model folder / .gguf (printed only)")
        ->required();
    cmd->add_option("--config", configFile_, "quantize config YAML (see resources/presets/); flags override it");
    add(cmd->add_option("--method", method_, "rtn, gptq, quantease or gptq_quantease"));
    add(cmd->add_option("--wbits", wbits_, "weight bits (2..8; 16 = off)"));
    add(cmd->add_option("--groupsize", groupsize_, "input columns per scale; -1 = per output channel"));
    add(cmd->add_flag("--act-order", actOrder_, "GPTQ: columns by decreasing Hessian diagonal"));
    add(cmd->add_flag("--static-groups", staticGroups_, "group parameters fixed before GPTQ runs"));
    add(cmd->add_flag("--sym", sym_, "symmetric grid (zero point 0)"));
    add(cmd->add_option("--percdamp", percdamp_, "GPTQ dampening as a fraction of the mean Hessian diagonal"));
    add(cmd->add_option("--num-iter", numIter_, "QuantEase sweeps"));
    add(cmd->add_option("--outlier", outlier_, "QuantEase: fraction of weights kept in full precision (0.01 = 1%)"));
    add(cmd->add_flag("--structured-outlier", structured_, "outliers as whole input columns"));
    add(cmd->add_option("--nsamples", nsamples_, "calibration sequences"));
    add(cmd->add_option("--seqlen", seqlen_, "tokens per calibration sequence"));
    add(cmd->add_option("--seed", seed_, "seed of the calibration windows"));
    add(cmd->add_option("--dataset", dataset_, "calibration text: wikitext2, ptb, or a file"));
    add(cmd->add_option("--batch-size", batchSize_, "calibration samples per block forward"));
    add(cmd->add_option("--eval", eval_, "perplexity datasets, comma-separated (\"none\" = skip)"));
    add(cmd->add_option("--eval-seqlen", evalSeqlen_, "perplexity window (0 = min(2048, model max positions))"));
    add(cmd->add_option("--eval-limit-windows", evalLimit_, "score only the first N windows (0 = all)"));
    add(cmd->add_option("--migrate", migrate_, "outlier migration before the weight method: none, osplus, smoothquant"));
    add(cmd->add_option("--a-bits", aBits_, "activation bits during evaluation (2..8; 16 = FP activations)"));
    add(cmd->add_option("--a-quantizer", aQuantizer_, "per_tensor (static, calibrated), per_token or per_group (dynamic)"));
    add(cmd->add_option("--a-group-size", aGroupSize_, "channels per activation group (per_group)"));
    add(cmd->add_flag("--a-symmetric", aSymmetric_, "symmetric activation grid (default asymmetric)"));
    add(cmd->add_option("--a-observer", aObserver_, "static range observer: minmax, avg_minmax, ema_minmax, percentile, mse"));
    add(cmd->add_option("--sq-alpha", sqAlpha_, "SmoothQuant migration strength"));
    add(cmd->add_option("--search-steps", searchSteps_, "OS+ threshold candidates - 1"));
    add(cmd->add_option("--search-tokens", searchTokens_, "OS+ calibration tokens per pair in the search"));
    add(cmd->add_option("--qconfig", qconfig_, "OS+-style q-config YAML (a_qconfig, w_qconfig bit/symmetric/ch_axis, "
                                               "except_quantizer, migrate) applied before the flags; its calibrate/max_length are not "
                                               "used (--nsamples/--seqlen)"));
    cmd->add_option("--resume", resume_, "continue the killed quantize run RUN_ID of this project from its last "
                                         "finished block (same config)");
    cmd->add_option("--data-dir", dataDir_, "folder holding text/ for named datasets");
    addRunOptions(*cmd, run_);
    cmd->add_flag("--json", json_, "print the result as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    return cmd;
  }

  int run() override {
    const auto load = resolveRunOptions(run_);
    std::optional<runs::Project> project;
    if (runs::Project::isProject(target_)) project = runs::Project::open(target_);
    const std::string modelPath = project ? project->modelPath() : target_;
    std::string dataDir = dataDir_.empty() && project ? project->dataDir() : dataDir_;

    // The resolved config: defaults < project default < --config < flags; or the resumed run's.
    algo::QuantizeConfig cfg;
    std::string resumeDir;
    int64_t resumeFrom = 0;
    if (resume_ > 0) {
      if (!project) throw Error("--resume needs a project folder (runs and checkpoints live there), got " + target_);
      for (auto* o : configOptions_)
        if (o->count() > 0) throw Error("--resume continues run " + std::to_string(resume_) +
                                        " with its stored config; leave out " + o->get_name());
      if (!configFile_.empty()) throw Error("--resume uses the stored config; leave out --config");
      auto store = project->openStore();
      const runs::RunInfo prev = store.getRun(resume_);
      if (prev.kind != runs::RunKind::Quantize)
        throw Error("run " + std::to_string(resume_) + " is a " + runs::toString(prev.kind) + " run, not quantize");
      if (prev.status == runs::RunStatus::Running)
        throw Error("run " + std::to_string(resume_) + " is still being written by another process");
      cfg = algo::parseQuantizeConfig(prev.configYaml, "run " + std::to_string(resume_) + " config");
      resumeDir = checkpointDir(*project, resume_);
      if (algo::checkpointedBlocks(resumeDir) == 0)
        throw Error("run " + std::to_string(resume_) + " has no checkpoint to resume (" + resumeDir +
                    "): it finished, was cancelled, or stopped before its first block");
      resumeFrom = resume_;
    } else {
      if (project && configFile_.empty() && !project->defaultConfig("quantize").empty())
        cfg = algo::loadQuantizeConfig(project->defaultConfig("quantize"));
      if (!configFile_.empty()) cfg = algo::loadQuantizeConfig(configFile_, cfg);
      if (!qconfig_.empty()) applyQConfig(cfg, quant::loadQConfig(qconfig_));
      applyFlags(cfg);
    }

    // Inputs before the model and the run: file and dataset errors come first.
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

    auto model = model::openModel(modelPath, load);
    if (model->config().maxPositions > 0 && cfg.seqlen > model->config().maxPositions)
      throw Error("seqlen: " + std::to_string(cfg.seqlen) + " exceeds the model's max positions " +
                  std::to_string(model->config().maxPositions));
    eval::PerplexityOptions ppl;
    ppl.seqlen = eval::resolveSeqlen(*model, cfg.evalSeqlen);
    ppl.limitWindows = cfg.evalLimitWindows;

    const std::string yaml = algo::toYaml(cfg);
    std::unique_ptr<runs::RunWriter> writer;
    if (project) writer = std::make_unique<runs::RunWriter>(project->runsPath(), newRun(cfg, yaml, modelPath, resumeFrom));
    const std::string ckptDir = writer ? checkpointDir(*project, writer->id()) : "";
    const std::string tag = yaml + "model: " + modelPath + "\ndtype: " + run_.dtype + "\n";

    algo::PipelineResult pr;
    algo::MigrationOutcome migration;
    std::unique_ptr<algo::ActQuantSession> actSession;
    // Leaves the model without the session's transform whatever happens (it refers to the model).
    struct SessionReset {
      std::unique_ptr<algo::ActQuantSession>& s;
      ~SessionReset() { s.reset(); }
    } sessionReset{actSession};
    try {
      for (auto& e : evals) {
        ProgressBar bar("fp " + e.name, !noProgress_);
        e.fp = eval::evaluatePerplexity(*model, e.tokens, ppl, bar);
      }
      if (cfg.migrate != algo::Migration::None) {
        ProgressBar bar(algo::migrationName(cfg.migrate), !noProgress_);
        migration = algo::runMigration(*model, ids, cfg, bar);
      }
      {
        ProgressBar bar("quantize", !noProgress_);
        algo::PipelineOptions po;
        po.withLayer(cfg.layer).withBatchSize(cfg.batchSize).withTrueSequential(cfg.trueSequential);
        po.withKeepGrids(writer != nullptr);
        if (writer) {
          // A resumed run continues in its predecessor's folder, then moves it under its own id.
          if (!resumeDir.empty()) std::filesystem::rename(resumeDir, ckptDir);
          po.withCheckpoint(ckptDir, tag).withResume(!resumeDir.empty());
        }
        pr = algo::quantizeModel(*model, ids, mask, po, bar);
      }
      if (cfg.act.enabled()) {
        ProgressBar bar("a" + std::to_string(cfg.act.bits) + " ranges", !noProgress_);
        actSession = std::make_unique<algo::ActQuantSession>(*model, cfg.act, cfg.exceptQuantizer);
        actSession->calibrate(ids, bar);
      }
      for (auto& e : evals) {
        ProgressBar bar(shortLabel(cfg) + " " + e.name, !noProgress_);
        e.quantized = eval::evaluatePerplexity(*model, e.tokens, ppl, bar);
      }
      actSession.reset();
      if (writer) {
        record(*writer, pr, evals);
        recordMigration(*writer, migration);
        writeArtifact(*writer, *project, cfg, yaml, modelPath, pr, migration, load.dtype);
        writer->finish();
        std::filesystem::remove_all(ckptDir);
      }
    } catch (const qs::Cancelled&) {
      if (writer) {
        writer->cancel();  // no metrics, no layer results
        std::filesystem::remove_all(ckptDir);
      }
      throw;
    } catch (const std::exception& e) {
      if (writer) {
        writer->fail(e.what());
        if (algo::checkpointedBlocks(ckptDir) > 0)
          std::fprintf(stderr, "qscope: %d block(s) checkpointed; continue with: qscope quantize %s --resume %lld\n",
                       algo::checkpointedBlocks(ckptDir), project->dir().c_str(), static_cast<long long>(writer->id()));
      }
      throw;
    }

    if (json_) {
      nlohmann::json j = toJson(cfg, yaml, pr, evals, writer ? writer->id() : 0);
      j["migration"] = migrationJson(migration);
      if (writer) j["artifact"] = artifactRel(writer->id()) + "/" + algo::kQuantArtifactFile;
      printJson(j);
    } else {
      printMigration(migration);
      printSummary(cfg, pr, evals, writer ? writer->id() : 0, project ? project->runsPath() : "");
      if (writer)
        std::printf("quantized artifact: %s/%s/%s (qscope export %lld -p %s --format ...)\n", project->dir().c_str(),
                    artifactRel(writer->id()).c_str(), algo::kQuantArtifactFile, static_cast<long long>(writer->id()),
                    project->dir().c_str());
    }
    return 0;
  }

 private:
  static std::string checkpointDir(const runs::Project& p, int64_t runId) {
    return p.exportsDir() + "/.resume-" + std::to_string(runId);
  }

  static std::string artifactRel(int64_t runId) { return "exports/run-" + std::to_string(runId); }

  static std::string shortLabel(const algo::QuantizeConfig& c) {
    std::string l = "W" + std::to_string(c.layer.spec.bits);
    if (c.act.enabled()) l += "A" + std::to_string(c.act.bits);
    return l;
  }

  // OS+-style q-config: a_qconfig -> activations, w_qconfig -> the weight grid's bit/symmetric/
  // ch_axis/observer, except_quantizer, and migrate: true -> OS+.
  static void applyQConfig(algo::QuantizeConfig& c, const quant::QConfig& q) {
    c.act = q.act;
    const int group = c.layer.spec.groupSize;
    const bool actOrder = c.layer.spec.actOrder, staticGroups = c.layer.spec.staticGroups;
    c.layer.spec = q.weight;
    if (q.weight.groupSize <= 0) c.layer.spec.groupSize = group;
    c.layer.spec.actOrder = actOrder;
    c.layer.spec.staticGroups = staticGroups;
    c.exceptQuantizer = q.exceptQuantizer;
    c.migrate = q.migrate ? algo::Migration::OsPlus : algo::Migration::None;
  }

  static void recordMigration(runs::RunWriter& w, const algo::MigrationOutcome& m) {
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

  void writeArtifact(runs::RunWriter& w, const runs::Project& project, const algo::QuantizeConfig& c,
                     const std::string& yaml, const std::string& modelPath, const algo::PipelineResult& pr,
                     const algo::MigrationOutcome& m, at::ScalarType dtype) const {
    algo::QuantArtifact a;
    a.configYaml = yaml;
    a.modelPath = std::filesystem::absolute(modelPath).string();
    a.modelFingerprint = runs::fingerprintModel(modelPath);
    a.dtype = dtype == at::kHalf ? "float16" : dtype == at::kBFloat16 ? "bfloat16" : "float32";
    a.method = algo::methodName(c.layer.method);
    a.bits = c.layer.spec.bits;
    a.symmetric = c.layer.spec.symmetric;
    a.groupSize = c.layer.spec.chAxis == -1 ? -1 : c.layer.spec.groupSize;
    a.actOrder = c.layer.spec.actOrder;
    a.migration = algo::migrationName(m.method);
    a.migrations = m.records;
    a.grids = pr.grids;
    if (c.layer.spec.enabled() && pr.grids.size() != pr.sites.size())
      throw Error("quantize: " + std::to_string(pr.sites.size() - pr.grids.size()) +
                  " site(s) restored from a checkpoint written without integer grids; re-run without --resume to "
                  "get an exportable run");
    const std::string dir = project.dir() + "/" + artifactRel(w.id());
    std::filesystem::create_directories(dir);
    algo::writeQuantArtifact(dir + "/" + algo::kQuantArtifactFile, a);
    w.addArtifact({"quantized", dir, 0, ""});
  }

  static nlohmann::json migrationJson(const algo::MigrationOutcome& m) {
    nlohmann::json sites = nlohmann::json::array();
    for (size_t i = 0; i < m.before.size() && i < m.after.size(); ++i)
      sites.push_back({{"pair", m.before[i].pair}, {"site", m.before[i].site},
                       {"before", {{"max_abs", m.before[i].maxAbs}, {"kurtosis", m.before[i].kurtosis},
                                   {"asymmetry", m.before[i].asymmetry}}},
                       {"after", {{"max_abs", m.after[i].maxAbs}, {"kurtosis", m.after[i].kurtosis},
                                  {"asymmetry", m.after[i].asymmetry}}},
                       {"threshold", m.records[i].threshold}});
    return {{"method", algo::migrationName(m.method)}, {"seconds", m.seconds}, {"sites", sites}};
  }

  static void printMigration(const algo::MigrationOutcome& m) {
    if (m.method == algo::Migration::None) return;
    std::printf("%s migration (%.1f s): migrated site inputs, before -> after\n", algo::migrationName(m.method), m.seconds);
    std::printf("%-16s %-26s %21s %21s %21s\n", "pair", "site", "max|x|", "kurtosis", "asymmetry");
    for (size_t i = 0; i < m.before.size() && i < m.after.size(); ++i) {
      const auto& b = m.before[i];
      const auto& a = m.after[i];
      std::printf("%-16s %-26s %9.3f -> %8.3f %9.2f -> %8.2f %9.3f -> %8.3f\n", b.pair.c_str(), b.site.c_str(), b.maxAbs,
                  a.maxAbs, b.kurtosis, a.kurtosis, b.asymmetry, a.asymmetry);
    }
    std::printf("\n");
  }

  void add(CLI::Option* o) { configOptions_.push_back(o); }
  bool given(const std::string& name) const {
    for (auto* o : configOptions_)
      if (o->get_name() == name) return o->count() > 0;
    return false;
  }

  void applyFlags(algo::QuantizeConfig& c) const {
    if (given("--method")) c.layer.method = algo::parseMethod(method_);
    if (given("--wbits")) c.layer.spec.bits = wbits_;
    if (given("--groupsize")) c.layer.spec.groupSize = groupsize_;
    if (given("--act-order")) c.layer.spec.actOrder = actOrder_;
    if (given("--static-groups")) c.layer.spec.staticGroups = staticGroups_;
    if (given("--sym")) c.layer.spec.symmetric = sym_;
    if (given("--percdamp")) c.layer.percdamp = percdamp_;
    if (given("--num-iter")) c.layer.numIter = numIter_;
    if (given("--outlier")) c.layer.outlierFraction = outlier_;
    if (given("--structured-outlier")) c.layer.structuredOutlier = structured_;
    if (given("--nsamples")) c.nsamples = nsamples_;
    if (given("--seqlen")) c.seqlen = seqlen_;
    if (given("--seed")) c.seed = seed_;
    if (given("--dataset")) c.dataset = dataset_;
    if (given("--batch-size")) c.batchSize = batchSize_;
    if (given("--eval")) {
      c.eval.clear();
      if (eval_ != "none") {
        size_t start = 0;
        while (start <= eval_.size()) {
          size_t comma = eval_.find(',', start);
          std::string name = eval_.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          if (!name.empty()) c.eval.push_back(name);
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      }
    }
    if (given("--eval-seqlen")) c.evalSeqlen = evalSeqlen_;
    if (given("--eval-limit-windows")) c.evalLimitWindows = evalLimit_;
    try {
      if (given("--migrate")) c.migrate = algo::parseMigration(migrate_);
      if (given("--a-bits")) c.act.bits = aBits_;
      if (given("--a-quantizer"))
        c.act.granularity = aQuantizer_ == "per_token"   ? quant::Granularity::PerToken
                            : aQuantizer_ == "per_group" ? quant::Granularity::PerGroup
                            : aQuantizer_ == "per_tensor"
                                ? quant::Granularity::PerTensor
                                : throw Error("a_quantizer: '" + aQuantizer_ + "' is not per_tensor, per_token or per_group");
      if (given("--a-group-size")) c.act.groupSize = aGroupSize_;
      if (given("--a-symmetric")) c.act.symmetric = aSymmetric_;
      if (given("--a-observer")) c.act.observer = quant::parseActObserver(aObserver_, "a_observer");
      if (given("--sq-alpha")) c.sqAlpha = sqAlpha_;
      if (given("--search-steps")) c.osplusSearchSteps = searchSteps_;
      if (given("--search-tokens")) c.osplusSearchTokens = searchTokens_;
      c.validate();
    } catch (const qs::Error& e) {
      throw Error(std::string("quantize options: ") + e.what());
    }
  }

  runs::NewRun newRun(const algo::QuantizeConfig& c, const std::string& yaml, const std::string& modelPath,
                      int64_t resumedFrom) const {
    runs::NewRun n;
    n.name = c.label();
    n.kind = runs::RunKind::Quantize;
    n.modelPath = modelPath;
    n.modelFingerprint = runs::fingerprintModel(modelPath);
    n.configYaml = yaml;
    n.toolVersion = QS_VERSION;
    n.device = run_.device;
    if (resumedFrom > 0) n.notes = "resumed from run " + std::to_string(resumedFrom);
    return n;
  }

  static std::string protocol(const eval::PerplexityResult& r) {
    return r.protocol + " seqlen=" + std::to_string(r.seqlen);
  }

  static void record(runs::RunWriter& w, const algo::PipelineResult& pr, const std::vector<EvalSet>& evals) {
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

  nlohmann::json toJson(const algo::QuantizeConfig& c, const std::string& yaml, const algo::PipelineResult& pr,
                        const std::vector<EvalSet>& evals, int64_t runId) const {
    nlohmann::json sites = nlohmann::json::array();
    for (const auto& s : pr.sites)
      sites.push_back({{"block", s.block}, {"site", s.site}, {"group", s.group}, {"rel_error", s.relError},
                       {"bits", s.bitsPerWeight}, {"hessian_seconds", s.hessianSeconds},
                       {"quant_seconds", s.quantSeconds}, {"tokens", s.tokens}, {"resumed", s.resumed}});
    nlohmann::json ppl = nlohmann::json::object();
    for (const auto& e : evals)
      ppl[e.name] = {{"fp", e.fp.perplexity}, {"quantized", e.quantized.perplexity}, {"protocol", e.fp.protocol},
                     {"seqlen", e.fp.seqlen}, {"windows", e.fp.windows}};
    nlohmann::json j = {{"model", target_},     {"label", c.label()},
                        {"config", yaml},       {"sites", sites},
                        {"perplexity", ppl},    {"seconds", pr.seconds},
                        {"resumed_blocks", pr.resumedBlocks},
                        {"samples", pr.samples}, {"seqlen", pr.seqlen},
                        {"peak_memory_bytes", pr.peakMemoryBytes}, {"peak_memory_source", pr.peakMemorySource},
                        {"working_set_bytes", pr.peakWorkingBytes}};
    if (runId > 0) j["run_id"] = runId;
    return j;
  }

  void printSummary(const algo::QuantizeConfig& c, const algo::PipelineResult& pr, const std::vector<EvalSet>& evals,
                    int64_t runId, const std::string& runsPath) const {
    std::printf("%s: %lld calibration samples x %lld tokens, %d blocks", c.label().c_str(),
                static_cast<long long>(pr.samples), static_cast<long long>(pr.seqlen), pr.blocks);
    if (pr.resumedBlocks > 0) std::printf(" (%d restored from the checkpoint)", pr.resumedBlocks);
    std::printf("\n%-6s %-28s %12s %8s %9s\n", "block", "site", "rel. error", "bits", "seconds");
    for (const auto& s : pr.sites)
      std::printf("%-6d %-28s %12.4e %8.3f %9.3f%s\n", s.block, s.site.c_str(), s.relError, s.bitsPerWeight,
                  s.hessianSeconds + s.quantSeconds, s.resumed ? "  (restored)" : "");
    std::printf("quantized in %.1f s; peak memory %.1f MiB (%s), working set %.1f MiB\n", pr.seconds,
                pr.peakMemoryBytes / 1048576.0, pr.peakMemorySource.c_str(), pr.peakWorkingBytes / 1048576.0);
    if (!evals.empty()) {
      std::printf("\n%-12s %-28s %12s %12s\n", "dataset", "protocol", "FP", c.label().c_str());
      for (const auto& e : evals)
        std::printf("%-12s %-28s %12.4f %12.4f\n", e.name.c_str(), protocol(e.fp).c_str(), e.fp.perplexity,
                    e.quantized.perplexity);
      if (evals.front().fp.windows < evals.front().fp.totalWindows)
        std::printf("  first %lld of %lld windows (--eval-limit-windows)\n",
                    static_cast<long long>(evals.front().fp.windows), static_cast<long long>(evals.front().fp.totalWindows));
    }
    if (runId > 0)
      std::printf("stored as run %lld in %s\n", static_cast<long long>(runId), runsPath.c_str());
    else
      std::printf("not stored: %s is a model, not a project (qscope project init DIR --model %s)\n", target_.c_str(),
                  target_.c_str());
  }

  std::string target_, configFile_, method_, dataset_, eval_, dataDir_, migrate_, aQuantizer_, aObserver_, qconfig_;
  int aBits_ = 16, aGroupSize_ = 128, searchSteps_ = 100;
  int64_t searchTokens_ = 1024;
  double sqAlpha_ = 0.5;
  bool aSymmetric_ = false;
  int wbits_ = 4, groupsize_ = -1, numIter_ = 30, nsamples_ = 128, seqlen_ = 2048, batchSize_ = 8, evalSeqlen_ = 0;
  bool actOrder_ = false, staticGroups_ = false, sym_ = false, structured_ = false;
  double percdamp_ = 0.01, outlier_ = 0;
  uint64_t seed_ = 0;
  int64_t evalLimit_ = 0, resume_ = 0;
  std::vector<CLI::Option*> configOptions_;
  RunOptions run_;
  bool json_ = false, noProgress_ = false;
};

}  // namespace

std::unique_ptr<Command> makeQuantizeCommand() { return std::make_unique<QuantizeCommand>(); }

}  // namespace qs::cli
