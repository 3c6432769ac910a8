// Running another program and collecting what it printed: the scheduler's commands (sbatch,
// squeue, scancel) and the qscope jobs a coordinator starts. No shell is involved; arguments go
// to the program as they are.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace qs::proc {

struct RunOptions {
  double timeoutSeconds = 60;                             // the child is killed (SIGKILL) past this; <= 0 = none
  std::vector<std::pair<std::string, std::string>> env;   // added to (or replacing in) this process's environment
  std::string cwd;                                        // "" = this process's
};

struct Result {
  bool started = false;      // false: the program could not be run (startError says why: "not found on PATH")
  std::string startError;
  int exitCode = -1;         // the exit status; 128 + N when killed by signal N
  bool timedOut = false;
  std::string out, err;      // everything it wrote to stdout / stderr
};

Result run(const std::vector<std::string>& argv, const RunOptions& options = {});

// Whether `program` is an executable file (a path) or found on PATH.
bool onPath(const std::string& program);

// A one-line quote of a command for logs and messages: words with spaces or quotes in single quotes.
std::string quoteCommand(const std::vector<std::string>& argv);

}  // namespace qs::proc
