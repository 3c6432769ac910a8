// Shared plumbing of the qscope commands: the stderr progress bar with Ctrl-C cancellation,
// parsing of --device/--dtype, and the JSON/terminal output helpers.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "core/jobs/progress.h"
#include "core/model/model.h"

namespace qs::cli {

// Draws "[#####     ]  45%  message" on stderr (redrawn in place on a terminal, a line per
// 10% otherwise). While alive, the first Ctrl-C requests cancellation; a second one exits.
class ProgressBar : public jobs::CancellableProgress {
 public:
  explicit ProgressBar(std::string label, bool enabled = true);
  ~ProgressBar() override;
  void update(double fraction, const std::string& message) override;
  void finish();  // clears the bar line

 private:
  std::string label_;
  bool enabled_, tty_, drawn_ = false;
  double lastDraw_ = -1;
  int lastDecile_ = -1;
};

// Installs the Ctrl-C/SIGTERM handler (main() calls it first thing): an interrupt before a job's
// ProgressBar exists is remembered, and that job starts cancelled instead of the process dying.
void installInterruptHandler();

// Options every model-running command shares.
struct RunOptions {
  std::string device = "cpu";
  std::string dtype = "float32";
  int threads = 0;
  std::string exec = "auto";       // --exec auto|whole|stream
  std::string maxMemory;           // --max-memory 24G ("" = from the free memory)
};
void addRunOptions(CLI::App& cmd, RunOptions& o);
// Applies threads, validates device/dtype (messages name --device/--dtype).
model::LoadOptions resolveRunOptions(const RunOptions& o);
// --exec / --max-memory as the model's exec options (messages name the flag).
model::ExecOptions resolveExecOptions(const RunOptions& o);

// Prints JSON on stdout (pretty, 2 spaces).
void printJson(const nlohmann::json& j);
std::string formatThousands(long long n);

}  // namespace qs::cli
