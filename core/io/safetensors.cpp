#include "core/io/safetensors.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "core/io/tensor_dtype.h"
#include "core/util/error.h"
#include "core/util/mapped_file.h"

namespace qs::io {
namespace {

uint64_t readLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Rejects deeply nested JSON before nlohmann sees it: a hostile "[[[[..." header must not be
// able to exhaust the stack or memory of the parser.
void checkJsonDepth(const std::string& path, const char* s, size_t n) {
  int depth = 0;
  bool inString = false;
  for (size_t i = 0; i < n; ++i) {
    char c = s[i];
    if (inString) {
      if (c == '\\') ++i;
      else if (c == '"') inString = false;
      continue;
    }
    if (c == '"') inString = true;
    else if (c == '[' || c == '{') {
      if (++depth > kSafetensorsMaxJsonDepth)
        throw fileError(path, "safetensors header nests deeper than " +
                                  std::to_string(kSafetensorsMaxJsonDepth) + " levels");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

uint64_t jsonUnsigned(const std::string& path, const std::string& name, const char* field,
                      const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  throw fileError(path, "tensor '" + name + "': " + field + " must hold non-negative integers");
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto file = MappedFile::open(path);
  const uint64_t fileSize = file->size();
  if (fileSize < 8) throw fileError(path, "not a safetensors file (shorter than its 8-byte header length)");
  const uint64_t headerLen = readLe64(file->data());
  if (headerLen > fileSize - 8)
    throw fileError(path, "safetensors header length " + std::to_string(headerLen) +
                              " exceeds the file size " + std::to_string(fileSize) +
                              " (truncated or not a safetensors file)");
  if (headerLen > kSafetensorsMaxHeaderBytes)
    throw fileError(path, "safetensors header of " + std::to_string(headerLen) +
                              " bytes exceeds the 100 MB limit");
  const char* headerText = reinterpret_cast<const char*>(file->data() + 8);
  checkJsonDepth(path, headerText, headerLen);

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(headerText, headerText + headerLen);
  } catch (const nlohmann::json::exception& e) {
    throw fileError(path, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw fileError(path, "safetensors header is not a JSON object");

  std::shared_ptr<SafetensorsFile> st(new SafetensorsFile());
  st->file_ = file;
  const uint64_t dataStart = 8 + headerLen;
  const uint64_t dataSize = fileSize - dataStart;

  struct Parsed {
    TensorMeta meta;
    uint64_t begin, end;
  };
  std::vector<Parsed> parsed;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw fileError(path, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw fileError(path, "__metadata__ key '" + m.key() + "' is not a string");
        st->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (name.empty()) throw fileError(path, "tensor with an empty name");
    if (!v.is_object()) throw fileError(path, "tensor '" + name + "': entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string())
      throw fileError(path, "tensor '" + name + "': missing or non-string dtype");
    auto dtype = parseDType(dt->get<std::string>());
    if (!dtype)
      throw fileError(path, "tensor '" + name + "': unsupported dtype '" + dt->get<std::string>() + "'");
    if (sh == v.end() || !sh->is_array())
      throw fileError(path, "tensor '" + name + "': missing or non-array shape");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      throw fileError(path, "tensor '" + name + "': data_offsets must be [begin, end]");

    Parsed p;
    p.meta.name = name;
    p.meta.dtype = *dtype;
    const uint64_t elemSize = dtypeSize(*dtype);
    uint64_t numel = 1;
    const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / elemSize;
    for (const auto& d : *sh) {
      uint64_t dim = jsonUnsigned(path, name, "shape", d);
      if (dim > limit || (dim != 0 && numel > limit / dim))
        throw fileError(path, "tensor '" + name + "': shape " + sh->dump() + " overflows");
      numel *= dim;
      p.meta.shape.push_back(static_cast<int64_t>(dim));
    }
    p.begin = jsonUnsigned(path, name, "data_offsets", (*off)[0]);
    p.end = jsonUnsigned(path, name, "data_offsets", (*off)[1]);
    if (p.begin > p.end)
      throw fileError(path, "tensor '" + name + "': data_offsets begin > end");
    if (p.end > dataSize)
      throw fileError(path, "tensor '" + name + "': data_offsets end " + std::to_string(p.end) +
                                " is past the data section (" + std::to_string(dataSize) +
                                " bytes; file truncated?)");
    if (p.end - p.begin != numel * elemSize)
      throw fileError(path, "tensor '" + name + "': " + std::to_string(p.end - p.begin) +
                                " data bytes do not match dtype " + dtypeName(*dtype) + " x shape " +
                                shapeString(p.meta.shape));
    parsed.push_back(std::move(p));
  }

  std::stable_sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < parsed.size(); ++i) {
    if (parsed[i].begin < parsed[i - 1].end)
      throw fileError(path, "tensors '" + parsed[i - 1].meta.name + "' and '" +
                                parsed[i].meta.name + "' overlap in the data section");
  }
  st->metas_.reserve(parsed.size());
  st->entries_.reserve(parsed.size());
  for (auto& p : parsed) {
    st->index_[p.meta.name] = st->metas_.size();
    st->entries_.push_back({dataStart + p.begin, dataStart + p.end});
    st->metas_.push_back(std::move(p.meta));
  }
  return st;
}

const TensorMeta* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &metas_[it->second];
}

const std::string& SafetensorsFile::path() const { return file_->path(); }

at::Tensor SafetensorsFile::load(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw fileError(path(), "no tensor named '" + name + "'");
  const TensorMeta& m = metas_[it->second];
  const Entry& e = entries_[it->second];
  // A copy: mmapped data need not be aligned for the dtype, and the tensor outlives the map.
  at::Tensor t = at::empty(m.shape, at::TensorOptions().dtype(toScalarType(m.dtype)));
  file_->copyOut(e.begin, e.end - e.begin, t.data_ptr());
  return t;
}

SafetensorsWeightSource::SafetensorsWeightSource(const std::string& path)
    : file_(SafetensorsFile::open(path)) {}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

class TempFile {
 public:
  explicit TempFile(const std::string& target) : target_(target) {
    static std::atomic<int> counter{0};
    tmp_ = target + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) throw fileError(target, std::string("cannot write: ") + std::strerror(errno));
  }
  ~TempFile() {
    if (f_) std::fclose(f_);
    if (!committed_) std::remove(tmp_.c_str());
  }
  void write(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n)
      throw fileError(target_, std::string("write failed: ") + std::strerror(errno));
  }
  void commit() {
    int rc = std::fflush(f_);
    if (rc == 0) rc = ::fsync(fileno(f_));
    rc |= std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) throw fileError(target_, "write failed (disk full?)");
    if (std::rename(tmp_.c_str(), target_.c_str()) != 0)
      throw fileError(target_, std::string("cannot rename temporary file: ") + std::strerror(errno));
    committed_ = true;
  }

 private:
  std::string target_, tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

}  // namespace

static std::string safetensorsHeader(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                                     const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& e : entries) {
    if (e.name.empty() || e.name == "__metadata__")
      throw fileError(path, "cannot write a tensor named '" + e.name + "'");
    if (!seen.insert(e.name).second) throw fileError(path, "tensor '" + e.name + "' given twice");
    auto dtype = fromScalarType(e.dtype);
    if (!dtype)
      throw fileError(path, "tensor '" + e.name + "': dtype " + std::string(c10::toString(e.dtype)) +
                                " cannot be stored in safetensors");
    int64_t numel = 1;
    for (int64_t d : e.shape) numel *= d;
    const uint64_t nbytes = static_cast<uint64_t>(numel) * dtypeSize(*dtype);
    nlohmann::ordered_json entry;
    entry["dtype"] = dtypeName(*dtype);
    entry["shape"] = e.shape;
    entry["data_offsets"] = {offset, offset + nbytes};
    header[e.name] = entry;
    offset += nbytes;
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

int64_t safetensorsFileSize(const std::vector<SafetensorsEntry>& entries,
                            const std::map<std::string, std::string>& metadata) {
  int64_t data = 0;
  for (const auto& e : entries) {
    int64_t numel = 1;
    for (int64_t d : e.shape) numel *= d;
    data += numel * static_cast<int64_t>(c10::elementSize(e.dtype));
  }
  return 8 + static_cast<int64_t>(safetensorsHeader("safetensors", entries, metadata).size()) + data;
}

void writeSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<StreamedTensor> held;
  held.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) throw fileError(path, "tensor '" + name + "' is undefined");
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    held.push_back({{name, t.scalar_type(), t.sizes().vec()}, [t] { return t; }});
  }
  writeSafetensorsStreamed(path, held, metadata);
}

void writeSafetensorsStreamed(const std::string& path, const std::vector<StreamedTensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsEntry> entries;
  entries.reserve(tensors.size());
  for (const auto& t : tensors) entries.push_back(t.entry);
  const std::string text = safetensorsHeader(path, entries, metadata);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  TempFile out(path);
  out.write(len, 8);
  out.write(text.data(), text.size());
  for (const auto& st : tensors) {
    at::Tensor t = st.load();
    if (!t.defined() || t.scalar_type() != st.entry.dtype || t.sizes().vec() != st.entry.shape)
      throw fileError(path, "tensor '" + st.entry.name + "' changed its dtype or shape while being written");
    t = t.detach().to(at::kCPU).contiguous();
    out.write(t.data_ptr(), t.numel() * t.element_size());
  }
  out.commit();
}

}  // namespace qs::io
