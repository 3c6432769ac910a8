// Evaluation text by name or path. Named datasets follow the GPTQ evaluation protocol's text
// preparation so numbers line up with published tables:
//   wikitext2  WikiText-2 raw test, rows joined with "\n\n" (the shipped file is already joined)
//   ptb        Penn Treebank test, sentences stripped and joined with " " (GPTQ's ptb_text_only)
// Any other value is read as a text file as-is.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace qs::eval {

struct DatasetText {
  std::string name;     // "wikitext2", "ptb", or the file name
  std::string path;     // file the text came from
  std::string text;
};

// Folders searched for named datasets, in order: dataDir (when non-empty), $QS_DATA_DIR,
// ./data, ../shared/data, ../../shared/data. Named files live in <folder>/text/.
std::vector<std::string> dataSearchPath(const std::string& dataDir = "");

// Throws qs::Error naming the dataset, the folders searched and what to do.
DatasetText loadDataset(const std::string& nameOrPath, const std::string& dataDir = "");

// The names loadDataset understands (for help texts).
std::vector<std::string> knownDatasets();

// Training text by name (qscope train --dataset): the same names, search path and text
// preparation, but never an evaluation test split:
//   wikitext2  WikiText-2 validation split (text/wikitext-2-valid.tokens, the tokenized release
//              with <unk>); the train split is not shipped and the test split stays for evaluation
//   ptb        Penn Treebank validation split (text/ptb.valid.txt), joined like ptb
//   brown      the Brown corpus (text/brown.txt)
//   austen     Jane Austen's novels (text/austen.txt)
// Any other value is read as a text file. Throws like loadDataset.
DatasetText loadTrainingDataset(const std::string& nameOrPath, const std::string& dataDir = "");

// The names loadTrainingDataset understands, each with the file it reads (for help texts).
std::vector<std::pair<std::string, std::string>> knownTrainingDatasets();

// Calibration text by name (qscope quantize's `dataset`): never an evaluation split, like the
// training names (wikitext2 = WikiText-2 validation, ptb = PTB validation, brown, austen), plus
// wikitext2-valid and ptb-valid, which name the split. Any other value is a text or .jsonl file
// (rows of {"text": ...}). Throws like loadDataset.
DatasetText loadCalibrationDataset(const std::string& nameOrPath, const std::string& dataDir = "");
std::vector<std::pair<std::string, std::string>> knownCalibrationDatasets();

}  // namespace qs::eval
