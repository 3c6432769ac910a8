// qscope generate MODEL [--prompt "..."]: greedy decoding streamed to stdout, or sampling
// (--temperature, --top-k, --seed) of one or many independent samples (--samples, -o FILE).
#include <cstdio>
#include <filesystem>
#include <string>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/generate.h"
#include "core/model/layerwise.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/memory.h"

namespace qs::cli {
namespace {

// Sample i of n as the [i/n, (i+1)/n] part of the bar, its message naming the sample.
class SampleProgress : public jobs::Progress {
 public:
  SampleProgress(jobs::Progress& parent, int i, int n) : parent_(parent), i_(i), n_(n) {}
  void update(double fraction, const std::string& message) override {
    parent_.update((i_ + fraction) / n_, "sample " + std::to_string(i_ + 1) + "/" + std::to_string(n_) + ", " + message);
  }
  bool cancelRequested() const override { return parent_.cancelRequested(); }

 private:
  jobs::Progress& parent_;
  int i_, n_;
};

class GenerateCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("generate", "Greedy or sampled text generation (check a model; in-domain calibration text)");
    cmd->add_option("model", model_, "model folder (Hugging Face layout) or .gguf file")->required();
    cmd->add_option("--prompt", prompt_, "prompt text (empty: start from BOS)");
    cmd->add_option("--max-new", maxNew_, "new tokens at most per sample")->capture_default_str()->check(CLI::Range(0, 100000));
    cmd->add_option("--temperature", temperature_, "0 = greedy (argmax); > 0 samples from softmax(logits / T)")
        ->capture_default_str()->check(CLI::Range(0.0, 1e6));
    cmd->add_option("--top-k", topK_, "sample among the K most likely tokens (0 = all)")->capture_default_str()->check(CLI::Range(0, 100000000));
    cmd->add_option("--seed", seed_, "sampling seed; sample i uses its own stream derived from (seed, i)")->capture_default_str();
    cmd->add_option("--samples", samples_, "independent samples from the prompt, each ending at EOS, at a BOS "
                    "(the start of a new document) or after --max-new tokens")
        ->capture_default_str()->check(CLI::Range(1, 10000000));
    cmd->add_option("-o,--output", output_, "write the samples (prompt + continuation, joined by blank lines) to FILE, atomically");
    addRunOptions(*cmd, run_);
    cmd->add_flag("--json", json_, "print prompt, ids and text as JSON on stdout");
    return cmd;
  }

  int run() override {
    auto load = resolveRunOptions(run_);
    auto model = model::openModel(model_, load);  // first: an unknown architecture is the bigger news
    {
      // Decoding runs the whole model once per token: streaming it block by block per token would
      // re-read every weight each time, so a model over the budget is refused up front.
      model::Workload work;
      work.tokens = std::min<int64_t>(model->config().maxPositions > 0 ? model->config().maxPositions : 2048, 2048);
      model::ExecOptions exec = resolveExecOptions(run_);
      exec.mode = model::ExecMode::Auto;  // --exec stream does not apply to decoding
      const model::ExecPlan plan = model::planExecution(*model, work, exec);
      if (plan.streaming)
        throw Error("generate needs the whole model in memory (" + formatMemory(plan.wholeBytes) + " in " + run_.dtype +
                    "), more than the budget of " + formatMemory(plan.budgetBytes) + " (" + plan.budgetSource +
                    "); try --dtype bfloat16");
    }
    auto tokenizer = io::loadTokenizer(model_);
    std::vector<int32_t> prompt = tokenizer->encode(prompt_, true);
    if (prompt.empty() && tokenizer->bosId()) prompt.push_back(*tokenizer->bosId());
    model::GenerateOptions opts;
    opts.maxNewTokens = maxNew_;
    opts.eosId = tokenizer->eosId();
    opts.temperature = temperature_;
    opts.topK = topK_;
    if (samples_ > 1 || !output_.empty()) return runSamples(*model, *tokenizer, prompt, opts);

    opts.seed = model::sampleSeed(seed_, 0);
    std::vector<int32_t> soFar;
    std::string printed;
    if (!json_) std::printf("%s", prompt_.c_str());
    auto onToken = [&](int32_t id) {
      if (json_) return;
      // Decode the whole continuation each time so multi-byte characters split over tokens print right.
      soFar.push_back(id);
      std::string text = tokenizer->decode(soFar, true);
      if (prompt_.empty() && printed.empty() && !text.empty() && text[0] == ' ') text.erase(0, 1);
      if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0) {
        std::printf("%s", text.c_str() + printed.size());
        std::fflush(stdout);
        printed = text;
      }
    };
    ProgressBar bar("generate", false);  // Ctrl-C still cancels; the text itself shows progress
    auto ids = model::generate(*model, prompt, opts, onToken, bar);
    if (json_) {
      printJson({{"prompt", prompt_},
                 {"prompt_ids", prompt},
                 {"ids", ids},
                 {"text", tokenizer->decode(ids, true)},
                 {"stopped_at_eos", !ids.empty() && opts.eosId && ids.back() == *opts.eosId}});
    } else {
      std::printf("\n");
    }
    return 0;
  }

 private:
  // Many samples: each from the prompt with its own seed; a BOS also ends a sample (models trained
  // on BOS-delimited documents, like llama2.c's TinyStories ones, start the next story with it).
  int runSamples(model::Model& model, const io::Tokenizer& tokenizer, const std::vector<int32_t>& prompt,
                 model::GenerateOptions opts) {
    if (tokenizer.bosId()) opts.extraStopIds.push_back(*tokenizer.bosId());
    if (!output_.empty()) {  // fail before the generation, not after it
      std::string parent = std::filesystem::path(output_).parent_path().string();
      if (!parent.empty() && !fs::isDirectory(parent))
        throw Error("-o " + output_ + ": folder " + parent + " does not exist; create it first");
    }
    ProgressBar bar("generate", !json_ || !output_.empty());
    std::string joined;
    nlohmann::json list = nlohmann::json::array();
    int atEos = 0;
    for (int i = 0; i < samples_; ++i) {
      opts.seed = model::sampleSeed(seed_, static_cast<uint64_t>(i));
      SampleProgress sub(bar, i, samples_);
      auto ids = model::generate(model, prompt, opts, {}, sub);
      bool stopped = !ids.empty() && ((opts.eosId && ids.back() == *opts.eosId) ||
                                      (tokenizer.bosId() && ids.back() == *tokenizer.bosId()));
      std::vector<int32_t> body(ids.begin(), ids.end() - (stopped ? 1 : 0));
      std::string text = tokenizer.decode(body, true);
      if (prompt_.empty() && !text.empty() && text[0] == ' ') text.erase(0, 1);
      text = prompt_ + text;
      atEos += stopped ? 1 : 0;
      if (i > 0) joined += "\n\n";
      joined += text;
      if (json_) list.push_back({{"ids", ids}, {"text", text}, {"stopped", stopped}});
      bar.update(static_cast<double>(i + 1) / samples_, "sample " + std::to_string(i + 1) + "/" + std::to_string(samples_));
    }
    bar.finish();
    joined += "\n";
    if (!output_.empty()) fs::writeAtomic(output_, joined);
    if (json_) {
      printJson({{"prompt", prompt_}, {"prompt_ids", prompt}, {"temperature", opts.temperature}, {"top_k", opts.topK},
                 {"seed", seed_}, {"samples", list}, {"stopped", atEos}});
    } else if (output_.empty()) {
      std::printf("%s", joined.c_str());
    } else {
      std::fprintf(stderr, "%d samples (%d ended at EOS/BOS, %d at --max-new) written to %s\n", samples_, atEos,
                   samples_ - atEos, output_.c_str());
    }
    return 0;
  }

  std::string model_, prompt_, output_;
  int maxNew_ = 64;
  double temperature_ = 0.0;
  int topK_ = 0;
  uint64_t seed_ = 0;
  int samples_ = 1;
  RunOptions run_;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> makeGenerateCommand() { return std::make_unique<GenerateCommand>(); }

}  // namespace qs::cli
