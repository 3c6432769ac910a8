// qscope eval MODEL --dataset wikitext2: perplexity under the GPTQ protocol.
// qscope eval MODEL --tasks piqa,arc_easy,...: zero-shot tasks as lm-evaluation-harness scores
// them (docs/TASKS.md); both in one call when both are given. --project DIR stores an eval run.
// --precision FILE emulates a per-layer number-format config (weights and inputs, docs/FORMATS.md)
// during the evaluation; the run records the config, the average bits and each site's format.
// qscope eval RUN_ID -p PROJECT evaluates a stored quantize run: its model rebuilt from the run's
// artifact (exports/run-<id>/quantized.safetensors: migrations folded, dequantized weights) with
// the run's activation fake-quant recalibrated on its calibration set; without --dataset/--tasks
// the run's own perplexity protocol (first eval dataset, eval_seqlen, eval_limit_windows), so the
// number equals the one the quantize run stored. The eval run names its source (source_run).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "app/qscope/task_output.h"
#include "core/algo/precision_eval.h"
#include "core/algo/quantized_run.h"
#include "core/eval/outlier_metrics.h"
#include "core/eval/datasets.h"
#include "core/eval/perplexity.h"
#include "core/eval/system_info.h"
#include "core/eval/task_metrics.h"
#include "core/eval/tasks.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"
#include "core/quant/format_yaml.h"
#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"

namespace qs::cli {
namespace {

class EvalCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("eval", "Perplexity (GPTQ protocol) and zero-shot tasks (lm-eval-harness prompts)");
    cmd->add_option("model", model_, "model folder (Hugging Face layout), .gguf file, or the id of a quantize run "
                                     "of --project")
        ->required();
    datasetOpt_ = cmd->add_option("--dataset", dataset_, "wikitext2, ptb, or a path to a text file (default "
                                                         "wikitext2 unless only --tasks is given)")
                      ->capture_default_str();
    cmd->add_option("--data-dir", dataDir_, "folder holding text/ for named datasets (default: search "
                                            "$QS_DATA_DIR, ./data, ../shared/data)");
    seqlenOpt_ = cmd->add_option("--seqlen", ppl_.seqlen, "window length (0 = min(2048, model max positions))")
        ->capture_default_str();
    cmd->add_option("--batch-size", ppl_.batchSize, "windows per forward pass")->capture_default_str();
    limitOpt_ = cmd->add_option("--limit-windows", ppl_.limitWindows, "score only the first N windows (0 = all)")
        ->capture_default_str();
    cmd->add_option("--tasks", tasks_, "zero-shot tasks, comma-separated: piqa, arc_easy, arc_challenge, boolq, copa, "
                                       "openbookqa, winogrande, hellaswag, lambada (NAME=FILE for your own file)");
    cmd->add_option("--limit", taskLoad_.limit, "score only the first N examples of each task (0 = all)")
        ->capture_default_str();
    cmd->add_option("--task-dir", taskLoad_.taskDir, "folder holding the task files (default: search "
                                                     "$QS_DATA_DIR/tasks, ./data/tasks, ../shared/data/tasks)");
    cmd->add_option("--task-batch-size", ll_.batchSize, "task requests per forward pass")->capture_default_str();
    cmd->add_option("--max-length", ll_.maxLength, "task context limit in tokens, left-truncated (0 = model max "
                                                   "positions)")
        ->capture_default_str();
    cmd->add_flag("--add-bos", ll_.addBos, "prepend BOS to task prompts (the harness's add_bos_token; off by default)");
    cmd->add_option("--precision", precisionFile_,
                    "per-layer number formats (YAML, docs/FORMATS.md) emulated on weights and inputs");
    cmd->add_option("-p,--project", project_, "store the results as an eval run in this project's run store (and "
                                              "find RUN_ID there)");
    cmd->add_flag("--outlier-metrics", outliers_, "with the perplexity: max inf-norm (block and FFN outputs) and "
                                                  "kurtosis of every block output, in the same pass");
    addRunOptions(*cmd, run_);
    cmd->add_flag("--json", json_, "print the result as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    return cmd;
  }

  int run() override {
    auto load = resolveRunOptions(run_);
    const model::ExecOptions exec = resolveExecOptions(run_);
    std::optional<runs::Project> project;
    if (!project_.empty()) project = runs::Project::open(project_);
    // A run id: digits that name no file or folder.
    const bool runMode = !model_.empty() && model_.find_first_not_of("0123456789") == std::string::npos &&
                         !std::filesystem::exists(model_);
    std::optional<algo::QuantizedRun> qrun;
    if (runMode) {
      if (!project) throw Error("'" + model_ + "' is not a model folder; to evaluate quantize run " + model_ +
                                " name its project: qscope eval " + model_ + " -p PROJECT");
      if (!precisionFile_.empty())
        throw Error("--precision emulates formats on a model folder; a quantize run brings its own quantization");
      qrun.emplace(algo::findQuantizedRun(*project, std::stoll(model_)));
      if (dataDir_.empty()) dataDir_ = project->dataDir();
      // The run's perplexity protocol unless the command line names another.
      const auto& c = qrun->config;
      if (datasetOpt_->count() == 0 && !c.eval.empty()) dataset_ = c.eval.front();
      if (seqlenOpt_->count() == 0) ppl_.seqlen = c.evalSeqlen;
      if (limitOpt_->count() == 0) ppl_.limitWindows = c.evalLimitWindows;
      run_.dtype = qrun->artifact.dtype;  // the run's load dtype
    }
    const std::string modelPath = qrun ? qrun->artifact.modelPath : model_;
    if (qrun) {
      source_ = "  source_run: " + std::to_string(qrun->runId) + "\n  source_artifact: \"" + qrun->artifactPath + "\"\n";
      sourceName_ = "run " + std::to_string(qrun->runId) + " (" + qrun->name + ")";
    }
    modelPath_ = modelPath;
    // Only --tasks: skip perplexity unless --dataset was asked for too.
    const bool doTasks = !tasks_.empty();
    const bool doPpl = !doTasks || datasetOpt_->count() > 0;
    std::vector<eval::TaskSpec> specs;
    std::vector<eval::Task> tasks;
    if (doTasks) {
      specs = eval::parseTaskList(tasks_);
      for (auto& spec : specs) tasks.push_back(eval::loadTask(spec, taskLoad_));  // file errors before the model loads
    }
    std::optional<quant::LayerPrecision> precision;
    if (!precisionFile_.empty()) precision = quant::loadPrecisionConfig(precisionFile_);  // errors before the model loads

    std::optional<eval::DatasetText> text;
    if (doPpl) text = eval::loadDataset(dataset_, dataDir_);
    auto tokenizer = io::loadTokenizer(modelPath);
    std::vector<int32_t> tokens;
    double tokSeconds = 0;
    if (doPpl) {
      auto t0 = std::chrono::steady_clock::now();
      tokens = tokenizer->encode(text->text, true);
      tokSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    std::unique_ptr<model::Model> opened;
    if (qrun) {
      ProgressBar bar("run " + model_, !noProgress_);
      algo::loadQuantizedRunModel(*qrun, dataDir_, load.device, bar, exec);
      bar.finish();
    } else {
      opened = model::openModel(model_, load);
      opened->setExecOptions(exec);
    }
    model::Model* const model = qrun ? qrun->model.get() : opened.get();
    std::unique_ptr<algo::PrecisionEmulator> emulator;
    algo::PrecisionSummary summary;
    if (precision) {
      emulator = std::make_unique<algo::PrecisionEmulator>(*model);
      ProgressBar bar("formats", !noProgress_);
      summary = emulator->apply(*precision, bar);
      for (int r : summary.unusedRules)
        std::fprintf(stderr, "qscope: warning: %s: rule '%s' matches no site of this model\n", precisionFile_.c_str(),
                     precision->rules()[static_cast<size_t>(r)].name.c_str());
    }

    std::unique_ptr<runs::RunWriter> writer;
    if (project) writer = std::make_unique<runs::RunWriter>(project->runsPath(), newRun(specs, precision));
    eval::PerplexityResult r;
    std::vector<eval::TaskResult> taskResults;
    try {
      if (doPpl) {
        ProgressBar bar("eval", !noProgress_);
        if (outliers_) {
          outlierResult_ = eval::evaluateOutlierMetrics(*model, tokens, ppl_, bar);
          r = outlierResult_.perplexity;
        } else {
          r = eval::evaluatePerplexity(*model, tokens, ppl_, bar);
        }
      }
      for (auto& task : tasks) {
        ProgressBar bar(task.info.name, !noProgress_);
        taskResults.push_back(eval::evaluateTask(*model, *tokenizer, task, ll_, bar));
      }
      if (writer) {
        if (precision) recordPrecision(*writer, *model, summary);
        if (doPpl)
          writer->addMetric({"ppl." + text->name, r.perplexity,
                             r.protocol + " seqlen=" + std::to_string(r.seqlen), "", r.windows, NAN});
        if (doPpl && outliers_)
          for (const auto& [key, value] : outlierResult_.namedValues())
            writer->addMetric({key, value, outlierResult_.protocol() + " " + text->name, "", r.windows, NAN});
        for (auto& t : taskResults)
          for (auto& m : t.metrics)
            writer->addMetric({t.task + "/" + m.name, m.value, eval::taskProtocol(t.task), "", t.n, m.stdError});
        writer->finish();
      }
    } catch (const qs::Cancelled&) {
      if (writer) writer->cancel();  // a cancelled run keeps no metrics
      throw;
    } catch (const std::exception& e) {
      if (writer) writer->fail(e.what());
      throw;
    }

    long long rss = eval::peakRssBytes();
    if (qrun && !json_)
      std::printf("%s: %s rebuilt from %s%s\n", sourceName_.c_str(), qrun->config.label().c_str(),
                  qrun->artifactPath.c_str(), qrun->act ? ", activation ranges recalibrated on its calibration set" : "");
    if (json_) {
      nlohmann::json j = {{"model", modelPath_}};
      if (qrun) j["source_run"] = qrun->runId;
      if (doPpl) {
        j.update({{"dataset", text->name},
                  {"dataset_path", text->path},
                  {"protocol", r.protocol},
                  {"perplexity", r.perplexity},
                  {"mean_loss", r.meanLoss},
                  {"seqlen", r.seqlen},
                  {"windows", r.windows},
                  {"total_windows", r.totalWindows},
                  {"dataset_tokens", r.datasetTokens},
                  {"tokens_evaluated", r.tokensEvaluated},
                  {"seconds", r.seconds},
                  {"tokens_per_second", r.tokensPerSecond},
                  {"tokenize_seconds", tokSeconds},
                  {"streamed", r.streamed},
                  {"execution", r.execution}});
      }
      if (doPpl && outliers_) {
        nlohmann::json o = {{"protocol", outlierResult_.protocol()}};
        for (const auto& [key, value] : outlierResult_.namedValues()) o[key.substr(8)] = value;  // no "outlier."
        j["outlier_metrics"] = o;
      }
      if (doTasks) j["tasks"] = tasksJson(taskResults);
      if (precision) j["precision"] = precisionJson(summary);
      j.update({{"tokenizer", tokenizer->kind()},
                {"device", run_.device},
                {"dtype", run_.dtype},
                {"threads", at::get_num_threads()},
                {"peak_rss_bytes", rss}});
      if (writer) j["run_id"] = writer->id();
      printJson(j);
    } else {
      if (doPpl) {
        std::printf("%s perplexity: %.4f\n", text->name.c_str(), r.perplexity);
        std::printf("  protocol %s, seqlen %d, %s windows of %s (%s tokens scored of %s)\n", r.protocol.c_str(),
                    r.seqlen, formatThousands(r.windows).c_str(), formatThousands(r.totalWindows).c_str(),
                    formatThousands(r.tokensEvaluated).c_str(), formatThousands(r.datasetTokens).c_str());
        std::printf("  %s on %s, %.1f s, %.0f tokens/s, peak RSS %.0f MiB\n", run_.dtype.c_str(),
                    run_.device.c_str(), r.seconds, r.tokensPerSecond, rss / 1048576.0);
        std::printf("  ran %s\n", r.execution.c_str());
        if (outliers_) {
          const auto& o = outlierResult_;
          std::printf("  max inf-norm %.2f (FFN output %.2f), kurtosis avg %.2f max %.2f (block outputs)\n",
                      o.maxInfNorm, o.ffnMaxInfNorm, o.kurtosisAvg, o.kurtosisMax);
          for (const auto& l : o.layers)
            std::printf("    layer %d: inf-norm %.2f, FFN %.2f, kurtosis %.2f\n", l.layer, l.infNorm, l.ffnInfNorm,
                        l.kurtosis);
        }
      }
      if (doTasks) printTasks(taskResults, run_.dtype + " on " + run_.device, rss);
      if (precision) printPrecision(summary);
      if (writer) std::printf("stored as run %lld in %s\n", static_cast<long long>(writer->id()), project->runsPath().c_str());
    }
    return 0;
  }

 private:
  runs::NewRun newRun(const std::vector<eval::TaskSpec>& specs, const std::optional<quant::LayerPrecision>& precision) const {
    std::string names, yaml = "eval:\n";
    for (auto& s : specs) names += (names.empty() ? "" : ",") + s.name + (s.file.empty() ? "" : "=" + s.file);
    if (!tasks_.empty()) {
      yaml += "  tasks: \"" + names + "\"\n  limit: " + std::to_string(taskLoad_.limit) +
              "\n  task_dir: \"" + taskLoad_.taskDir + "\"\n  task_batch_size: " + std::to_string(ll_.batchSize) +
              "\n  max_length: " + std::to_string(ll_.maxLength) + "\n  add_bos: " + (ll_.addBos ? "true" : "false") +
              "\n";
    }
    if (tasks_.empty() || datasetOpt_->count() > 0)
      yaml += "  dataset: \"" + dataset_ + "\"\n  seqlen: " + std::to_string(ppl_.seqlen) +
              "\n  batch_size: " + std::to_string(ppl_.batchSize) + "\n  limit_windows: " +
              std::to_string(ppl_.limitWindows) + "\n" + (outliers_ ? "  outlier_metrics: true\n" : "");
    yaml += "  device: " + run_.device + "\n  dtype: " + run_.dtype + "\n";
    if (precision) yaml += "  precision_file: \"" + precisionFile_ + "\"\n" + quant::precisionToYaml(*precision);
    yaml += source_;
    runs::NewRun n;
    n.name = "eval " + (names.empty() ? dataset_ : names) + (precision ? " (precision)" : "") +
             (sourceName_.empty() ? "" : " of " + sourceName_);
    n.kind = runs::RunKind::Eval;
    n.modelPath = modelPath_;
    if (!sourceName_.empty()) n.notes = "evaluates " + sourceName_;
    n.configYaml = yaml;
    n.toolVersion = QS_VERSION;
    n.device = run_.device;
    return n;
  }

  // Average bits as metrics, each site's formats and bits as a layer result (the GUI's per-layer view).
  static void recordPrecision(runs::RunWriter& writer, const model::Model& model, const algo::PrecisionSummary& s) {
    writer.addMetric({"bits.weight", s.weightBits, "element-weighted mean, none = 32", "bits", s.weightElements, NAN});
    writer.addMetric({"bits.input", s.inputBits, "in-feature-weighted mean, none = 32", "bits",
                      static_cast<int64_t>(s.sites.size()), NAN});
    writer.addMetric({"density.arithmetic", s.weightArithmeticDensity, "first-order MAC cells vs fp32 (FORMATS.md)", "x",
                      s.weightElements, NAN});
    const auto& sites = model.sites();
    for (size_t i = 0; i < s.sites.size(); ++i) {
      const auto& site = s.sites[i];
      runs::LayerResult r;
      r.layer = sites[i].block;
      r.site = site.name;
      r.bits = site.weightBits;
      r.extraJson = nlohmann::json({{"weight", site.weight.toString()},
                                    {"input", site.input.toString()},
                                    {"input_bits", site.inputBits},
                                    {"rule", site.rule}})
                        .dump();
      writer.addLayerResult(r);
    }
  }

  static nlohmann::json precisionJson(const algo::PrecisionSummary& s) {
    auto sites = nlohmann::json::array();
    for (const auto& site : s.sites)
      sites.push_back({{"site", site.name},
                       {"weight", site.weight.toString()},
                       {"input", site.input.toString()},
                       {"weight_bits", site.weightBits},
                       {"input_bits", site.inputBits},
                       {"rule", site.rule}});
    return {{"weight_bits", s.weightBits},
            {"input_bits", s.inputBits},
            {"memory_density", s.weightBits > 0 ? 32.0 / s.weightBits : 0.0},
            {"arithmetic_density", s.weightArithmeticDensity},
            {"sites", sites}};
  }

  void printPrecision(const algo::PrecisionSummary& s) const {
    std::printf("precision %s: %s\n", precisionFile_.c_str(), s.describe().c_str());
    std::map<std::string, int> counts;  // "weight -> input" : sites
    for (const auto& site : s.sites) ++counts["W " + site.weight.toString() + "  A " + site.input.toString()];
    for (const auto& [k, n] : counts) std::printf("  %3d sites  %s\n", n, k.c_str());
  }

  std::string model_, dataset_ = "wikitext2", dataDir_;
  std::string modelPath_, source_, sourceName_;  // the model evaluated; a source run's config lines and name
  CLI::Option* datasetOpt_ = nullptr;
  CLI::Option* seqlenOpt_ = nullptr;
  CLI::Option* limitOpt_ = nullptr;
  eval::PerplexityOptions ppl_;
  std::string tasks_, project_, precisionFile_;
  bool outliers_ = false;
  eval::OutlierMetrics outlierResult_;
  eval::TaskLoadOptions taskLoad_;
  eval::LoglikelihoodOptions ll_;
  RunOptions run_;
  bool json_ = false, noProgress_ = false;
};

}  // namespace

std::unique_ptr<Command> makeEvalCommand() { return std::make_unique<EvalCommand>(); }

}  // namespace qs::cli
