// qscope's commands: each is a small object that declares its options on a CLI11 subcommand
// and runs over the core library. main() parses, picks the parsed command and runs it.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <vector>

namespace qs::cli {

class Command {
 public:
  virtual ~Command() = default;
  // Adds the subcommand and its options to `app`; returns the subcommand.
  virtual CLI::App* setup(CLI::App& app) = 0;
  // Runs after a successful parse; returns the process exit code. Throws qs::Error for user errors.
  virtual int run() = 0;
};

std::unique_ptr<Command> makeInfoCommand();
std::unique_ptr<Command> makeEvalCommand();
std::unique_ptr<Command> makeGenerateCommand();
std::unique_ptr<Command> makeBenchLayerCommand();
std::unique_ptr<Command> makeProjectCommand();
std::unique_ptr<Command> makeRunsCommand();
std::unique_ptr<Command> makeQuantizeCommand();
std::unique_ptr<Command> makeAnalyzeCommand();
std::unique_ptr<Command> makeStatsCommand();
std::unique_ptr<Command> makePlotCommand();
std::unique_ptr<Command> makeTrainCommand();
std::unique_ptr<Command> makeTrainTokenizerCommand();
std::unique_ptr<Command> makeMigrateCommand();
std::unique_ptr<Command> makeExportCommand();
std::unique_ptr<Command> makeSearchCommand();
std::unique_ptr<Command> makeSweepCommand();
std::unique_ptr<Command> makeJobsCommand();

}  // namespace qs::cli
