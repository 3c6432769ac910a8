// Writing a Hugging Face model folder atomically: everything goes into a temporary sibling folder
// ("<dir>.tmp-<pid>-<n>") that is renamed to <dir> only by commit(); a writer destroyed without
// commit (an error, a cancelled job) removes the temporary folder, so <dir> is either complete or
// absent. Tensors are written as model.safetensors, or as model-0000i-of-0000N.safetensors shards
// plus model.safetensors.index.json once they exceed maxShardBytes (transformers' layout).
#pragma once
#include <ATen/core/Tensor.h>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace qs::io {

// Tokenizer and generation files a model folder may hold, copied verbatim by copyModelFiles.
const std::vector<std::string>& tokenizerFileNames();
// tokenizerFileNames() plus the llama2.c-style "tok*_vocab.json" files that exist in dir.
std::vector<std::string> tokenizerFilesIn(const std::string& dir);

class HfFolderWriter {
 public:
  // dir must not exist unless force (then it is replaced on commit, never before). Throws
  // qs::Error naming dir when it exists without force or its parent is not writable.
  HfFolderWriter(const std::string& dir, bool force, int64_t maxShardBytes = int64_t{5} << 30);
  ~HfFolderWriter();
  HfFolderWriter(const HfFolderWriter&) = delete;
  HfFolderWriter& operator=(const HfFolderWriter&) = delete;

  // Adds a tensor to the current shard (written when it would grow past maxShardBytes).
  void addTensor(const std::string& name, const at::Tensor& t);
  void writeJson(const std::string& fileName, const nlohmann::json& j);
  // A whole safetensors file of its own (not part of the model shards), e.g. scale_shift.safetensors.
  void writeSafetensorsFile(const std::string& fileName, const std::vector<std::pair<std::string, at::Tensor>>& t,
                            const std::map<std::string, std::string>& metadata = {});
  // Copies the files of `names` that exist in srcDir; returns the names copied.
  std::vector<std::string> copyModelFiles(const std::string& srcDir, const std::vector<std::string>& names);
  // Flushes the last shard, names shards and writes the index, then renames the folder into place.
  // Returns the files of the folder.
  std::vector<std::string> commit();

  const std::string& tempDir() const { return tmp_; }
  int64_t tensorBytes() const { return totalBytes_; }

 private:
  void flushShard();

  std::string dir_, tmp_;
  bool force_ = false, committed_ = false;
  int64_t maxShard_ = 0, shardBytes_ = 0, totalBytes_ = 0;
  std::vector<std::pair<std::string, at::Tensor>> pending_;
  std::vector<std::vector<std::string>> shardNames_;  // tensor names of each written shard
  std::vector<std::string> extraFiles_;
};

}  // namespace qs::io
