// Writing a Hugging Face model folder atomically: everything goes into a temporary sibling folder
// ("<dir>.tmp-<pid>-<n>") that is renamed to <dir> only by commit(); a writer destroyed without
// commit (an error, a cancelled job) removes the temporary folder, so <dir> is either complete or
// absent. Tensors are written as model.safetensors, or as model-0000i-of-0000N.safetensors shards
// plus model.safetensors.index.json once they exceed maxShardBytes (transformers' layout).
// Tensors given lazily (addLazyTensor) are produced one at a time while their shard is written,
// so an export of a model larger than memory holds one tensor, not a shard.
// A planning writer (HfFolderWriter::Plan) goes through the same calls without touching the disk
// and reports the files, with their exact sizes, that the real writer would produce.
#pragma once
#include <ATen/core/Tensor.h>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/io/safetensors.h"

namespace qs::io {

// Tokenizer and generation files a model folder may hold, copied verbatim by copyModelFiles.
const std::vector<std::string>& tokenizerFileNames();
// tokenizerFileNames() plus the llama2.c-style "tok*_vocab.json" files that exist in dir.
std::vector<std::string> tokenizerFilesIn(const std::string& dir);

// A file of the finished folder and its size in bytes.
struct FolderFile {
  std::string name;
  int64_t bytes = 0;
};

class HfFolderWriter {
 public:
  struct Plan {};  // tag: plan only
  // dir must not exist unless force (then it is replaced on commit, never before). Throws
  // qs::Error naming dir when it exists without force or its parent is not writable.
  HfFolderWriter(const std::string& dir, bool force, int64_t maxShardBytes = int64_t{5} << 30);
  // Plans only: nothing is created, an existing dir is not an error (dirExists() says so); tensors
  // may be meta or undefined-data descriptions given through addTensorDescription.
  HfFolderWriter(Plan, const std::string& dir, int64_t maxShardBytes = int64_t{5} << 30);
  ~HfFolderWriter();
  HfFolderWriter(const HfFolderWriter&) = delete;
  HfFolderWriter& operator=(const HfFolderWriter&) = delete;

  // Adds a tensor to the current shard (written when it would grow past maxShardBytes); it is
  // held until then.
  void addTensor(const std::string& name, const at::Tensor& t);
  // A tensor known by dtype and shape, produced by `make` only when its shard is written (a
  // planning writer never calls it). make must return exactly that dtype and shape; what it
  // throws (qs::Error, qs::Cancelled) propagates and leaves no output.
  void addLazyTensor(const std::string& name, at::ScalarType dtype, const std::vector<int64_t>& shape,
                     std::function<at::Tensor()> make);
  // Planning writers only: a tensor known by dtype and shape (a source tensor not loaded).
  void addTensorDescription(const std::string& name, at::ScalarType dtype, const std::vector<int64_t>& shape);
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
  const std::string& dir() const { return dir_; }
  int64_t tensorBytes() const { return totalBytes_; }
  bool planOnly() const { return plan_; }
  bool dirExists() const { return dirExists_; }
  // The files (name, size) written or planned so far; complete after commit().
  const std::vector<FolderFile>& files() const { return files_; }

 private:
  void flushShard();

  std::string dir_, tmp_;
  bool force_ = false, committed_ = false, plan_ = false, dirExists_ = false;
  int64_t maxShard_ = 0, shardBytes_ = 0, totalBytes_ = 0;
  std::vector<StreamedTensor> pending_;  // the current shard's tensors (lazy or held; a plan: descriptions)
  std::vector<std::vector<std::string>> shardNames_;  // tensor names of each written shard
  std::vector<int64_t> shardSizes_;                   // file size of each written shard
  std::vector<std::string> extraFiles_;
  std::vector<FolderFile> files_;
};

}  // namespace qs::io
