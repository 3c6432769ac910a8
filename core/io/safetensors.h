// Safetensors reading (mmap, validated header, lazy tensors) and atomic writing.
// The header is treated as hostile input: sizes, nesting, offsets and overlaps are all checked
// before any tensor is exposed, so a corrupt file is a qs::Error, never a crash.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/io/dtype.h"
#include "core/io/weight_source.h"

namespace qs {
class MappedFile;
}

namespace qs::io {

// Limits applied to the JSON header; real headers are far below them.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100ull * 1024 * 1024;
constexpr int kSafetensorsMaxJsonDepth = 16;

class SafetensorsFile {
 public:
  // Maps the file and validates the whole header; throws qs::Error naming the file (and tensor).
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  // Tensors in data-offset order (the order they lie in the file).
  const std::vector<TensorMeta>& tensors() const { return metas_; }
  // The "__metadata__" string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorMeta* find(const std::string& name) const;
  // A CPU tensor in the stored dtype that owns a copy of the bytes.
  at::Tensor load(const std::string& name) const;
  const std::string& path() const;

 private:
  struct Entry {
    uint64_t begin = 0;  // absolute file offsets
    uint64_t end = 0;
  };
  std::shared_ptr<MappedFile> file_;
  std::vector<TensorMeta> metas_;
  std::vector<Entry> entries_;                 // parallel to metas_
  std::map<std::string, size_t> index_;        // name -> position in metas_
  std::map<std::string, std::string> metadata_;
};

// WeightSource over one .safetensors file.
class SafetensorsWeightSource : public WeightSource {
 public:
  explicit SafetensorsWeightSource(const std::string& path);
  const std::vector<TensorMeta>& tensors() const override { return file_->tensors(); }
  at::Tensor load(const std::string& name) const override { return file_->load(name); }
  std::string path() const override { return file_->path(); }
  const SafetensorsFile& file() const { return *file_; }

 private:
  std::shared_ptr<SafetensorsFile> file_;
};

// Writes tensors (any device/layout; made contiguous CPU copies) with an 8-byte padded header.
// Atomic: a temporary file in the same folder is renamed over path only after a full write, and
// removed on any failure. Throws qs::Error for duplicate/empty names or unsupported dtypes.
void writeSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// One tensor of a safetensors file by its description alone (export planning).
struct SafetensorsEntry {
  std::string name;
  at::ScalarType dtype = at::kFloat;
  std::vector<int64_t> shape;
};

// A tensor written by writeSafetensorsStreamed: described up front, produced when its turn comes.
struct StreamedTensor {
  SafetensorsEntry entry;
  std::function<at::Tensor()> load;  // must return a tensor of entry's dtype and shape
};
// Like writeSafetensors, but holds one tensor in memory at a time: the header is written from the
// descriptions, then each tensor is loaded, written and dropped (artifacts larger than memory).
// Atomic likewise; a tensor whose dtype or shape differs from its description is a qs::Error.
void writeSafetensorsStreamed(const std::string& path, const std::vector<StreamedTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});
// The exact byte size writeSafetensors gives these tensors (8-byte length, padded JSON header,
// data); throws like writeSafetensors for names or dtypes it would refuse.
int64_t safetensorsFileSize(const std::vector<SafetensorsEntry>& entries,
                            const std::map<std::string, std::string>& metadata = {});

}  // namespace qs::io
