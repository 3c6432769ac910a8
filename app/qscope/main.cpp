// qscope: the headless QuantScope CLI. Everything the GUI does, this does too.
#include <c10/util/Exception.h>

#include <cstdio>
#include <cstring>
#include <iostream>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/util/error.h"
#include "core/util/oom.h"
#include "core/util/log.h"
#ifdef QS_HAVE_GPU
#include "gpu/register.h"
#endif

namespace {

// LibTorch errors carry a C++ stack trace after the first line; users get the first line.
std::string firstLine(const std::string& s) {
  auto n = s.find('\n');
  return n == std::string::npos ? s : s.substr(0, n);
}

bool looksLikeOom(const std::string& s) { return qs::isOutOfMemoryText(s); }

}  // namespace

int main(int argc, char** argv) {
  qs::cli::installInterruptHandler();
  CLI::App app{"qscope: post-training quantization workbench for LLMs (headless CLI)", "qscope"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("qscope ") + QS_VERSION);
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "debug logging");
  app.add_flag("-q,--quiet", quiet, "warnings and errors only");

  std::vector<std::unique_ptr<qs::cli::Command>> commands;
  commands.push_back(qs::cli::makeInfoCommand());
  commands.push_back(qs::cli::makeEvalCommand());
  commands.push_back(qs::cli::makeGenerateCommand());
  commands.push_back(qs::cli::makeBenchLayerCommand());
  commands.push_back(qs::cli::makeProjectCommand());
  commands.push_back(qs::cli::makeRunsCommand());
  commands.push_back(qs::cli::makeQuantizeCommand());
  commands.push_back(qs::cli::makeAnalyzeCommand());
  commands.push_back(qs::cli::makeStatsCommand());
  commands.push_back(qs::cli::makePlotCommand());
  commands.push_back(qs::cli::makeTrainCommand());
  commands.push_back(qs::cli::makeTrainTokenizerCommand());
  commands.push_back(qs::cli::makeMigrateCommand());
  commands.push_back(qs::cli::makeExportCommand());
  commands.push_back(qs::cli::makeSearchCommand());
  commands.push_back(qs::cli::makeSweepCommand());
  commands.push_back(qs::cli::makeJobsCommand());
  std::vector<std::pair<CLI::App*, qs::cli::Command*>> subs;
  for (auto& c : commands) subs.emplace_back(c->setup(app), c.get());

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (verbose) qs::log::setLevel(qs::log::Level::Debug);
  if (quiet) qs::log::setLevel(qs::log::Level::Warn);
#ifdef QS_HAVE_GPU
  // CUDA kernels replace core's CPU twins for CUDA tensors where a device and CUDA LibTorch exist.
  qs::gpu::registerKernels();
#endif

  try {
    for (auto& [sub, cmd] : subs)
      if (sub->parsed()) return cmd->run();
  } catch (const qs::Cancelled&) {
    std::fprintf(stderr, "qscope: cancelled; nothing was written\n");
    return 130;
  } catch (const qs::Error& e) {
    std::fprintf(stderr, "qscope: error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::string msg = firstLine(e.what_without_backtrace());
    if (looksLikeOom(msg))
      std::fprintf(stderr, "qscope: error: out of memory (%s); stream the model block by block (--exec stream, or "
                   "a lower --max-memory), or try --batch-size 1, a smaller --seqlen or --dtype bfloat16\n", msg.c_str());
    else
      std::fprintf(stderr, "qscope: error: computation failed: %s\n", msg.c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "qscope: error: out of memory; stream the model block by block (--exec stream, or a lower "
                         "--max-memory), or try a smaller --seqlen/--batch-size or --dtype bfloat16\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qscope: error: %s\n", firstLine(e.what()).c_str());
    return 2;
  }
  return 0;
}
