// qscope analyze PROJECT|MODEL: where a model's outliers live. Draws calibration samples, runs
// them through the model once with statistics at every Linear input and block output, stores
// an `analysis` run in the project's run store and prints the layer x site summary.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/analysis/analyze.h"
#include "core/analysis/run_stats.h"
#include "core/analysis/stat_names.h"
#include "core/eval/datasets.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/runs/fingerprint.h"
#include "core/runs/project.h"
#include "core/util/error.h"
#include "core/workflow/project_jobs.h"

namespace qs::cli {
namespace {

using nlohmann::json;

std::string num(double v, int digits = 4) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

// A token's text made printable in one table cell.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20) out += "?";
    else out += static_cast<char>(c);
  }
  return "'" + out + "'";
}

// Columns padded to their widest cell; numbers right-aligned.
void printTable(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right) {
  std::vector<size_t> w;
  auto width = [](const std::string& s) {  // UTF-8 code points, for token texts
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], width(r[i]));
    }
  for (const auto& r : rows) {
    std::string line = "  ";
    for (size_t i = 0; i < r.size(); ++i) {
      std::string pad(w[i] - width(r[i]), ' ');
      bool rt = i < right.size() && right[i];
      line += rt ? pad + r[i] : r[i] + (i + 1 < r.size() ? pad : "");
      if (i + 1 < r.size()) line += "  ";
    }
    std::printf("%s\n", line.c_str());
  }
}

json topTokensJson(const analysis::SiteResult& s) {
  json out = json::array();
  for (const auto& t : s.topTokens)
    out.push_back({{"id", t.id}, {"text", t.text}, {"sample", t.sample}, {"position", t.position},
                   {"channel", t.channel}, {"absmax", t.value}});
  return out;
}

json jsonNumber(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

class AnalyzeCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("analyze", "Activation and weight outlier statistics over calibration samples");
    cmd->footer(
        "Where results go: given a PROJECT folder, the run is stored in its runs.sqlite (see `qscope runs show ID`,\n"
        "`qscope stats ID --layer L --site S --csv`, `qscope plot ID`). Given a MODEL, the summary is printed and\n"
        "nothing is written, unless --project DIR names a project to store the run in.\n"
        "Samples are GPTQ-style: the text is tokenized once and --samples windows of --seqlen tokens start at\n"
        "offsets drawn with std::mt19937_64(--seed), so a seed gives the same samples on every machine.\n"
        "Kurtosis is Pearson's m4/m2^2 (3 for a Gaussian). Outlier channels: absmax > --outlier-threshold and\n"
        "> --outlier-factor x the median channel absmax of the site.");
    cmd->add_option("target", target_, "project folder, or a model folder / .gguf file")->required();
    cmd->add_option("--project,-p", projectDir_, "store the run in this project (when TARGET is a model)");
    cmd->add_option("--name", name_, "run name shown in `qscope runs list` (default: analysis N x L)");
    cmd->add_option("--samples,-n", cal_.samples, "calibration samples")->capture_default_str();
    cmd->add_option("--seqlen", cal_.seqlen, "tokens per sample")->capture_default_str();
    cmd->add_option("--dataset", dataset_,
                    "wikitext2, ptb, or a .txt/.jsonl path (default: the project's first dataset, else wikitext2)");
    cmd->add_option("--data-dir", dataDir_, "folder holding text/ for named datasets");
    cmd->add_option("--seed", cal_.seed, "sampling seed (std::mt19937_64)")->capture_default_str();
    cmd->add_flag("--per-document", cal_.documents,
                  "one document per sample (.jsonl rows or blank-line paragraphs), padded to --seqlen");
    cmd->add_flag("--keep-padding", keepPadding_, "with --per-document: count padded positions in the statistics");
    cmd->add_option("--sites", opts_.sites, "comma-separated globs: q_proj, 'mlp.*', 'layers.0.*', block_out")
        ->capture_default_str();
    cmd->add_option("--top-tokens", opts_.topTokens, "outlier tokens kept per site")->capture_default_str();
    cmd->add_option("--batch-size", opts_.batchSize, "samples per forward pass")->capture_default_str();
    cmd->add_flag("--no-weights", noWeights_, "skip weight statistics");
    cmd->add_flag("--no-block-outputs", noBlockOutputs_, "skip the residual stream (block outputs)");
    cmd->add_flag("--matmul-inputs", opts_.matmulInputs,
                  "also the attention matmul operands: q after RoPE and scaling, k after RoPE, v "
                  "(sites q_matmul, k_matmul, v_matmul)");
    cmd->add_flag("--softmax-inputs", opts_.softmaxInputs,
                  "also the softmax input (site softmax_in): attention scores after scaling and mask, per head "
                  "(a channel is a head, its values every unmasked query-key score; tokens are queries)");
    cmd->add_flag("--show-weights", showWeights_, "also print the weight summary table");
    cmd->add_option("--outlier-threshold", opts_.outliers.absThreshold, "outlier channel: absmax above this")
        ->capture_default_str();
    cmd->add_option("--outlier-factor", opts_.outliers.medianFactor,
                    "outlier channel: absmax above this multiple of the median channel absmax")
        ->capture_default_str();
    addRunOptions(*cmd, run_);
    cmd->add_flag("--json", json_, "print the result as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    return cmd;
  }

  int run() override {
    auto load = resolveRunOptions(run_);
    std::optional<runs::Project> project;
    std::string modelPath = target_;
    if (runs::Project::isProject(target_)) {
      project = runs::Project::open(target_);
      modelPath = project->modelPath();
      if (!projectDir_.empty()) throw Error("--project: " + target_ + " is already a project; give one or the other");
    } else if (!projectDir_.empty()) {
      project = runs::Project::open(projectDir_);
    }
    if (project) {
      if (dataDir_.empty()) dataDir_ = project->dataDir();
      dataset_ = workflow::projectDataset(*project, dataset_);
    }
    if (dataset_.empty()) dataset_ = "wikitext2";
    opts_.weights = !noWeights_;
    opts_.blockOutputs = !noBlockOutputs_;
    cal_.removePadding = !keepPadding_;

    auto text = eval::loadDataset(dataset_, dataDir_);
    auto tokenizer = io::loadTokenizer(modelPath);
    analysis::CalibrationSet samples = analysis::makeCalibrationSet(text.text, text.path, *tokenizer, cal_);
    samples.source = text.name;
    auto model = model::openModel(modelPath, load);

    std::unique_ptr<runs::RunWriter> writer;
    if (project) {
      runs::NewRun nr;
      nr.name = name_.empty() ? "analysis " + std::to_string(cal_.samples) + "x" + std::to_string(cal_.seqlen) : name_;
      nr.kind = runs::RunKind::Analysis;
      nr.modelPath = modelPath;
      nr.modelFingerprint = runs::fingerprintModel(modelPath);
      nr.configYaml = workflow::analysisConfigYaml(text, modelPath, cal_, opts_, run_.device, run_.dtype);
      nr.toolVersion = QS_VERSION;
      nr.device = run_.device;
      writer = std::make_unique<runs::RunWriter>(project->runsPath(), nr);
      // Each block's rows are committed when the block is done, so the GUI sees the run fill up.
      opts_.onBlock = [&](const std::vector<analysis::SiteResult>& block) {
        auto rows = block;
        analysis::fillTokenText(rows, *tokenizer);
        for (const auto& r : rows) writer->addSiteStat(analysis::toSiteStat(r, opts_.outliers));
        writer->flush();
      };
    }

    analysis::AnalysisResult result;
    try {
      ProgressBar bar("analyze", !noProgress_);
      result = analysis::analyzeModel(*model, samples, opts_, bar);
      bar.finish();
    } catch (const Cancelled&) {
      if (writer) writer->cancel();  // no half-written run: its rows go with it
      throw;
    } catch (const std::exception& e) {
      if (writer) writer->fail(e.what());
      throw;
    }
    analysis::fillTokenText(result.sites, *tokenizer);
    int64_t runId = 0;
    if (writer) {
      for (const auto& m : analysis::analysisMetrics(result)) writer->addMetric(m);
      writer->finish();
      runId = writer->id();
    }
    if (json_) printJsonResult(result, text, modelPath, project, runId);
    else printSummary(result, text, modelPath, project, runId);
    return 0;
  }

 private:
  void printJsonResult(const analysis::AnalysisResult& r, const eval::DatasetText& text, const std::string& modelPath,
                       const std::optional<runs::Project>& project, int64_t runId) const {
    json sites = json::array();
    for (const auto& s : r.sites) {
      json j = {{"layer", s.layer},
                {"site", s.site},
                {"name", s.fullName},
                {"kind", s.kind},
                {"channels", s.channels},
                {"max_abs", s.summary.maxAbs},
                {"kurtosis_mean", jsonNumber(s.summary.kurtosisMean)},
                {"kurtosis_max", jsonNumber(s.summary.kurtosisMax)},
                {"outlier_channels", s.summary.outlierChannels},
                {"median_absmax", s.summary.medianAbsmax},
                {"variance", s.summary.variance}};
      if (!s.sharedWith.empty()) j["shared_input_with"] = s.sharedWith;
      if (!s.topTokens.empty()) j["top_tokens"] = topTokensJson(s);
      sites.push_back(j);
    }
    printJson({{"run_id", runId ? json(runId) : json(nullptr)},
               {"project", project ? json(project->dir()) : json(nullptr)},
               {"model", modelPath},
               {"dataset", text.name},
               {"samples", r.samples},
               {"seqlen", r.seqlen},
               {"seed", cal_.seed},
               {"tokens", r.tokens},
               {"seconds", r.seconds},
               {"sites", sites}});
  }

  void printSummary(const analysis::AnalysisResult& r, const eval::DatasetText& text, const std::string& modelPath,
                    const std::optional<runs::Project>& project, int64_t runId) const {
    std::printf("analysis of %s\n", modelPath.c_str());
    std::printf("  %lld samples x %lld tokens of %s (seed %llu), %.1f s\n", static_cast<long long>(r.samples),
                static_cast<long long>(r.seqlen), text.name.c_str(), static_cast<unsigned long long>(cal_.seed),
                r.seconds);
    std::printf("  kurtosis: Pearson (Gaussian = 3); outliers: channels with absmax > %g and > %g x median\n\n",
                opts_.outliers.absThreshold, opts_.outliers.medianFactor);
    // Sites sharing one input tensor (q/k/v, gate/up) are one row: "q_proj,k_proj,v_proj".
    std::vector<std::vector<std::string>> rows = {
        {"layer", "site", "channels", "max|x|", "kurt mean", "kurt max", "outliers", "top token (sample:pos, |x|)"}};
    std::map<std::pair<int, std::string>, size_t> rowOf;
    for (const auto& s : r.sites) {
      if (s.kind == analysis::names::kWeight) continue;
      if (!s.sharedWith.empty()) {
        auto it = rowOf.find({s.layer, s.sharedWith});
        if (it != rowOf.end()) {
          rows[it->second][1] += "," + s.site;
          continue;
        }
      }
      std::string top = "-";
      if (!s.topTokens.empty()) {
        const auto& t = s.topTokens[0];
        top = printable(t.text.empty() ? "#" + std::to_string(t.id) : t.text) + " (" + std::to_string(t.sample) + ":" +
              std::to_string(t.position) + ", " + num(t.value) + ")";
      }
      rowOf[{s.layer, s.site}] = rows.size();
      rows.push_back({std::to_string(s.layer), s.site, std::to_string(s.channels), num(s.summary.maxAbs),
                      num(s.summary.kurtosisMean), num(s.summary.kurtosisMax), std::to_string(s.summary.outlierChannels),
                      top});
    }
    printTable(rows, {true, false, true, true, true, true, true, false});
    if (showWeights_) {
      std::printf("\nweights (per input channel)\n");
      std::vector<std::vector<std::string>> w = {{"layer", "site", "in", "out", "max|w|", "kurt mean", "kurt max", "outliers", "variance"}};
      for (const auto& s : r.sites)
        if (s.kind == analysis::names::kWeight)
          w.push_back({std::to_string(s.layer), s.site, std::to_string(s.channels), std::to_string(s.count),
                       num(s.summary.maxAbs), num(s.summary.kurtosisMean), num(s.summary.kurtosisMax),
                       std::to_string(s.summary.outlierChannels), num(s.summary.variance)});
      printTable(w, {true, false, true, true, true, true, true, true, true});
    }
    std::printf("\n");
    if (project)
      std::printf("stored as run %lld in project '%s' (%s)\n  next: qscope runs show %lld -p %s\n"
                  "        qscope stats %lld --layer 0 --site %s -p %s --csv\n",
                  static_cast<long long>(runId), project->name().c_str(), project->runsPath().c_str(),
                  static_cast<long long>(runId), project->dir().c_str(), static_cast<long long>(runId),
                  r.sites.empty() ? "block_out" : r.sites.front().site.c_str(), project->dir().c_str());
    else
      std::printf("not stored: %s is a model, not a project. To keep the run, create one with\n"
                  "  qscope project init DIR --model %s   and run   qscope analyze DIR ...  (or add --project DIR)\n",
                  modelPath.c_str(), modelPath.c_str());
  }

  std::string target_, projectDir_, name_, dataset_, dataDir_;
  analysis::CalibrationOptions cal_;
  analysis::AnalysisOptions opts_;
  RunOptions run_;
  bool keepPadding_ = false, noWeights_ = false, noBlockOutputs_ = false, showWeights_ = false;
  bool json_ = false, noProgress_ = false;
};

}  // namespace

std::unique_ptr<Command> makeAnalyzeCommand() { return std::make_unique<AnalyzeCommand>(); }

}  // namespace qs::cli
