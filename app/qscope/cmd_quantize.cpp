// qscope quantize PROJECT|MODEL [--config cfg.yaml] [--method ... --wbits ...]: the layer-wise
// weight quantization pipeline (core/algo/pipeline.h) with perplexity before and after.
// With a PROJECT the run is stored (resolved config, metrics, per-layer results) and
// checkpointed after every block under exports/.resume-<run>/, so a killed run continues with
// --resume RUN_ID. With a MODEL the result is printed only. Ctrl-C cancels: the run is marked
// cancelled with no rows and its checkpoint is removed.
// --migrate osplus|smoothquant folds outlier migration into the FP model first (calibrated on the
// same calibration set), then the weight method runs block by block, then evaluation runs with
// activation fake-quant when --a-bits < 16. A project run also stores the migration statistics
// (before/after per migrated site) and exports/run-<id>/quantized.safetensors for `qscope export`
// and `qscope eval RUN`. --eval-tasks piqa,arc_easy,... scores zero-shot tasks on the FP and the
// quantized model in the same job (stored as "fp/piqa/acc" and "piqa/acc").
// The steps themselves are core/workflow/project_jobs.h's runQuantize, which the GUI's Quantize
// job runs too; this command resolves the options and prints the report.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "app/qscope/task_output.h"
#include "core/algo/quantize_config.h"
#include "core/eval/tasks.h"
#include "core/quant/format_yaml.h"
#include "core/quant/qconfig_yaml.h"
#include "core/runs/project.h"
#include "core/util/error.h"
#include "core/util/log.h"
#include "core/workflow/preflight.h"
#include "core/workflow/project_jobs.h"

namespace qs::cli {
namespace {

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
    add(cmd->add_option("--target", gridTarget_,
                        "quantize onto a llama.cpp type's exact grid: gguf:Q4_0, gguf:Q5_0, gguf:Q8_0 (its bits, "
                        "blocks of 32 and fp16 block scale; config observer: ggml), gguf:Q2_K, gguf:Q3_K, gguf:Q4_K, "
                        "gguf:Q5_K, gguf:Q6_K (sub-block scales and minimums under fp16 super-block factors as "
                        "llama.cpp chooses them, static groups; observer: ggml_k), or a K mix gguf:Q4_K_M, Q4_K_S, "
                        "Q5_K_M, Q5_K_S, Q3_K_L, Q3_K_M, Q3_K_S (each layer on the grid of the type llama-quantize's "
                        "mix gives it; config gguf_mix); `qscope export --format gguf` then writes the codes the "
                        "method chose"));
    add(cmd->add_option("--percdamp", percdamp_, "GPTQ dampening as a fraction of the mean Hessian diagonal"));
    add(cmd->add_option("--num-iter", numIter_, "QuantEase sweeps"));
    add(cmd->add_option("--quantease-init", quanteaseInit_,
                        "QuantEase start: best (from W and from GPTQ's rounding, the better kept; default), weights "
                        "(the reference's), rtn or gptq"));
    add(cmd->add_option("--outlier", outlier_, "QuantEase: fraction of weights kept in full precision (0.01 = 1%)"));
    add(cmd->add_flag("--structured-outlier", structured_, "outliers as whole input columns"));
    add(cmd->add_option("--nsamples", nsamples_, "calibration sequences"));
    add(cmd->add_option("--seqlen", seqlen_, "tokens per calibration sequence"));
    add(cmd->add_option("--seed", seed_, "seed of the calibration windows"));
    add(cmd->add_option("--dataset", dataset_, "calibration text, never an evaluation split: wikitext2 (= "
                                               "wikitext2-valid, the validation split), ptb (= ptb-valid), brown, austen, "
                                               "or a text/.jsonl file"));
    add(cmd->add_flag("--calibrate-rtn", calibrateRtn_, "RTN: measure the error on calibration inputs (a calibration "
                                                         "pass; by default RTN runs none and reports the weight error)"));
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
    add(cmd->add_option("--precision", precision_, "per-layer number formats (YAML, docs/FORMATS.md) emulated on the "
                                                   "quantized model's weights and inputs during its evaluation"));
    add(cmd->add_option("--sq-alpha", sqAlpha_, "SmoothQuant migration strength"));
    add(cmd->add_option("--search-steps", searchSteps_, "OS+ threshold candidates - 1"));
    add(cmd->add_option("--osplus-search", osplusSearch_,
                        "OS+ threshold search: refine (coarse to fine, ~20 candidates) or grid (every candidate); "
                        "config osplus_search"));
    add(cmd->add_option("--search-tokens", searchTokens_, "OS+ calibration tokens per pair in the search"));
    add(cmd->add_flag("--no-shift", noShift_, "OS+ without channel shifting (scaling only; config osplus_shift: false)"));
    add(cmd->add_flag("--no-scale", noScale_, "OS+ without channel scaling (shifting only; config osplus_scale: false)"));
    add(cmd->add_option("--osplus-threshold", osplusThreshold_,
                        "OS+ fixed clipping threshold t, s = max(1, r / t) (0 = search it; config osplus_threshold)"));
    add(cmd->add_option("--qconfig", qconfig_, "OS+-style q-config YAML (a_qconfig, w_qconfig bit/symmetric/ch_axis, "
                                               "except_quantizer, migrate) applied before the flags; its calibrate/max_length are not "
                                               "used (--nsamples/--seqlen)"));
    add(cmd->add_option("--eval-tasks", evalTasks_, "zero-shot tasks scored before and after, comma-separated: piqa, "
                                                   "arc_easy, arc_challenge, boolq, copa, openbookqa, winogrande, "
                                                   "hellaswag, lambada (NAME=FILE for your own file; \"none\" = skip)"));
    add(cmd->add_option("--eval-tasks-limit", evalTasksLimit_, "score only the first N examples of each task (0 = all)"));
    cmd->add_option("--task-dir", taskDir_, "folder holding the task files (default: search $QS_DATA_DIR/tasks, "
                                            "./data/tasks, ../shared/data/tasks)");
    cmd->add_option("--resume", resume_, "continue the killed quantize run RUN_ID of this project from its last "
                                         "finished block (same config)");
    cmd->add_option("--data-dir", dataDir_, "folder holding text/ for named datasets");
    cmd->add_option("--bundle", bundle_, "record the run in this folder (runs.sqlite + exports/) instead of the "
                                         "project's store; cluster jobs do, and the coordinator imports it once "
                                         "(qscope jobs sync)");
    addRunOptions(*cmd, run_);
    cmd->add_flag("--json", json_, "print the result as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    cmd->add_flag("--dry-run", dryRun_, "print the pre-flight estimate (memory per stage, peak, time from a short "
                                        "probe) and stop; nothing is written");
    cmd->add_flag("--no-preflight", noPreflight_, "skip printing the pre-flight estimate (the memory check still runs)");
    return cmd;
  }

  int run() override {
    resolveRunOptions(run_);  // threads; --device/--dtype errors name the flag
    std::optional<runs::Project> project;
    if (runs::Project::isProject(target_)) project = runs::Project::open(target_);
    if (project && !bundle_.empty()) project->redirectStore(bundle_);
    workflow::QuantizeJobOptions o;
    (project ? o.projectDir : o.modelPath) = target_;
    o.dataDir = dataDir_;
    o.bundleDir = bundle_;
    o.taskDir = taskDir_;
    o.device = run_.device;
    o.dtype = run_.dtype;
    o.exec = resolveExecOptions(run_);
    o.toolVersion = QS_VERSION;
    if (resume_ > 0) {
      if (!project) throw Error("--resume needs a project folder (runs and checkpoints live there), got " + target_);
      for (auto* opt : configOptions_)
        if (opt->count() > 0) throw Error("--resume continues run " + std::to_string(resume_) +
                                          " with its stored config; leave out " + opt->get_name());
      if (!configFile_.empty()) throw Error("--resume uses the stored config; leave out --config");
      o.resumeRunId = resume_;
    } else {
      // defaults < project default < --config < --qconfig < flags, resolved here, stored whole.
      algo::QuantizeConfig cfg;
      if (project && configFile_.empty() && !project->defaultConfig("quantize").empty())
        cfg = algo::loadQuantizeConfig(project->defaultConfig("quantize"));
      if (!configFile_.empty()) cfg = algo::loadQuantizeConfig(configFile_, cfg);
      if (!qconfig_.empty()) algo::applyQConfig(cfg, quant::loadQConfig(qconfig_));
      applyFlags(cfg);
      o.configYaml = algo::toYaml(cfg);
      o.configName = "quantize options";
    }

    // -q (warnings and errors only) skips the printed estimate as --no-preflight does.
    if (dryRun_ || (!noPreflight_ && log::level() <= log::Level::Info)) {
      workflow::QuantizePreflight pre;
      {
        ProgressBar bar("pre-flight", !noProgress_);
        pre = workflow::preflightQuantize(o, /*probe=*/true, bar);
        bar.finish();
      }
      if (dryRun_) {
        if (json_) printJson(preflightJson(pre));
        else std::fputs(workflow::describePreflight(pre).c_str(), stdout);
        return pre.fits ? 0 : 1;
      }
      std::fputs(workflow::describePreflight(pre).c_str(), stderr);
    }

    workflow::QuantizeReport r;
    {
      ProgressBar bar("quantize", !noProgress_);
      r = workflow::runQuantize(o, bar);
      bar.finish();
    }
    if (json_) {
      nlohmann::json j = toJson(r);
      j["migration"] = migrationJson(r);
      if (r.runId > 0) j["artifact"] = std::filesystem::relative(r.artifactPath, project->dir()).string();
      printJson(j);
    } else {
      printMigration(r);
      printSummary(r, project ? project->runsPath() : "");
      if (r.runId > 0)
        std::printf("quantized artifact: %s (qscope export %lld -p %s --format ..., qscope eval %lld -p %s)\n",
                    r.artifactPath.c_str(), static_cast<long long>(r.runId), project->dir().c_str(),
                    static_cast<long long>(r.runId), project->dir().c_str());
    }
    return 0;
  }

 private:
  static nlohmann::json migrationJson(const workflow::QuantizeReport& r) {
    nlohmann::json sites = nlohmann::json::array();
    for (const auto& m : r.migrationSites)
      sites.push_back({{"pair", m.pair}, {"site", m.site},
                       {"before", {{"max_abs", m.maxAbsBefore}, {"kurtosis", m.kurtosisBefore},
                                   {"asymmetry", m.asymmetryBefore}}},
                       {"after", {{"max_abs", m.maxAbsAfter}, {"kurtosis", m.kurtosisAfter},
                                  {"asymmetry", m.asymmetryAfter}}},
                       {"threshold", m.threshold},
                       {"objective", {{"before", m.objectiveBefore}, {"after", m.objectiveAfter}}}});
    return {{"method", r.migration}, {"seconds", r.migrationSeconds}, {"sites", sites}};
  }

  static void printMigration(const workflow::QuantizeReport& r) {
    if (r.migration == "none") return;
    std::printf("%s migration (%.1f s): migrated site inputs, before -> after\n", r.migration.c_str(), r.migrationSeconds);
    std::printf("%-16s %-26s %21s %21s %21s\n", "pair", "site", "max|x|", "kurtosis", "asymmetry");
    for (const auto& m : r.migrationSites)
      std::printf("%-16s %-26s %9.3f -> %8.3f %9.2f -> %8.2f %9.3f -> %8.3f\n", m.pair.c_str(), m.site.c_str(),
                  m.maxAbsBefore, m.maxAbsAfter, m.kurtosisBefore, m.kurtosisAfter, m.asymmetryBefore, m.asymmetryAfter);
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
    if (given("--target")) algo::applyGridTarget(c, gridTarget_);  // explicit flags below win
    if (given("--wbits")) c.layer.spec.bits = wbits_;
    if (given("--groupsize")) c.layer.spec.groupSize = groupsize_;
    if (given("--act-order")) c.layer.spec.actOrder = actOrder_;
    if (given("--static-groups")) c.layer.spec.staticGroups = staticGroups_;
    if (given("--sym")) c.layer.spec.symmetric = sym_;
    if (given("--percdamp")) c.layer.percdamp = percdamp_;
    if (given("--num-iter")) c.layer.numIter = numIter_;
    if (given("--quantease-init")) c.layer.quanteaseInit = algo::parseQuantEaseInit(quanteaseInit_);
    if (given("--outlier")) c.layer.outlierFraction = outlier_;
    if (given("--structured-outlier")) c.layer.structuredOutlier = structured_;
    if (given("--nsamples")) c.nsamples = nsamples_;
    if (given("--seqlen")) c.seqlen = seqlen_;
    if (given("--seed")) c.seed = seed_;
    if (given("--dataset")) c.dataset = dataset_;
    if (given("--calibrate-rtn")) c.calibrateRtn = calibrateRtn_;
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
    if (given("--eval-tasks")) {
      c.evalTasks.clear();
      try {
        if (evalTasks_ != "none")
          for (const auto& spec : eval::parseTaskList(evalTasks_))
            c.evalTasks.push_back(spec.file.empty() ? spec.name : spec.name + "=" + spec.file);
      } catch (const qs::Error& e) {
        throw Error(std::string("--eval-tasks: ") + e.what());
      }
    }
    if (given("--eval-tasks-limit")) c.evalTasksLimit = evalTasksLimit_;
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
      if (given("--precision")) c.precision = quant::precisionToYaml(quant::loadPrecisionConfig(precision_));
      if (given("--search-steps")) c.osplusSearchSteps = searchSteps_;
      if (given("--search-tokens")) c.osplusSearchTokens = searchTokens_;
      if (given("--osplus-search")) c.osplusSearch = algo::parseOsPlusSearch(osplusSearch_);
      if (given("--no-shift")) c.osplusShift = false;
      if (given("--no-scale")) c.osplusScale = false;
      if (given("--osplus-threshold")) c.osplusThreshold = osplusThreshold_;
      c.validate();
    } catch (const qs::Error& e) {
      throw Error(std::string("quantize options: ") + e.what());
    }
  }

  nlohmann::json toJson(const workflow::QuantizeReport& r) const {
    nlohmann::json sites = nlohmann::json::array();
    for (const auto& s : r.sites)
      sites.push_back({{"block", s.block}, {"site", s.site}, {"group", s.group}, {"rel_error", s.relError},
                       {"bits", s.bitsPerWeight}, {"hessian_seconds", s.hessianSeconds},
                       {"quant_seconds", s.quantSeconds}, {"tokens", s.tokens}, {"resumed", s.resumed}});
    nlohmann::json ppl = nlohmann::json::object();
    for (const auto& e : r.perplexity)
      ppl[e.dataset] = {{"fp", e.fp}, {"quantized", e.quantized}, {"protocol", e.protocol},
                        {"seqlen", e.seqlen}, {"windows", e.windows}};
    nlohmann::json j = {{"model", target_},     {"label", r.label},
                        {"config", r.configYaml}, {"sites", sites},
                        {"perplexity", ppl},    {"seconds", r.seconds},
                        {"resumed_blocks", r.resumedBlocks},
                        {"samples", r.samples}, {"seqlen", r.seqlen},
                        {"peak_memory_bytes", r.peakMemoryBytes}, {"peak_memory_source", r.peakMemorySource},
                        {"working_set_bytes", r.workingSetBytes},
                        {"streamed", r.streamed}, {"execution", r.execution}};
    if (!r.tasksFp.empty()) j["tasks"] = {{"fp", tasksJson(r.tasksFp)}, {"quantized", tasksJson(r.tasksQuantized)}};
    if (r.runId > 0) j["run_id"] = r.runId;
    return j;
  }

  static nlohmann::json preflightJson(const workflow::QuantizePreflight& p) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& it : p.items) items.push_back({{"what", it.what}, {"bytes", it.bytes}});
    nlohmann::json j = {{"model", p.model},          {"label", p.label},
                        {"blocks", p.blocks},        {"parameters", p.parameters},
                        {"streaming", p.streaming},  {"execution", p.execution},
                        {"budget_bytes", p.budgetBytes}, {"budget_source", p.budgetSource},
                        {"peak_bytes", p.peakBytes}, {"peak_phase", p.peakPhase},
                        {"items", items},            {"fits", p.fits},
                        {"advice", p.advice}};
    if (p.probed)
      j["time"] = {{"total_seconds", p.totalSeconds},           {"load_seconds_per_block", p.loadSecondsPerBlock},
                   {"migration_seconds", p.migrationSeconds},
                   {"calibration_seconds", p.calibrationSeconds}, {"quantizer_seconds", p.quantizerSeconds},
                   {"evaluation_seconds", p.evaluationSeconds}, {"probe_seconds", p.probeSeconds},
                   {"basis", p.timeBasis}};
    return j;
  }

  void printSummary(const workflow::QuantizeReport& r, const std::string& runsPath) const {
    std::printf("%s: %lld calibration samples x %lld tokens, %d blocks", r.label.c_str(),
                static_cast<long long>(r.samples), static_cast<long long>(r.seqlen), r.blocks);
    if (r.resumedBlocks > 0) std::printf(" (%d restored from the checkpoint)", r.resumedBlocks);
    std::printf("\n%-6s %-28s %12s %8s %9s\n", "block", "site", "rel. error", "bits", "seconds");
    for (const auto& s : r.sites)
      std::printf("%-6d %-28s %12.4e %8.3f %9.3f%s\n", s.block, s.site.c_str(), s.relError, s.bitsPerWeight,
                  s.hessianSeconds + s.quantSeconds, s.resumed ? "  (restored)" : "");
    if (!r.sites.empty() && r.sites.front().errorOnWeights)
      std::printf("(rel. error of RTN: ||W - W^||^2 / ||W||^2 on the weights, no calibration pass; "
                  "calibrate_rtn: true measures it on calibration inputs)\n");
    std::printf("quantized in %.1f s; peak memory %.1f MiB (%s), working set %.1f MiB\n", r.seconds,
                static_cast<double>(r.peakMemoryBytes) / 1048576.0, r.peakMemorySource.c_str(),
                static_cast<double>(r.workingSetBytes) / 1048576.0);
    std::printf("ran %s\n", r.execution.c_str());
    if (!r.perplexity.empty()) {
      std::printf("\n%-12s %-28s %12s %12s\n", "dataset", "protocol", "FP", r.label.c_str());
      for (const auto& e : r.perplexity)
        std::printf("%-12s %-28s %12.4f %12.4f\n", e.dataset.c_str(),
                    (e.protocol + " seqlen=" + std::to_string(e.seqlen)).c_str(), e.fp, e.quantized);
      if (r.perplexity.front().windows < r.perplexity.front().totalWindows)
        std::printf("  first %lld of %lld windows (--eval-limit-windows)\n",
                    static_cast<long long>(r.perplexity.front().windows),
                    static_cast<long long>(r.perplexity.front().totalWindows));
    }
    if (!r.tasksFp.empty()) {
      const std::string where = run_.dtype + " on " + run_.device;
      std::printf("\nzero-shot tasks, FP:\n");
      printTasks(r.tasksFp, where);
      std::printf("\nzero-shot tasks, %s:\n", r.label.c_str());
      printTasks(r.tasksQuantized, where);
    }
    if (r.runId > 0)
      std::printf("stored as run %lld in %s\n", static_cast<long long>(r.runId), runsPath.c_str());
    else
      std::printf("not stored: %s is a model, not a project (qscope project init DIR --model %s)\n", target_.c_str(),
                  target_.c_str());
  }

  std::string target_, configFile_, method_, quanteaseInit_, dataset_, eval_, dataDir_, migrate_, aQuantizer_, aObserver_, qconfig_;
  std::string evalTasks_, taskDir_, gridTarget_, bundle_, osplusSearch_ = "refine";
  int64_t evalTasksLimit_ = 0;
  int aBits_ = 16, aGroupSize_ = 128, searchSteps_ = 100;
  int64_t searchTokens_ = 1024;
  bool noShift_ = false, noScale_ = false;
  double osplusThreshold_ = 0;
  std::string precision_;
  double sqAlpha_ = 0.5;
  bool aSymmetric_ = false;
  int wbits_ = 4, groupsize_ = -1, numIter_ = 30, nsamples_ = 128, seqlen_ = 2048, batchSize_ = 8, evalSeqlen_ = 0;
  bool actOrder_ = false, staticGroups_ = false, sym_ = false, structured_ = false;
  double percdamp_ = 0.01, outlier_ = 0;
  uint64_t seed_ = 0;
  int64_t evalLimit_ = 0, resume_ = 0;
  std::vector<CLI::Option*> configOptions_;
  RunOptions run_;
  bool dryRun_ = false, noPreflight_ = false, calibrateRtn_ = false;
  bool json_ = false, noProgress_ = false;
};

}  // namespace

std::unique_ptr<Command> makeQuantizeCommand() { return std::make_unique<QuantizeCommand>(); }

}  // namespace qs::cli
