#include "core/io/hf_folder.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>

#include "core/io/safetensors.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::io {
namespace stdfs = std::filesystem;

namespace {
std::atomic<int> counter{0};

std::string shardName(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}
}  // namespace

const std::vector<std::string>& tokenizerFileNames() {
  static const std::vector<std::string> names = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                                 "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                                                 "vocab.txt"};
  return names;
}

std::vector<std::string> tokenizerFilesIn(const std::string& dir) {
  std::vector<std::string> names = tokenizerFileNames();
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("tok", 0) == 0 && n.size() > 11 && n.compare(n.size() - 11, 11, "_vocab.json") == 0) names.push_back(n);
  }
  return names;
}

HfFolderWriter::HfFolderWriter(const std::string& dir, bool force, int64_t maxShardBytes)
    : dir_(stdfs::absolute(dir).lexically_normal().string()), force_(force), maxShard_(maxShardBytes) {
  if (!dir_.empty() && dir_.back() == '/') dir_.pop_back();
  if (stdfs::exists(dir_) && !force_)
    throw fileError(dir_, "already exists; choose another -o folder or pass --force to replace it");
  const stdfs::path parent = stdfs::path(dir_).parent_path();
  if (!stdfs::is_directory(parent)) throw fileError(parent.string(), "output folder's parent does not exist");
  tmp_ = dir_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  std::error_code ec;
  stdfs::create_directory(tmp_, ec);
  if (ec) throw fileError(tmp_, "cannot create the temporary export folder: " + ec.message());
}

HfFolderWriter::HfFolderWriter(Plan, const std::string& dir, int64_t maxShardBytes)
    : dir_(stdfs::absolute(dir).lexically_normal().string()), force_(true), plan_(true), maxShard_(maxShardBytes) {
  if (!dir_.empty() && dir_.back() == '/') dir_.pop_back();
  dirExists_ = stdfs::exists(dir_);
}

HfFolderWriter::~HfFolderWriter() {
  if (!committed_ && !plan_) {
    std::error_code ec;
    stdfs::remove_all(tmp_, ec);
  }
}

void HfFolderWriter::addTensor(const std::string& name, const at::Tensor& t) {
  if (plan_) {
    addLazyTensor(name, t.scalar_type(), t.sizes().vec(), {});
    return;
  }
  at::Tensor held = t.to(at::kCPU).contiguous();
  addLazyTensor(name, held.scalar_type(), held.sizes().vec(), [held] { return held; });
}

void HfFolderWriter::addLazyTensor(const std::string& name, at::ScalarType dtype, const std::vector<int64_t>& shape,
                                   std::function<at::Tensor()> make) {
  int64_t bytes = static_cast<int64_t>(c10::elementSize(dtype));
  for (int64_t d : shape) bytes *= d;
  if (!pending_.empty() && shardBytes_ + bytes > maxShard_) flushShard();
  pending_.push_back({{name, dtype, shape}, plan_ ? nullptr : std::move(make)});  // a plan never produces
  shardBytes_ += bytes;
  totalBytes_ += bytes;
}

void HfFolderWriter::addTensorDescription(const std::string& name, at::ScalarType dtype,
                                          const std::vector<int64_t>& shape) {
  if (!plan_) throw Error("HfFolderWriter::addTensorDescription: only a planning writer takes descriptions");
  addLazyTensor(name, dtype, shape, {});
}

void HfFolderWriter::flushShard() {
  if (pending_.empty()) return;
  std::vector<std::string> names;
  for (const auto& t : pending_) names.push_back(t.entry.name);
  if (plan_) {
    std::vector<SafetensorsEntry> entries;
    for (const auto& t : pending_) entries.push_back(t.entry);
    shardSizes_.push_back(safetensorsFileSize(entries, {{"format", "pt"}}));
  } else {
    const std::string file = tmp_ + "/shard-" + std::to_string(shardNames_.size()) + ".safetensors";
    writeSafetensorsStreamed(file, pending_, {{"format", "pt"}});
    shardSizes_.push_back(static_cast<int64_t>(stdfs::file_size(file)));
  }
  shardNames_.push_back(std::move(names));
  pending_.clear();
  shardBytes_ = 0;
}

void HfFolderWriter::writeJson(const std::string& fileName, const nlohmann::json& j) {
  const std::string text = j.dump(2) + "\n";
  if (!plan_) fs::writeAtomic(tmp_ + "/" + fileName, text);
  extraFiles_.push_back(fileName);
  files_.push_back({fileName, static_cast<int64_t>(text.size())});
}

void HfFolderWriter::writeSafetensorsFile(const std::string& fileName,
                                          const std::vector<std::pair<std::string, at::Tensor>>& t,
                                          const std::map<std::string, std::string>& metadata) {
  if (plan_) {
    std::vector<SafetensorsEntry> entries;
    for (const auto& [n, x] : t) entries.push_back({n, x.scalar_type(), x.sizes().vec()});
    files_.push_back({fileName, safetensorsFileSize(entries, metadata)});
  } else {
    writeSafetensors(tmp_ + "/" + fileName, t, metadata);
    files_.push_back({fileName, static_cast<int64_t>(stdfs::file_size(tmp_ + "/" + fileName))});
  }
  extraFiles_.push_back(fileName);
}

std::vector<std::string> HfFolderWriter::copyModelFiles(const std::string& srcDir, const std::vector<std::string>& names) {
  std::vector<std::string> copied;
  for (const auto& n : names) {
    const std::string src = srcDir + "/" + n;
    if (!stdfs::is_regular_file(src)) continue;
    std::error_code ec;
    if (!plan_) stdfs::copy_file(src, tmp_ + "/" + n, stdfs::copy_options::overwrite_existing, ec);
    if (ec) throw fileError(src, "cannot copy into the export: " + ec.message());
    copied.push_back(n);
    extraFiles_.push_back(n);
    files_.push_back({n, static_cast<int64_t>(stdfs::file_size(src))});
  }
  return copied;
}

std::vector<std::string> HfFolderWriter::commit() {
  flushShard();
  std::vector<std::string> files = extraFiles_;
  const size_t n = shardNames_.size();
  if (n == 1) {
    if (!plan_) stdfs::rename(tmp_ + "/shard-0.safetensors", tmp_ + "/model.safetensors");
    files.push_back("model.safetensors");
    files_.push_back({"model.safetensors", shardSizes_[0]});
  } else if (n > 1) {
    nlohmann::json map = nlohmann::json::object();
    for (size_t i = 0; i < n; ++i) {
      const std::string name = shardName(i, n);
      if (!plan_) stdfs::rename(tmp_ + "/shard-" + std::to_string(i) + ".safetensors", tmp_ + "/" + name);
      for (const auto& t : shardNames_[i]) map[t] = name;
      files.push_back(name);
      files_.push_back({name, shardSizes_[i]});
    }
    nlohmann::json index = {{"metadata", {{"total_size", totalBytes_}}}, {"weight_map", map}};
    const std::string text = index.dump(2) + "\n";
    if (!plan_) fs::writeAtomic(tmp_ + "/model.safetensors.index.json", text);
    files.push_back("model.safetensors.index.json");
    files_.push_back({"model.safetensors.index.json", static_cast<int64_t>(text.size())});
  }
  if (plan_) return files;
  // Into place: an existing folder (force) is moved aside first and removed only after the new
  // one is there, so a failure leaves either the old or the new folder, never neither.
  std::error_code ec;
  std::string old;
  if (stdfs::exists(dir_)) {
    old = dir_ + ".old-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    stdfs::rename(dir_, old, ec);
    if (ec) throw fileError(dir_, "cannot move the existing folder aside: " + ec.message());
  }
  stdfs::rename(tmp_, dir_, ec);
  if (ec) {
    if (!old.empty()) stdfs::rename(old, dir_);
    throw fileError(dir_, "cannot move the export into place: " + ec.message());
  }
  committed_ = true;
  if (!old.empty()) stdfs::remove_all(old, ec);
  return files;
}

}  // namespace qs::io
