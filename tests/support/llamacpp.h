// llama.cpp as users run it, for the GGUF tests: node-llama-cpp's prebuilt libraries and the two
// tools built against them by tests/llamacpp/install.sh (run by .ci/setup.sh) in
// build/llamacpp (QS_LLAMACPP_DIR overrides). Tests call QS_REQUIRE_LLAMACPP() and are reported
// as skipped, with the command that installs it, where it is absent.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/util/fs.h"
#include "tests/support/cli_runner.h"

namespace qs::test {

inline std::string llamaCppDir() {
  if (const char* e = std::getenv("QS_LLAMACPP_DIR")) return e;
  return std::string(QS_BINARY_DIR) + "/llamacpp";
}

inline bool haveLlamaCpp() {
  return std::filesystem::exists(llamaCppDir() + "/ggml_ref") && std::filesystem::exists(llamaCppDir() + "/llama_logits");
}

// Runs build/llamacpp/<tool> with args (shell-quoted by the caller); its exit status, stderr in err.
inline int runLlamaTool(const std::string& tool, const std::string& args, std::string* err = nullptr) {
  const std::string log = std::filesystem::temp_directory_path().string() + "/qs-llama-tool-" +
                          std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".log";
  const int rc = std::system((shellQuote(llamaCppDir() + "/" + tool) + " " + args + " >" + shellQuote(log) + " 2>&1").c_str());
  if (err) *err = fs::exists(log) ? fs::readText(log) : "";
  std::filesystem::remove(log);
  return rc;
}

}  // namespace qs::test

#define QS_REQUIRE_LLAMACPP()                                                                       \
  do {                                                                                              \
    if (!::qs::test::haveLlamaCpp())                                                                \
      GTEST_SKIP() << "llama.cpp (node-llama-cpp) not installed at " << ::qs::test::llamaCppDir()   \
                   << " (bash tests/llamacpp/install.sh build/llamacpp, run by .ci/setup.sh)";      \
  } while (0)
