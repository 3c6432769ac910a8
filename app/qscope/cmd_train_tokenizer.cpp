// qscope train-tokenizer: trains a byte-level BPE vocabulary on text files and writes a Hugging
// Face tokenizer folder (tokenizer.json, tokenizer_config.json, special_tokens_map.json) that
// `qscope train --tokenizer DIR` and every model-loading command read back.
#include <cstdio>
#include <sstream>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/io/tokenizer/bpe_trainer.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::cli {
namespace {

std::vector<std::string> splitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

class TrainTokenizerCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("train-tokenizer", "Train a byte-level BPE tokenizer (writes tokenizer.json)");
    cmd->add_option("--text", text_, "training text files (UTF-8), comma-separated")->required();
    cmd->add_option("--vocab-size", o_.vocabSize, "final vocabulary size (special tokens + 256 bytes + merges)")
        ->capture_default_str();
    cmd->add_option("--min-frequency", o_.minFrequency, "never merge a pair seen fewer times")->capture_default_str();
    cmd->add_option("--special", special_, "special tokens, comma-separated (the first is BOS/EOS)")
        ->capture_default_str();
    cmd->add_option("-o,--out", out_, "output folder")->required();
    cmd->add_flag("--json", json_, "print the result as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar");
    return cmd;
  }

  int run() override {
    o_.specialTokens = splitCommas(special_);
    const std::vector<std::string> files = splitCommas(text_);
    if (files.empty()) throw Error("train-tokenizer: --text names no file");
    io::BpeTrainer trainer(o_);
    ProgressBar bar("train-tokenizer", !noProgress_);
    io::BpeTrainResult r;
    try {
      for (size_t i = 0; i < files.size(); ++i) {
        if (!fs::exists(files[i])) throw fileError(files[i], "text file not found (--text)");
        const std::string text = fs::readText(files[i]);
        jobs::SubProgress sub(bar, 0.2 * static_cast<double>(i) / static_cast<double>(files.size()),
                              0.2 * static_cast<double>(i + 1) / static_cast<double>(files.size()));
        trainer.addText(text, files[i], sub);
      }
      jobs::SubProgress merges(bar, 0.2, 1.0);
      r = trainer.train(merges);
      io::writeBpeTokenizer(out_, r, o_);
    } catch (const Cancelled&) {
      bar.finish();
      throw;
    }
    bar.finish();
    // Read back through the loader every model command uses: what was written is what loads.
    auto tok = io::loadTokenizer(out_);
    nlohmann::json out = {{"out", out_},
                          {"vocab_size", tok->vocabSize()},
                          {"merges", r.merges.size()},
                          {"words", r.words},
                          {"unique_words", r.uniqueWords},
                          {"stopped_by_min_frequency", r.stoppedByMinFrequency},
                          {"bos_id", tok->bosId() ? nlohmann::json(*tok->bosId()) : nlohmann::json()},
                          {"eos_id", tok->eosId() ? nlohmann::json(*tok->eosId()) : nlohmann::json()}};
    if (json_) {
      printJson(out);
    } else {
      std::printf("trained %zu merges on %s words (%s distinct); vocabulary %d\n", r.merges.size(),
                  formatThousands(r.words).c_str(), formatThousands(r.uniqueWords).c_str(), tok->vocabSize());
      if (r.stoppedByMinFrequency)
        std::printf("stopped early: no pair left that occurs %lld times (--min-frequency)\n",
                    static_cast<long long>(o_.minFrequency));
      std::printf("tokenizer folder: %s\n", out_.c_str());
    }
    return 0;
  }

 private:
  io::BpeTrainOptions o_;
  std::string text_, out_, special_ = "<|endoftext|>";
  bool json_ = false, noProgress_ = false;
};

}  // namespace

std::unique_ptr<Command> makeTrainTokenizerCommand() { return std::make_unique<TrainTokenizerCommand>(); }

}  // namespace qs::cli
