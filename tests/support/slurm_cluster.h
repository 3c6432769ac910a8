// A one-node Slurm 22.05 cluster on loopback for a test (tests/slurm/cluster.sh: munge, slurmctld,
// slurmd, all state in the test's temporary folder), started by the fixture and stopped after it;
// SLURM_CONF points this process and its children at it. Tests using it are skipped, with the
// reason and the install command, only where the daemons cannot start.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/util/fs.h"
#include "tests/support/cli_runner.h"
#include "tests/support/test_paths.h"

namespace qs::test {

inline std::string slurmClusterScript() { return std::string(QS_SOURCE_DIR) + "/tests/slurm/cluster.sh"; }

inline int runShell(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

class LoopbackSlurm {
 public:
  // Starts the cluster in dir/cluster; "" on success, else why it could not start.
  std::string start(const std::string& dir) {
    dir_ = dir + "/cluster";
    const std::string log = dir + "/cluster-start.log";
    if (runShell("bash " + shellQuote(slurmClusterScript()) + " start " + shellQuote(dir_) + " >" + shellQuote(log) +
                 " 2>&1") != 0) {
      std::string why = fs::exists(log) ? fs::readText(log) : "";
      const size_t at = why.rfind("ERROR");
      return at == std::string::npos ? why.substr(why.size() > 300 ? why.size() - 300 : 0) : why.substr(at);
    }
    started_ = true;
    ::setenv("SLURM_CONF", (dir_ + "/slurm.conf").c_str(), 1);
    return "";
  }
  // cluster.sh's other commands: kill-slurmd, start-slurmd, stop.
  int command(const std::string& what) const {
    return runShell("bash " + shellQuote(slurmClusterScript()) + " " + what + " " + shellQuote(dir_) + " >/dev/null 2>&1");
  }
  ~LoopbackSlurm() {
    if (started_) command("stop");
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool started_ = false;
};

}  // namespace qs::test

// In a test body or SetUp: starts `cluster` in `dir` or skips the test.
#define QS_START_SLURM(cluster, dir)                                                                          \
  do {                                                                                                        \
    const std::string why_ = (cluster).start(dir);                                                            \
    if (!why_.empty())                                                                                        \
      GTEST_SKIP() << "a Slurm cluster could not start on loopback (" << why_                                 \
                   << "); install it with: bash tests/slurm/cluster.sh install";                              \
  } while (0)
