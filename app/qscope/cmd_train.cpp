// qscope train: pre-trains a small OPT-style causal LM from text files or named datasets with an
// existing tokenizer (the Quantizable Transformers experiments, QuantScope's demo models). Options come
// from flags or a YAML file whose keys are the flag names (flags win). Ctrl-C stops at the next
// step and keeps the last complete checkpoint; --resume continues from it.
#include <yaml-cpp/yaml.h>

#include <ATen/Parallel.h>

#include <cstdio>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/eval/datasets.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/train/trainer.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::cli {
namespace {

namespace sfs = std::filesystem;

class TrainCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("train", "Pre-train a small OPT- or LLaMA-style model from text files or named datasets");
    cmd_ = cmd;
    cmd->add_option("--config", config_, "YAML file of options (keys = flag names without --)");
    cmd->add_option("--text", text_, "training text files (UTF-8), comma-separated, joined with a blank line; "
                                     "the tail of the whole is held out for validation");
    std::string names;
    for (const auto& [name, file] : eval::knownTrainingDatasets())
      names += (names.empty() ? "" : ", ") + name + " (" + file + ")";
    cmd->add_option("--dataset", dataset_, "named training text or a file, comma-separated, joined after --text: " +
                                               names + "; WikiText-2's train split is not shipped and its test split "
                                               "stays for evaluation");
    cmd->add_option("--data-dir", dataDir_, "folder holding text/ for --dataset names (default: $QS_DATA_DIR, ./data, "
                                            "../shared/data)");
    cmd->add_option("--tokenizer", tokenizer_, "folder with the tokenizer to use (copied into --out)");
    cmd->add_option("--out", o_.outDir, "output model folder (Hugging Face layout; checkpoint/ inside)");
    cmd->add_option("--arch", o_.architecture, "opt (LayerNorm, ReLU, learned positions) or llama (RMSNorm, "
                                            "SwiGLU, RoPE)")->capture_default_str();
    cmd->add_option("--hidden", o_.hidden, "model width")->capture_default_str();
    cmd->add_option("--layers", o_.layers, "decoder blocks")->capture_default_str();
    cmd->add_option("--heads", o_.heads, "attention heads")->capture_default_str();
    cmd->add_option("--ffn", o_.ffn, "MLP width")->capture_default_str();
    cmd->add_option("--kv-heads", o_.kvHeads, "llama: key/value heads (0 = --heads)")->capture_default_str();
    cmd->add_option("--seqlen", o_.seqlen, "tokens per window")->capture_default_str();
    cmd->add_option("--batch", o_.batch, "windows per micro-batch")->capture_default_str();
    cmd->add_option("--accum", o_.accum, "micro-batches per optimizer step")->capture_default_str();
    cmd->add_option("--steps", o_.steps, "optimizer steps")->capture_default_str();
    cmd->add_option("--lr", o_.lr, "peak learning rate")->capture_default_str();
    cmd->add_option("--warmup", o_.warmup, "linear warmup steps")->capture_default_str();
    cmd->add_option("--min-lr-ratio", o_.minLrRatio, "cosine floor as a fraction of --lr")->capture_default_str();
    cmd->add_option("--weight-decay", o_.weightDecay, "AdamW decoupled weight decay")->capture_default_str();
    cmd->add_option("--clip", o_.clip, "gradient-norm clip (0: off)")->capture_default_str();
    cmd->add_option("--seed", o_.seed, "seed of init and batch sampling")->capture_default_str();
    cmd->add_option("--val-fraction", o_.valFraction, "held-out tail of the text")->capture_default_str();
    cmd->add_option("--val-every", o_.valEvery, "validation perplexity every N steps")->capture_default_str();
    cmd->add_option("--checkpoint-every", o_.checkpointEvery, "checkpoint every N steps")->capture_default_str();
    cmd->add_flag("--resume", o_.resume, "continue from --out/checkpoint");
    cmd->add_option("--attention", attention_, "vanilla | clipped | gated | clipped+gated")->capture_default_str();
    cmd->add_option("--alpha", alpha_, "clipped softmax: gamma = -alpha / seqlen")->capture_default_str();
    cmd->add_option("--zeta", zeta_, "clipped softmax: upper stretch (>= 1)")->capture_default_str();
    cmd->add_option("--gate", gate_, "gated attention: linear | mlp")->capture_default_str();
    cmd->add_option("--gate-hidden", gateHidden_, "mlp gate hidden units per head")->capture_default_str();
    cmd->add_option("--gate-bias-init", gateBias_, "initial gate bias (sigmoid = initial gate)")->capture_default_str();
    cmd->add_option("--project", project_, "store the run (validation perplexity and outlier metrics at each "
                                           "validation) in this project's run store");
    cmd->add_flag("--outlier-metrics", o_.outlierMetrics, "at each validation also max inf-norm and kurtosis of the "
                                                          "block outputs (through the inference engine)");
    cmd->add_option("--save-dtype", o_.saveDtype, "model.safetensors dtype: float32, float16 or bfloat16 (the "
                                                  "checkpoint stays float32)")->capture_default_str();
    cmd->add_option("--dtype", o_.dtype, "training precision: float32, or bfloat16 (matrix products in bfloat16, "
                                          "autocast style; float32 master weights, AdamW state, norms and loss)")
        ->capture_default_str();
    cmd->add_option("--device", o_.device, "cpu, cuda or cuda:N (CUDA needs a LibTorch built with it)")
        ->capture_default_str();
    cmd->add_option("--threads", threads_, "CPU threads for LibTorch (0 = all cores)")->capture_default_str();
    cmd->add_flag("--json", json_, "print the result as JSON on stdout");
    return cmd;
  }

  int run() override {
    if (!config_.empty()) applyYaml();
    if (text_.empty() && dataset_.empty()) throw Error("train: --text or --dataset is required");
    if (tokenizer_.empty()) throw Error("train: --tokenizer is required");
    if (o_.outDir.empty()) throw Error("train: --out is required");
    o_.attention = variant();
    if (threads_ < 0) throw Error("--threads: must not be negative");
    if (threads_ > 0) at::set_num_threads(threads_);
    train::checkDeviceAndDtype(o_);  // before the text is read and tokenized
    auto tok = io::loadTokenizer(tokenizer_);
    const std::string text = readTexts();
    std::vector<int32_t> ids = tok->encode(text, false);
    sfs::create_directories(o_.outDir);
    copyTokenizerFiles();

    std::optional<runs::Project> project;
    std::unique_ptr<runs::RunWriter> writer;
    if (!project_.empty()) {
      project = runs::Project::open(project_);
      writer = std::make_unique<runs::RunWriter>(project->runsPath(), newRun());
      o_.onValidation = [&](const train::ValPoint& v) { recordValidation(*writer, v, false); };
    }

    ProgressBar bar("train");
    train::TrainResult r;
    try {
      r = train::train(ids, tok->vocabSize(), o_, bar);
    } catch (const Cancelled&) {
      if (writer) writer->cancel();
      bar.finish();
      std::fprintf(stderr, "qscope: training cancelled; the last complete checkpoint is in %s/checkpoint "
                           "(continue with --resume)\n", o_.outDir.c_str());
      return 130;
    } catch (const std::exception& e) {
      if (writer) writer->fail(e.what());
      throw;
    }
    bar.finish();
    if (writer) {
      if (!r.validation.empty()) recordValidation(*writer, r.validation.back(), true);
      if (!r.losses.empty()) writer->addMetric({"train.loss", r.losses.back(), "last step", "nats", r.steps, NAN});
      writer->addMetric({"train.tokens_per_second", r.tokensPerSecond, r.device + " " + o_.dtype + " threads " +
                         std::to_string(at::get_num_threads()), "tokens/s", 0, NAN});
      writer->addArtifact({"export", o_.outDir, 0, ""});
      writer->finish();
    }
    nlohmann::json val = nlohmann::json::array();
    for (const auto& v : r.validation) {
      nlohmann::json p = {{"step", v.step}, {"perplexity", v.perplexity}};
      if (v.hasOutliers)
        for (const auto& [key, value] : v.outliers.namedValues(false)) p[key.substr(8)] = value;
      val.push_back(p);
    }
    nlohmann::json out = {{"out", o_.outDir},
                          {"text", sources_},
                          {"tokens", ids.size()},
                          {"start_step", r.startStep},
                          {"steps", r.steps},
                          {"final_loss", r.losses.empty() ? nullptr : nlohmann::json(r.losses.back())},
                          {"tokens_per_second", r.tokensPerSecond},
                          {"device", r.device},
                          {"dtype", o_.dtype},
                          {"validation", val}};
    if (writer) out["run_id"] = writer->id();
    if (json_) {
      printJson(out);
    } else {
      std::printf("trained %lld steps (%s tokens of text); final loss %.4f; %.0f tokens/s (%s, %s)\n",
                  static_cast<long long>(r.steps), formatThousands(static_cast<long long>(ids.size())).c_str(),
                  r.losses.empty() ? 0.0 : r.losses.back(), r.tokensPerSecond, r.device.c_str(), o_.dtype.c_str());
      if (!r.validation.empty())
        std::printf("validation perplexity %.3f at step %lld\n", r.validation.back().perplexity,
                    static_cast<long long>(r.validation.back().step));
      if (!r.validation.empty() && r.validation.back().hasOutliers) {
        const auto& m = r.validation.back().outliers;
        std::printf("max inf-norm %.2f (attention output %.2f, FFN output %.2f), kurtosis avg %.2f max %.2f "
                    "(attention output avg %.2f, FFN output avg %.2f)\n", m.maxInfNorm, m.attnMaxInfNorm,
                    m.ffnMaxInfNorm, m.kurtosisAvg, m.kurtosisMax, m.attnKurtosisAvg, m.ffnKurtosisAvg);
      }
      for (const auto& src : sources_)
        std::printf("text: %s (%s)\n", src["name"].get<std::string>().c_str(), src["path"].get<std::string>().c_str());
      std::printf("model folder: %s\n", o_.outDir.c_str());
      if (writer) std::printf("stored as run %lld in %s\n", static_cast<long long>(writer->id()),
                              project->runsPath().c_str());
    }
    return 0;
  }

 private:
  // YAML keys are the flag names; a flag given on the command line wins over the file.
  void applyYaml() {
    YAML::Node root;
    try {
      root = YAML::LoadFile(config_);
    } catch (const YAML::Exception& e) {
      throw fileError(config_, std::string("invalid YAML: ") + e.what());
    }
    if (!root.IsMap()) throw fileError(config_, "expected a map of option: value");
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      CLI::Option* opt = key == "config" ? nullptr : cmd_->get_option_no_throw("--" + key);
      if (!opt) throw fileError(config_, "key '" + key + "': not a train option (see qscope train --help)");
      if (opt->count() > 0) continue;
      if (!kv.second.IsScalar()) throw fileError(config_, "key '" + key + "': expected a single value");
      try {
        opt->add_result(kv.second.as<std::string>());
        opt->run_callback();
      } catch (const CLI::Error& e) {
        throw fileError(config_, "key '" + key + "': " + e.what());
      }
    }
  }

  model::AttentionVariant variant() const {
    model::AttentionVariant v;
    if (attention_ != "vanilla" && attention_ != "clipped" && attention_ != "gated" && attention_ != "clipped+gated")
      throw Error("--attention: expected vanilla, clipped, gated or clipped+gated, got '" + attention_ + "'");
    if (attention_.find("clipped") != std::string::npos) {
      v.softmax = model::AttentionVariant::Softmax::Clipped;
      v.alpha = alpha_;
      v.zeta = zeta_;
      if (alpha_ <= 0) throw Error("--alpha must be positive");
      if (zeta_ < 1) throw Error("--zeta must be >= 1");
    }
    if (attention_.find("gated") != std::string::npos) {
      if (gate_ == "linear") v.gate = model::AttentionVariant::Gate::Linear;
      else if (gate_ == "mlp") v.gate = model::AttentionVariant::Gate::Mlp;
      else throw Error("--gate: expected linear or mlp, got '" + gate_ + "'");
      v.gateHidden = gateHidden_;
      v.gateBiasInit = gateBias_;
      if (v.gate == model::AttentionVariant::Gate::Mlp && gateHidden_ <= 0) throw Error("--gate-hidden must be positive");
    }
    return v;
  }

  // Each validation as step<N>.* metrics; the final one also without the prefix, per layer.
  static void recordValidation(runs::RunWriter& w, const train::ValPoint& v, bool final) {
    const std::string prefix = final ? "" : "step" + std::to_string(v.step) + ".";
    const auto& p = v.outliers.perplexity;
    w.addMetric({prefix + "ppl.val", v.perplexity, "held-out tail, non-overlapping windows", "", p.windows, NAN});
    if (v.hasOutliers)
      for (const auto& [key, value] : v.outliers.namedValues(final))
        w.addMetric({prefix + key, value, v.outliers.protocol() + " held-out tail", "", p.windows, NAN});
    w.flush();
  }

  runs::NewRun newRun() const {
    runs::NewRun n;
    n.name = "train " + attention_ + " h" + std::to_string(o_.hidden) + " l" + std::to_string(o_.layers);
    n.kind = runs::RunKind::Train;
    n.modelPath = o_.outDir;
    std::string yaml = "train:\n";
    for (const auto* opt : cmd_->get_options()) {
      const std::string name = opt->get_name(false, true);
      if (name.rfind("--", 0) != 0 || name == "--help" || name == "--json" || name == "--project") continue;
      std::string value = opt->as<std::string>();
      if (opt->get_type_size() == 0) value = opt->count() > 0 ? "true" : "false";
      if (value.empty()) continue;
      yaml += "  " + name.substr(2) + ": \"" + value + "\"\n";
    }
    n.configYaml = yaml;
    n.toolVersion = QS_VERSION;
    n.device = o_.device;
    return n;
  }

  // --text files, then --dataset names or files, joined with a blank line.
  std::string readTexts() {
    std::string all;
    auto append = [&](const std::string& text) {
      if (!all.empty() && !text.empty()) all += all.back() == '\n' ? "\n" : "\n\n";
      all += text;
    };
    std::stringstream in(text_);
    std::string item;
    while (std::getline(in, item, ',')) {
      if (item.empty()) continue;
      if (!fs::exists(item)) throw fileError(item, "text file not found (--text)");
      append(fs::readText(item));
      sources_.push_back({{"name", item}, {"path", item}});
    }
    std::stringstream ds(dataset_);
    while (std::getline(ds, item, ',')) {
      if (item.empty()) continue;
      try {
        const eval::DatasetText d = eval::loadTrainingDataset(item, dataDir_);
        append(d.text);
        sources_.push_back({{"name", d.name}, {"path", d.path}});
      } catch (const Error& e) {
        throw Error(std::string("--dataset: ") + e.what());
      }
    }
    if (all.empty()) throw Error("train: --text and --dataset name no text (only empty files)");
    return all;
  }

  // The model folder ships its tokenizer so openModel + loadTokenizer work on it alone.
  void copyTokenizerFiles() const {
    if (!sfs::is_directory(tokenizer_)) return;
    for (const auto& e : sfs::directory_iterator(tokenizer_)) {
      const std::string n = e.path().filename().string();
      const bool tokFile = n == "tokenizer.json" || n == "tokenizer_config.json" || n == "special_tokens_map.json" ||
                           n == "vocab.json" || n == "merges.txt" || n == "tokenizer.model" ||
                           (n.rfind("tok", 0) == 0 && n.size() > 11 && n.compare(n.size() - 11, 11, "_vocab.json") == 0);
      if (tokFile && e.is_regular_file())
        sfs::copy_file(e.path(), sfs::path(o_.outDir) / n, sfs::copy_options::overwrite_existing);
    }
  }

  CLI::App* cmd_ = nullptr;
  std::string project_;
  std::string config_, text_, dataset_, dataDir_, tokenizer_, attention_ = "vanilla", gate_ = "linear";
  double alpha_ = 4.0, zeta_ = 1.0, gateBias_ = 0.0;
  int64_t gateHidden_ = 8;
  int threads_ = 0;
  bool json_ = false;
  nlohmann::json sources_ = nlohmann::json::array();  // the texts read, in order
  train::TrainOptions o_;
};

}  // namespace

std::unique_ptr<Command> makeTrainCommand() { return std::make_unique<TrainCommand>(); }

}  // namespace qs::cli
