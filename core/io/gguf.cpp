#include "core/io/gguf.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>

#include "core/io/ggml_quants.h"
#include "core/util/error.h"
#include "core/util/mapped_file.h"

namespace qs::io {
namespace {

enum GgufValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

constexpr int kMaxArrayDepth = 8;  // arrays of arrays nest; the parser recurses on them
constexpr uint32_t kMaxDims = 4;   // GGML_MAX_DIMS

// The shortest decimal that reads back as the same float, so 1e-5f becomes 1e-05, not
// 9.99999974737875e-06 (config values then compare equal to Hugging Face's config.json).
double floatToDouble(float f) {
  if (!std::isfinite(f)) return f;
  char buf[32];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) return std::strtod(buf, nullptr);
  }
  return f;
}

}  // namespace

std::string ggmlTypeName(uint32_t type) {
  GgmlTypeTraits t = ggmlTypeTraits(type);
  return t.blockSize ? std::string(t.name) : "type " + std::to_string(type);
}

// Cursor over the mapped file; every read is bounds-checked against the file size.
class GgufParser {
 public:
  GgufParser(GgufFile& out, const std::string& path)
      : out_(out), path_(path), d_(out.file_->data()), size_(out.file_->size()) {}

  void parse() {
    if (size_ < 4 || std::memcmp(d_, "GGUF", 4) != 0) fail("not a GGUF file (bad magic)");
    pos_ = 4;
    out_.version_ = u32();
    if (out_.version_ != 2 && out_.version_ != 3)
      fail("unsupported GGUF version " + std::to_string(out_.version_) + " (2 and 3 are supported)");
    const uint64_t nTensors = u64();
    const uint64_t nKv = u64();
    // Bound counts by the bytes left before reserving anything: a key/value is >= 13 bytes,
    // a tensor info >= 24.
    if (nKv > remaining() / 13) fail("metadata count " + std::to_string(nKv) + " exceeds the file size");
    if (nTensors > remaining() / 24) fail("tensor count " + std::to_string(nTensors) + " exceeds the file size");

    out_.metadata_ = nlohmann::json::object();
    for (uint64_t i = 0; i < nKv; ++i) {
      std::string key = str();
      if (out_.metadata_.contains(key)) fail("metadata key '" + key + "' appears twice");
      const uint32_t type = u32();
      out_.metadata_[key] = value(type, 0, key);
    }

    uint64_t alignment = 32;
    if (out_.metadata_.contains("general.alignment")) {
      const auto& a = out_.metadata_["general.alignment"];
      if (!a.is_number_unsigned() || a.get<uint64_t>() == 0 || (a.get<uint64_t>() & (a.get<uint64_t>() - 1)))
        fail("general.alignment must be a power of two");
      alignment = a.get<uint64_t>();
    }

    out_.tensors_.reserve(nTensors);
    std::set<std::string> names;
    for (uint64_t i = 0; i < nTensors; ++i) {
      GgufTensorInfo t;
      t.name = str();
      if (!names.insert(t.name).second) fail("tensor '" + t.name + "' appears twice");
      const uint32_t nDims = u32();
      if (nDims > kMaxDims) fail("tensor '" + t.name + "' has " + std::to_string(nDims) + " dimensions");
      std::vector<int64_t> ne(nDims);
      uint64_t numel = 1;
      const uint64_t cap = std::numeric_limits<int64_t>::max();
      for (uint32_t k = 0; k < nDims; ++k) {
        const uint64_t n = u64();
        if (n > cap || (n != 0 && numel > cap / n)) fail("tensor '" + t.name + "' has an overflowing shape");
        numel *= n;
        ne[k] = static_cast<int64_t>(n);
      }
      t.shape.assign(ne.rbegin(), ne.rend());  // ggml ne[0] is the innermost dimension
      t.ggmlType = u32();
      const GgmlTypeTraits traits = ggmlTypeTraits(t.ggmlType);
      if (traits.blockSize == 0)
        fail("tensor '" + t.name + "' has unknown GGML type " + std::to_string(t.ggmlType));
      if (nDims > 0 && ne[0] % static_cast<int64_t>(traits.blockSize) != 0)
        fail("tensor '" + t.name + "': row length " + std::to_string(ne[0]) + " is not a multiple of the " +
             traits.name + " block size");
      if (numel / traits.blockSize > cap / traits.typeSize) fail("tensor '" + t.name + "' is too large");
      t.nbytes = numel / traits.blockSize * traits.typeSize;
      t.offset = u64();  // relative for now
      if (t.offset % alignment != 0)
        fail("tensor '" + t.name + "' data offset is not a multiple of the alignment " + std::to_string(alignment));
      out_.tensors_.push_back(std::move(t));
    }

    const uint64_t dataStart = (pos_ + alignment - 1) / alignment * alignment;
    if (dataStart > size_ && !out_.tensors_.empty()) fail("data section starts past the end of the file");
    const uint64_t dataSize = dataStart > size_ ? 0 : size_ - dataStart;
    for (auto& t : out_.tensors_) {
      if (t.offset > dataSize || t.nbytes > dataSize - t.offset)
        fail("tensor '" + t.name + "' data lies past the end of the file (truncated?)");
      t.offset += dataStart;
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw fileError(path_, what); }
  uint64_t remaining() const { return size_ - pos_; }
  const uint8_t* take(uint64_t n) {
    if (n > remaining()) fail("unexpected end of file at byte " + std::to_string(pos_) + " (truncated?)");
    const uint8_t* p = d_ + pos_;
    pos_ += n;
    return p;
  }
  uint64_t le(int n) {
    const uint8_t* p = take(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  uint32_t u32() { return static_cast<uint32_t>(le(4)); }
  uint64_t u64() { return le(8); }
  std::string str() {
    const uint64_t n = u64();
    if (n > remaining()) fail("string of " + std::to_string(n) + " bytes runs past the end of the file");
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  static uint64_t minSize(uint32_t type) {
    switch (type) {
      case kU8: case kI8: case kBool: return 1;
      case kU16: case kI16: return 2;
      case kU32: case kI32: case kF32: return 4;
      case kArray: return 12;
      default: return 8;  // 64-bit values and string lengths
    }
  }
  nlohmann::json value(uint32_t type, int depth, const std::string& key) {
    switch (type) {
      case kU8: return static_cast<uint64_t>(le(1));
      case kI8: return static_cast<int64_t>(static_cast<int8_t>(le(1)));
      case kU16: return static_cast<uint64_t>(le(2));
      case kI16: return static_cast<int64_t>(static_cast<int16_t>(le(2)));
      case kU32: return static_cast<uint64_t>(le(4));
      case kI32: return static_cast<int64_t>(static_cast<int32_t>(le(4)));
      case kU64: return le(8);
      case kI64: return static_cast<int64_t>(le(8));
      case kF32: {
        uint32_t bits = static_cast<uint32_t>(le(4));
        float f;
        std::memcpy(&f, &bits, 4);
        return floatToDouble(f);
      }
      case kF64: {
        uint64_t bits = le(8);
        double f;
        std::memcpy(&f, &bits, 8);
        return f;
      }
      case kBool: {
        const uint64_t b = le(1);
        if (b > 1) fail("metadata '" + key + "': bool value " + std::to_string(b));
        return b == 1;
      }
      case kString: return str();
      case kArray: {
        if (depth >= kMaxArrayDepth) fail("metadata '" + key + "': arrays nest too deeply");
        const uint32_t elemType = u32();
        const uint64_t count = u64();
        if (elemType > kF64) fail("metadata '" + key + "': unknown array element type " + std::to_string(elemType));
        if (count > remaining() / minSize(elemType))
          fail("metadata '" + key + "': array of " + std::to_string(count) + " elements exceeds the file size");
        nlohmann::json arr = nlohmann::json::array();
        arr.get_ref<nlohmann::json::array_t&>().reserve(count);
        for (uint64_t i = 0; i < count; ++i) arr.push_back(value(elemType, depth + 1, key));
        return arr;
      }
      default: fail("metadata '" + key + "': unknown value type " + std::to_string(type));
    }
  }

  GgufFile& out_;
  const std::string& path_;
  const uint8_t* d_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

std::shared_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::shared_ptr<GgufFile> g(new GgufFile());
  g->file_ = MappedFile::open(path);
  GgufParser(*g, path).parse();
  return g;
}

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const uint8_t* GgufFile::data(const GgufTensorInfo& t) const { return file_->data() + t.offset; }

void GgufFile::copyOut(const GgufTensorInfo& t, void* dst) const { file_->copyOut(t.offset, t.nbytes, dst); }

const std::string& GgufFile::path() const { return file_->path(); }

}  // namespace qs::io
