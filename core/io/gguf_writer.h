// GGUF v3 writer (llama.cpp's model file), streamed and atomic: metadata and tensor infos are
// given first, each tensor's bytes are produced only when the file reaches it (one tensor in
// memory), the file is written under a temporary name beside the destination and renamed into
// place by commit(). An exception (qs::Error, qs::Cancelled) from a producer or the disk leaves
// no file. A planning writer computes the exact file size without writing. Torch-free.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qs::io {

class GgufWriter {
 public:
  struct Plan {};  // tag: plan only
  // path must not exist unless force (replaced on commit, never before). Throws qs::Error naming
  // path when it exists without force or its folder is not writable.
  GgufWriter(const std::string& path, bool force);
  GgufWriter(Plan, const std::string& path);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Metadata, written in the order given (GGUF value types u32, i32, f32, bool, string, arrays).
  void setU32(const std::string& key, uint32_t v);
  void setI32(const std::string& key, int32_t v);
  void setF32(const std::string& key, float v);
  void setBool(const std::string& key, bool v);
  void setString(const std::string& key, const std::string& v);
  void setStringArray(const std::string& key, const std::vector<std::string>& v);
  void setF32Array(const std::string& key, const std::vector<float>& v);
  void setI32Array(const std::string& key, const std::vector<int32_t>& v);

  // A tensor of GGML type `ggmlType` and PyTorch-order shape (outermost first; the last dimension
  // is a row and must split into the type's blocks). `produce` fills exactly bytes(...) bytes.
  void addTensor(const std::string& name, uint32_t ggmlType, const std::vector<int64_t>& shape,
                 std::function<void(uint8_t*)> produce);
  // Writes everything and renames the file into place (planning writers only total the size).
  void commit();

  uint64_t fileBytes() const { return fileBytes_; }  // after commit
  bool planOnly() const { return plan_; }
  bool pathExists() const { return pathExists_; }
  const std::string& path() const { return path_; }

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<int64_t> shape;
    uint64_t bytes;
    std::function<void(uint8_t*)> produce;
  };
  void startKey(const std::string& key, uint32_t valueType);  // key, value type; counts the pair

  std::string path_, tmp_;
  bool plan_ = false, force_ = false, committed_ = false, pathExists_ = false;
  std::string header_;  // serialized key/values
  uint64_t kvCount_ = 0;
  std::vector<Tensor> tensors_;
  uint64_t fileBytes_ = 0;
};

}  // namespace qs::io
