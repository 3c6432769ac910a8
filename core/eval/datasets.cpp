#include "core/eval/datasets.h"

#include <cstdlib>
#include <sstream>

#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/strings.h"

namespace qs::eval {
namespace {

struct Named {
  const char* name;
  const char* file;  // relative to a data folder
};
const Named kNamed[] = {
    {"wikitext2", "text/wikitext-2-raw-test.txt"},
    {"ptb", "text/ptb.test.txt"},
    {"ptb-valid", "text/ptb.valid.txt"},
};
const Named kTraining[] = {
    {"wikitext2", "text/wikitext-2-valid.tokens"},
    {"ptb", "text/ptb.valid.txt"},
    {"brown", "text/brown.txt"},
    {"austen", "text/austen.txt"},
};

// Calibration sets: the training names plus names that say the split.
const Named kCalibration[] = {
    {"wikitext2", "text/wikitext-2-valid.tokens"},
    {"wikitext2-valid", "text/wikitext-2-valid.tokens"},
    {"ptb", "text/ptb.valid.txt"},
    {"ptb-valid", "text/ptb.valid.txt"},
    {"brown", "text/brown.txt"},
    {"austen", "text/austen.txt"},
};

// GPTQ joins the ptb_text_only "sentence" column with single spaces; those sentences are the
// Mikolov file's lines without their surrounding whitespace.
std::string joinPtb(const std::string& raw) {
  std::istringstream in(raw);
  std::string line, out;
  while (std::getline(in, line)) {
    std::string t = str::trim(line);
    if (t.empty()) continue;
    if (!out.empty()) out += ' ';
    out += t;
  }
  return out;
}

}  // namespace

std::vector<std::string> dataSearchPath(const std::string& dataDir) {
  std::vector<std::string> dirs;
  if (!dataDir.empty()) dirs.push_back(dataDir);
  if (const char* env = std::getenv("QS_DATA_DIR"); env && *env) dirs.push_back(env);
  dirs.push_back("data");
  dirs.push_back("../shared/data");
  dirs.push_back("../../shared/data");
  return dirs;
}

std::vector<std::string> knownDatasets() {
  std::vector<std::string> names;
  for (auto& n : kNamed) names.push_back(n.name);
  return names;
}

namespace {

template <size_t N>
DatasetText loadFrom(const Named (&table)[N], const std::string& nameOrPath, const std::string& dataDir) {
  for (auto& n : table) {
    if (nameOrPath != n.name) continue;
    std::string searched;
    for (auto& dir : dataSearchPath(dataDir)) {
      std::string p = fs::join(dir, n.file);
      if (fs::exists(p)) {
        std::string raw = fs::readText(p);
        std::string name = n.name;
        return {name, p, name.rfind("ptb", 0) == 0 ? joinPtb(raw) : raw};
      }
      searched += (searched.empty() ? "" : ", ") + dir;
    }
    throw Error(std::string("dataset '") + n.name + "': " + n.file + " not found in " + searched +
                "; pass --data-dir DIR (the folder holding text/) or a path to a text file");
  }
  if (!fs::exists(nameOrPath)) {
    std::string names;
    for (auto& n : table) names += std::string(names.empty() ? "" : ", ") + n.name;
    throw fileError(nameOrPath, "no such file, and not a known dataset name (" + names + ")");
  }
  if (fs::isDirectory(nameOrPath)) throw fileError(nameOrPath, "is a folder; pass a text file");
  std::string file = nameOrPath.substr(nameOrPath.find_last_of('/') + 1);
  return {file, nameOrPath, fs::readText(nameOrPath)};
}

}  // namespace

DatasetText loadDataset(const std::string& nameOrPath, const std::string& dataDir) {
  return loadFrom(kNamed, nameOrPath, dataDir);
}

DatasetText loadTrainingDataset(const std::string& nameOrPath, const std::string& dataDir) {
  return loadFrom(kTraining, nameOrPath, dataDir);
}

std::vector<std::pair<std::string, std::string>> knownTrainingDatasets() {
  std::vector<std::pair<std::string, std::string>> names;
  for (auto& n : kTraining) names.emplace_back(n.name, n.file);
  return names;
}

DatasetText loadCalibrationDataset(const std::string& nameOrPath, const std::string& dataDir) {
  return loadFrom(kCalibration, nameOrPath, dataDir);
}

std::vector<std::pair<std::string, std::string>> knownCalibrationDatasets() {
  std::vector<std::pair<std::string, std::string>> names;
  for (auto& n : kCalibration) names.emplace_back(n.name, n.file);
  return names;
}

}  // namespace qs::eval
