// qscope migrate MODEL: activation-quantization study of one model. Prints the perplexity of
// the FP model, naive WxAy (RTN weights, per-tensor/per-token/per-group activations), WxAy after
// SmoothQuant and WxAy after OS+ shifting + scaling, each row from a fresh copy of the model, so
// a user sees at once what outlier migration buys. --qconfig reads an OS+-style YAML
// (resources/presets/osplus_*.yaml) instead of --a-bits/--w-bits/--a-quantizer.
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
#include "core/algo/os_plus.h"
#include "core/algo/smoothquant.h"
#include "core/eval/datasets.h"
#include "core/eval/perplexity.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/quant/qconfig_yaml.h"
#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::cli {
namespace {

struct Row {
  std::string key, label;
  double ppl = NAN;
  double maxAbs = NAN;  // largest |x| over the migrated inputs after migration (NaN: not migrated)
  double seconds = 0;
};

class MigrateCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand(
        "migrate",
        "Activation quantization with outlier migration: perplexity of FP, naive WxAy, +SmoothQuant and +OS+");
    cmd->footer(
        "Each row quantizes a fresh copy of the model: weights round-to-nearest per output channel, activations\n"
        "fake-quantized at every Linear input (static per-tensor ranges calibrated on --samples windows, or dynamic\n"
        "per-token/per-group). OS+ folds shift z = (max+min)/2 and searched scales into norms and Linears before\n"
        "quantizing (exact in FP). Example: qscope migrate stories260K --a-bits 6 --w-bits 6 --samples 32");
    cmd->add_option("model", model_, "model folder (Hugging Face layout) or .gguf file")->required();
    cmd->add_option("--method", method_, "rows to run: all, osplus or smoothquant (FP and naive always run)")
        ->check(CLI::IsMember({"all", "osplus", "smoothquant"}))
        ->capture_default_str();
    cmd->add_option("--qconfig", qconfig_, "OS+-style q-config YAML (a_qconfig/w_qconfig); overrides the bit options");
    cmd->add_option("--a-bits", act_.bits, "activation bits (16 = FP activations)")->capture_default_str();
    cmd->add_option("--w-bits", wBits_, "weight bits, per output channel, symmetric (16 = FP weights)")
        ->capture_default_str();
    cmd->add_option("--a-quantizer", aQuantizer_, "per_tensor (static, calibrated), per_token or per_group (dynamic)")
        ->check(CLI::IsMember({"per_tensor", "per_token", "per_group"}))
        ->capture_default_str();
    cmd->add_option("--group-size", act_.groupSize, "channels per activation group (per_group)")->capture_default_str();
    cmd->add_flag("--a-symmetric", act_.symmetric, "symmetric activation grid (default asymmetric)");
    cmd->add_flag("--a-matmul", matmul_,
                  "also fake-quantize the attention matmul operands (q after RoPE, k, v) with the activation grid");
    cmd->add_option("--observer", observer_, "static range observer: minmax, avg_minmax, ema_minmax, percentile, mse")
        ->capture_default_str();
    cmd->add_option("--samples", samples_, "calibration windows")->capture_default_str();
    cmd->add_option("--calib-seqlen", calibSeqlen_, "tokens per calibration window")->capture_default_str();
    cmd->add_option("--calib", calib_, "calibration text: a dataset name or file (default: WikiText-2 valid when "
                                       "found, else the evaluation text)");
    cmd->add_option("--alpha", sq_.alpha, "SmoothQuant migration strength")->capture_default_str();
    cmd->add_option("--search-steps", osp_.searchSteps, "OS+ threshold candidates - 1")->capture_default_str();
    cmd->add_option("--search", search_, "OS+ threshold search: refine (coarse to fine, ~20 candidates) or grid "
                                          "(every candidate)")
        ->check(CLI::IsMember({"refine", "grid"}))
        ->capture_default_str();
    cmd->add_option("--search-tokens", osp_.searchTokens, "OS+ calibration tokens per pair in the search")
        ->capture_default_str();
    cmd->add_option("--dataset,--eval", dataset_, "evaluation text: wikitext2, ptb or a file")->capture_default_str();
    cmd->add_option("--data-dir", dataDir_, "folder holding text/ for named datasets");
    cmd->add_option("--seqlen", ppl_.seqlen, "evaluation window (0 = min(2048, model max positions))")
        ->capture_default_str();
    cmd->add_option("--limit-windows", ppl_.limitWindows, "score only the first N windows (0 = all)")
        ->capture_default_str();
    cmd->add_option("--project", project_, "store the perplexities as a quantize run in this project");
    addRunOptions(*cmd, run_);
    cmd->add_flag("--json", json_, "print the table as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    return cmd;
  }

  int run() override {
    auto load = resolveRunOptions(run_);
    quant::QuantSpec wspec = quant::QuantSpec().withBits(wBits_).withSymmetric(true);
    std::vector<std::string> except;
    if (!qconfig_.empty()) {
      quant::QConfig c = quant::loadQConfig(qconfig_);
      act_ = c.act;
      wspec = c.weight;
      except = c.exceptQuantizer;
      matmul_ = matmul_ || c.quantizeMatmul;
    } else {
      act_.granularity = aQuantizer_ == "per_token"   ? quant::Granularity::PerToken
                         : aQuantizer_ == "per_group" ? quant::Granularity::PerGroup
                                                      : quant::Granularity::PerTensor;
      act_.observer = quant::parseActObserver(observer_, "--observer");
      try {
        act_.validate();
        wspec.validate();
      } catch (const Error& e) {
        throw Error(std::string("--a-bits/--w-bits: ") + e.what());
      }
    }
    std::optional<runs::Project> project;
    if (!project_.empty()) project = runs::Project::open(project_);

    auto text = eval::loadDataset(dataset_, dataDir_);
    auto tokenizer = io::loadTokenizer(model_);
    const std::vector<int32_t> evalTokens = tokenizer->encode(text.text, true);
    std::string calibSource = calibSourcePath(text.path);
    std::vector<int32_t> calibTokens =
        calibSource == text.path ? evalTokens : tokenizer->encode(eval::loadDataset(calibSource).text, true);
    const at::Tensor samples = algo::calibrationWindows(calibTokens, samples_, calibSeqlen_);

    const std::string wa = "W" + std::to_string(wspec.bits) + "A" + std::to_string(act_.bits) + (matmul_ ? "+mm" : "");
    std::vector<Row> rows;
    auto evaluate = [&](const std::string& key, const std::string& label, auto&& prepare) {
      auto t0 = std::chrono::steady_clock::now();
      auto model = model::openModel(model_, load);
      model->setExecOptions(resolveExecOptions(run_));
      Row r{key, label};
      ProgressBar bar(label, !noProgress_);
      r.maxAbs = prepare(*model, bar);
      eval::PerplexityResult p = eval::evaluatePerplexity(*model, evalTokens, ppl_, bar);
      bar.finish();
      sessions_.clear();  // before the model goes: a session detaches its transform from it
      r.ppl = p.perplexity;
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rows.push_back(r);
    };
    auto quantize = [&](model::Model& m, jobs::Progress& bar) {
      algo::quantizeWeightsRtn(m, wspec, except, bar);
      auto session = std::make_shared<algo::ActQuantSession>(m, act_, except, matmul_);
      session->calibrate(samples, bar);
      sessions_.push_back(session);  // keeps the transform installed while the row is evaluated
    };
    evaluate("fp", "FP", [&](model::Model&, jobs::Progress&) { return NAN; });
    evaluate("naive", wa + " naive", [&](model::Model& m, jobs::Progress& bar) {
      quantize(m, bar);
      return NAN;
    });
    if (method_ != "osplus")
      evaluate("smoothquant", wa + " + SmoothQuant", [&](model::Model& m, jobs::Progress& bar) {
        auto pairs = algo::applySmoothQuant(m, samples, sq_, bar);
        quantize(m, bar);
        double mx = 0;
        for (auto& p : pairs) mx = std::max(mx, p.maxAbsAfter);
        return pairs.empty() ? NAN : mx;
      });
    if (method_ != "smoothquant")
      evaluate("osplus", wa + " + OS+", [&](model::Model& m, jobs::Progress& bar) {
        osp_.act = act_;
        osp_.weight = wspec;
        osp_.search = algo::parseOsPlusSearch(search_);
        auto rep = algo::applyOsPlus(m, samples, osp_, bar);
        quantize(m, bar);
        double mx = 0;
        for (auto& p : rep.pairs) mx = std::max(mx, p.maxAbsAfter);
        return rep.pairs.empty() ? NAN : mx;
      });

    std::unique_ptr<runs::RunWriter> writer;
    if (project) {
      runs::NewRun n;
      n.name = "migrate " + wa;
      n.kind = runs::RunKind::Quantize;
      n.modelPath = model_;
      n.configYaml = "migrate:\n  method: " + method_ + "\n  a_qconfig: \"" + act_.describe() +
                     "\"\n  w_bits: " + std::to_string(wspec.bits) + "\n  samples: " + std::to_string(samples_) +
                     "\n  calib_seqlen: " + std::to_string(calibSeqlen_) + "\n  calib: \"" + calibSource +
                     "\"\n  alpha: " + std::to_string(sq_.alpha) + "\n  search_steps: " +
                     std::to_string(osp_.searchSteps) + "\n  search: " + search_ + "\n  dataset: \"" + dataset_ + "\"\n  seqlen: " +
                     std::to_string(ppl_.seqlen) + "\n  quantize_matmul: " + (matmul_ ? "true" : "false") + "\n";
      n.toolVersion = QS_VERSION;
      n.device = run_.device;
      writer = std::make_unique<runs::RunWriter>(project->runsPath(), n);
      const int seqlen = eval::resolveSeqlen(*model::openModel(model_, load), ppl_.seqlen);
      for (auto& r : rows)
        writer->addMetric({"ppl." + text.name + "." + r.key, r.ppl,
                           std::string(eval::kGptqProtocol) + " seqlen=" + std::to_string(seqlen), "", 0, NAN});
      writer->finish();
    }

    if (json_) {
      nlohmann::json j = {{"model", model_}, {"dataset", text.name}, {"calibration", calibSource},
                          {"samples", samples_}, {"calib_seqlen", calibSeqlen_}, {"activations", act_.describe()},
                          {"weight_bits", wspec.bits}};
      auto arr = nlohmann::json::array();
      for (auto& r : rows)
        arr.push_back({{"row", r.key}, {"label", r.label}, {"perplexity", r.ppl},
                       {"max_abs_after_migration", std::isnan(r.maxAbs) ? nlohmann::json() : nlohmann::json(r.maxAbs)},
                       {"seconds", r.seconds}});
      j["rows"] = arr;
      if (writer) j["run_id"] = writer->id();
      printJson(j);
    } else {
      std::printf("%s on %s (%s); activations %s, weights W%d per channel; calibration %d x %d tokens of %s\n",
                  model_.c_str(), text.name.c_str(), eval::kGptqProtocol, act_.describe().c_str(), wspec.bits,
                  samples_, calibSeqlen_, std::filesystem::path(calibSource).filename().string().c_str());
      std::printf("%-24s %12s %16s %9s\n", "", "perplexity", "max|x| migrated", "seconds");
      for (auto& r : rows) {
        std::string mx = std::isnan(r.maxAbs) ? "-" : std::to_string(r.maxAbs).substr(0, 8);
        std::printf("%-24s %12.4f %16s %9.1f\n", r.label.c_str(), r.ppl, mx.c_str(), r.seconds);
      }
      if (writer) std::printf("stored as run %lld in %s\n", static_cast<long long>(writer->id()), project->runsPath().c_str());
    }
    return 0;
  }

 private:
  // WikiText-2 valid beside the test text keeps calibration off the evaluation windows.
  std::string calibSourcePath(const std::string& evalPath) const {
    if (!calib_.empty()) return eval::loadDataset(calib_, dataDir_).path;
    for (const auto& dir : eval::dataSearchPath(dataDir_)) {
      const std::string p = fs::join(fs::join(dir, "text"), "wikitext-2-valid.tokens");
      if (fs::exists(p)) return p;
    }
    return evalPath;
  }

  std::string model_, method_ = "all", qconfig_, aQuantizer_ = "per_tensor", observer_ = "minmax";
  std::string calib_, dataset_ = "wikitext2", dataDir_, project_, search_ = "refine";
  int wBits_ = 8, samples_ = 32, calibSeqlen_ = 256;
  quant::ActQuantOptions act_;
  algo::OsPlusOptions osp_;
  algo::SmoothQuantOptions sq_;
  eval::PerplexityOptions ppl_;
  RunOptions run_;
  bool json_ = false, noProgress_ = false;
  std::vector<std::shared_ptr<algo::ActQuantSession>> sessions_;
  bool matmul_ = false;
};

}  // namespace

std::unique_ptr<Command> makeMigrateCommand() { return std::make_unique<MigrateCommand>(); }

}  // namespace qs::cli
