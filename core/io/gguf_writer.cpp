#include "core/io/gguf_writer.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/io/ggml_quants.h"
#include "core/util/error.h"

namespace qs::io {
namespace {

constexpr uint64_t kAlignment = 32;  // general.alignment's default
enum : uint32_t { kTypeU32 = 4, kTypeI32 = 5, kTypeF32 = 6, kTypeBool = 7, kTypeString = 8, kTypeArray = 9 };

uint64_t alignUp(uint64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void putString(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

GgufWriter::GgufWriter(const std::string& path, bool force) : path_(path), force_(force) {
  namespace sfs = std::filesystem;
  pathExists_ = sfs::exists(path_);
  if (pathExists_ && sfs::is_directory(path_)) throw fileError(path_, "is a folder; give a .gguf file name");
  if (pathExists_ && !force_) throw fileError(path_, "already exists; give --force to replace it");
  const sfs::path p = sfs::absolute(path_);
  if (!sfs::is_directory(p.parent_path()))
    throw fileError(path_, "its folder " + p.parent_path().string() + " does not exist");
  tmp_ = (p.parent_path() / ("." + p.filename().string() + ".tmp-" + std::to_string(::getpid()))).string();
}

GgufWriter::GgufWriter(Plan, const std::string& path) : path_(path), plan_(true) {
  pathExists_ = std::filesystem::exists(path_);
}

GgufWriter::~GgufWriter() {
  if (!committed_ && !tmp_.empty()) {
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
  }
}

void GgufWriter::startKey(const std::string& key, uint32_t valueType) {
  putString(header_, key);
  put(header_, valueType);
  ++kvCount_;
}
void GgufWriter::setU32(const std::string& key, uint32_t v) {
  startKey(key, kTypeU32);
  put(header_, v);
}
void GgufWriter::setI32(const std::string& key, int32_t v) {
  startKey(key, kTypeI32);
  put(header_, v);
}
void GgufWriter::setF32(const std::string& key, float v) {
  startKey(key, kTypeF32);
  put(header_, v);
}
void GgufWriter::setBool(const std::string& key, bool v) {
  startKey(key, kTypeBool);
  put<uint8_t>(header_, v ? 1 : 0);
}
void GgufWriter::setString(const std::string& key, const std::string& v) {
  startKey(key, kTypeString);
  putString(header_, v);
}
// Arrays: element type and count after the array type.
void GgufWriter::setStringArray(const std::string& key, const std::vector<std::string>& v) {
  startKey(key, kTypeArray);
  put(header_, kTypeString);
  put<uint64_t>(header_, v.size());
  for (const auto& s : v) putString(header_, s);
}
void GgufWriter::setF32Array(const std::string& key, const std::vector<float>& v) {
  startKey(key, kTypeArray);
  put(header_, kTypeF32);
  put<uint64_t>(header_, v.size());
  for (float f : v) put(header_, f);
}
void GgufWriter::setI32Array(const std::string& key, const std::vector<int32_t>& v) {
  startKey(key, kTypeArray);
  put(header_, kTypeI32);
  put<uint64_t>(header_, v.size());
  for (int32_t i : v) put(header_, i);
}

void GgufWriter::addTensor(const std::string& name, uint32_t ggmlType, const std::vector<int64_t>& shape,
                           std::function<void(uint8_t*)> produce) {
  const GgmlTypeTraits t = ggmlTypeTraits(ggmlType);
  if (shape.empty() || shape.size() > 4 || t.blockSize == 0)
    throw Error("GGUF tensor '" + name + "': needs 1 to 4 dimensions and a known GGML type");
  if (static_cast<uint64_t>(shape.back()) % t.blockSize != 0)
    throw Error("GGUF tensor '" + name + "': rows of " + std::to_string(shape.back()) + " do not split into " +
                t.name + " blocks of " + std::to_string(t.blockSize));
  uint64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= static_cast<uint64_t>(shape[i]);
  tensors_.push_back({name, ggmlType, shape, rows * ggmlRowBytes(ggmlType, shape.back()), std::move(produce)});
}

void GgufWriter::commit() {
  std::string head;
  head += "GGUF";
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kvCount_);
  head += header_;
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    putString(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put<uint64_t>(head, static_cast<uint64_t>(*it));
    put<uint32_t>(head, t.type);
    put<uint64_t>(head, offset);
    offset = alignUp(offset + t.bytes);
  }
  const uint64_t dataStart = alignUp(head.size());
  uint64_t end = dataStart;
  for (const Tensor& t : tensors_) end = alignUp(end + t.bytes);  // each tensor padded, as ggml writes
  fileBytes_ = end;
  if (plan_) return;

  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(tmp_.c_str(), "wb"));
  if (!f) throw fileError(path_, std::string("cannot write (") + std::strerror(errno) + ")");
  auto write = [&](const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f.get()) != n)
      throw fileError(path_, std::string("write failed (") + std::strerror(errno) + "); nothing was written");
  };
  const std::string zeros(kAlignment, '\0');
  head.append(dataStart - head.size(), '\0');
  write(head.data(), head.size());
  uint64_t pos = dataStart;
  std::vector<uint8_t> buf;
  for (Tensor& t : tensors_) {
    buf.assign(t.bytes, 0);
    t.produce(buf.data());
    t.produce = nullptr;
    write(buf.data(), buf.size());
    pos += t.bytes;
    write(zeros.data(), alignUp(pos) - pos);
    pos = alignUp(pos);
  }
  buf = {};
  if (std::fflush(f.get()) != 0 || ::fsync(::fileno(f.get())) != 0)
    throw fileError(path_, std::string("write failed (") + std::strerror(errno) + "); nothing was written");
  f.reset();
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) throw fileError(path_, "cannot move the written file into place: " + ec.message());
  committed_ = true;
}

}  // namespace qs::io
