// The bundled demo model (projects/demo: a 1.09M-parameter OPT trained by QuantScope) and its
// text sample, for end-to-end tests that need a real model without ../shared; and a project
// folder around it.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

namespace qs::test {

inline std::string demoModel() { return std::string(QS_SOURCE_DIR) + "/projects/demo/model"; }
inline std::string demoText() { return std::string(QS_SOURCE_DIR) + "/projects/demo/sample.txt"; }

// dir/p: a project named `name` on the demo model (project.yaml only; the run store is created on
// first use). Returns its folder.
inline std::string makeDemoProject(const std::string& dir, const std::string& name) {
  const std::string proj = dir + "/p";
  std::filesystem::create_directories(proj);
  std::ofstream(proj + "/project.yaml") << "name: " << name << "\nmodel: " << demoModel() << "\n";
  return proj;
}

}  // namespace qs::test
