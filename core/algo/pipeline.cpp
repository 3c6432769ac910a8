#include "core/algo/pipeline.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "core/algo/hessian.h"
#include "core/algo/quant_artifact.h"
#include "core/io/safetensors.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/memory.h"
#include "core/util/oom_guard.h"

// CUDA allocator statistics only where LibTorch itself has CUDA: Debian's CPU LibTorch ships the
// c10/cuda headers without a CUDA runtime. NCCL support (USE_C10D_NCCL, set by the torch CMake
// target) exists only in CUDA builds, which also link c10_cuda.
#if defined(USE_C10D_NCCL) && __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define QS_PIPELINE_CUDA_STATS 1
#endif

namespace qs::algo {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// "layers.3.self_attn.q_proj" -> "self_attn.q_proj" for progress lines.
std::string shortSite(const std::string& site) {
  if (site.rfind("layers.", 0) != 0) return site;
  auto dot = site.find('.', 7);
  return dot == std::string::npos ? site : site.substr(dot + 1);
}

// Forwards the fraction of a sub-step but keeps the pipeline's own message ("block 2/5: fc1"),
// so a quantizer's inner messages do not replace where the pipeline is.
class FixedMessageProgress : public jobs::Progress {
 public:
  FixedMessageProgress(jobs::Progress& parent, double begin, double end, std::string message)
      : parent_(parent), begin_(begin), end_(end), message_(std::move(message)) {}
  void update(double fraction, const std::string&) override {
    parent_.update(begin_ + (end_ - begin_) * std::clamp(fraction, 0.0, 1.0), message_);
  }
  bool cancelRequested() const override { return parent_.cancelRequested(); }

 private:
  jobs::Progress& parent_;
  double begin_, end_;
  std::string message_;
};

#ifdef QS_PIPELINE_CUDA_STATS
int64_t cudaPeakBytes(c10::DeviceIndex index) {
  using namespace c10::cuda::CUDACachingAllocator;
  const auto stats = getDeviceStats(index);
  return stats.allocated_bytes[static_cast<size_t>(StatType::AGGREGATE)].peak;
}
void cudaResetPeak(c10::DeviceIndex index) { c10::cuda::CUDACachingAllocator::resetPeakStats(index); }
#endif

int64_t tensorBytes(const at::Tensor& t) { return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0; }

// Grid tensors of a site in a block checkpoint: "grid:<site>:<field>" (':' never occurs in a site).
constexpr const char* kGridPrefix = "grid:";

void appendGrid(std::vector<std::pair<std::string, at::Tensor>>& out, const std::string& site,
                const LayerQuantResult& r) {
  const std::string p = std::string(kGridPrefix) + site + ":";
  out.emplace_back(p + "codes", r.codes);
  out.emplace_back(p + "scales", r.scales);
  out.emplace_back(p + "zeros", r.zeros);
  out.emplace_back(p + "g_idx", r.gIdx);
  if (r.outlierIndices.defined() && r.outlierIndices.numel() > 0) {
    out.emplace_back(p + "outlier_indices", r.outlierIndices);
    out.emplace_back(p + "outlier_values", r.outlierValues);
  }
}

// ---- checkpoint files ------------------------------------------------------------------------

std::string blockFile(const std::string& dir, int block) {
  return dir + "/block-" + std::to_string(block) + ".safetensors";
}
std::string stateFile(const std::string& dir) { return dir + "/state.safetensors"; }

nlohmann::json summaryJson(const SiteSummary& s) {
  return {{"block", s.block},        {"group", s.group},
          {"site", s.site},          {"method", s.method},
          {"rel_error", s.relError}, {"bits", s.bitsPerWeight},
          {"outlier_bits", s.outlierBits}, {"hessian_seconds", s.hessianSeconds},
          {"quant_seconds", s.quantSeconds}, {"tokens", s.tokens}, {"error_on_weights", s.errorOnWeights}};
}

SiteSummary summaryFromJson(const nlohmann::json& j) {
  SiteSummary s;
  s.block = j.at("block").get<int>();
  s.group = j.at("group").get<int>();
  s.site = j.at("site").get<std::string>();
  s.method = j.at("method").get<std::string>();
  s.relError = j.at("rel_error").get<double>();
  s.bitsPerWeight = j.at("bits").get<double>();
  s.outlierBits = j.at("outlier_bits").get<double>();
  s.hessianSeconds = j.at("hessian_seconds").get<double>();
  s.quantSeconds = j.at("quant_seconds").get<double>();
  s.tokens = j.at("tokens").get<int64_t>();
  s.errorOnWeights = j.value("error_on_weights", false);
  s.resumed = true;
  return s;
}

void writeBlockFile(const std::string& path, int block, const std::string& tag,
                    const std::vector<std::pair<std::string, at::Tensor>>& weights, const std::vector<SiteSummary>& sites) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& s : sites)
    if (s.block == block) results.push_back(summaryJson(s));
  io::writeSafetensors(path, weights, {{"tag", tag}, {"block", std::to_string(block)}, {"results", results.dump()}});
}

// Written after the block file, so a state naming block N+1 always has block files 0..N. A
// data-free run (RTN) has no hidden states: an empty tensor stands for them.
void writeState(const std::string& dir, int nextBlock, const std::string& tag, const at::Tensor& hidden,
                const at::Tensor& ids) {
  io::writeSafetensors(stateFile(dir), {{"hidden", hidden.defined() ? hidden : at::zeros({0})}, {"ids", ids}},
                       {{"tag", tag}, {"next_block", std::to_string(nextBlock)}});
}

std::string metaOr(const io::SafetensorsFile& f, const std::string& key, const std::string& fallback = "") {
  auto it = f.metadata().find(key);
  return it == f.metadata().end() ? fallback : it->second;
}

int parseNextBlock(const io::SafetensorsFile& f) {
  const std::string v = metaOr(f, "next_block", "");
  try {
    size_t used = 0;
    int n = std::stoi(v, &used);
    if (used == v.size() && n >= 0) return n;
  } catch (const std::exception&) {
  }
  throw fileError(f.path(), "not a QuantScope pipeline checkpoint (metadata 'next_block' is '" + v + "')");
}

// ---- the block loop --------------------------------------------------------------------------

struct Calibration {
  at::Tensor ids;    // [N, L] int64, CPU
  at::Tensor mask;   // [N, L] int64, CPU, or undefined
  int64_t batch = 1;
  int64_t chunks() const { return (ids.size(0) + batch - 1) / batch; }
  at::Tensor idsChunk(int64_t c) const { return ids.narrow(0, c * batch, std::min(batch, ids.size(0) - c * batch)); }
  at::Tensor maskChunk(int64_t c) const {
    return mask.defined() ? mask.narrow(0, c * batch, std::min(batch, ids.size(0) - c * batch)) : at::Tensor();
  }
  at::Tensor hiddenChunk(const at::Tensor& h, int64_t c) const {
    return h.narrow(0, c * batch, std::min(batch, ids.size(0) - c * batch));
  }
};

}  // namespace

at::Tensor compactCodes(const at::Tensor& codes, bool symmetric) {
  return codes.to(symmetric ? at::kChar : at::kByte);
}

at::Tensor expandCodes(const at::Tensor& compact) { return compact.to(at::kInt); }

int checkpointedBlocks(const std::string& checkpointDir) {
  if (checkpointDir.empty() || !fs::exists(stateFile(checkpointDir))) return 0;
  return parseNextBlock(*io::SafetensorsFile::open(stateFile(checkpointDir)));
}

std::vector<std::vector<std::string>> siteGroups(model::Model& model, int block, const at::Tensor& h,
                                                 const at::Tensor& ids) {
  c10::InferenceMode guard;
  // The inputs are kept alive until the end: a freed input's memory is often reused at the same
  // address for the next one (o_proj's input vs the MLP's), which would merge distinct groups.
  struct Seen {
    std::string site;
    at::Tensor x;
  };
  std::vector<Seen> seen;
  model.setInputHook([&](const std::string& site, const at::Tensor& x) { seen.push_back({site, x}); });
  try {
    model.runBlock(block, h, model.prepare(ids, {}));
  } catch (...) {
    model.setInputHook(nullptr);
    throw;
  }
  model.setInputHook(nullptr);
  // Consecutive calls with the very same input tensor form a group (q/k/v read one normed x).
  std::vector<std::vector<std::string>> groups;
  for (size_t i = 0; i < seen.size(); ++i) {
    const auto& a = seen[i].x;
    const bool same = i > 0 && a.data_ptr() == seen[i - 1].x.data_ptr() && a.sizes() == seen[i - 1].x.sizes() &&
                      a.strides() == seen[i - 1].x.strides();
    if (!same) groups.emplace_back();
    groups.back().push_back(seen[i].site);
  }
  return groups;
}

LayerQuantResult readBlockGrid(const std::string& blockFilePath, const std::string& site) {
  auto f = io::SafetensorsFile::open(blockFilePath);
  return loadGridFields(*f, [&](const char* field) { return std::string(kGridPrefix) + site + ":" + field; });
}

namespace {

// Thrown by the Hessian hook once the current group's last site has seen its input: the rest of
// the block is not needed for this group.
struct GroupInputsSeen {};

// The weight of a grid read from an open block file (the pipeline's own loader).
at::Tensor gridFromFile(const io::SafetensorsFile& f, const std::string& site) {
  return gridWeight(loadGridFields(f, [&](const char* field) { return std::string(kGridPrefix) + site + ":" + field; }));
}

// Points every site of a written block file at the file: grid sites rebuild their weight from
// the grid, dense ones read it.
void useBlockFile(model::Model& model, const std::string& path, const std::vector<std::string>& sites) {
  std::shared_ptr<io::SafetensorsFile> f = io::SafetensorsFile::open(path);
  for (const auto& site : sites) {
    if (f->find(std::string(kGridPrefix) + site + ":codes"))
      model.setSiteWeightLoader(site, [f, site] { return gridFromFile(*f, site); });
    else if (f->find(site))
      model.setSiteWeightLoader(site, [f, site] { return f->load(site); });
  }
}

// ||W - W^||^2 / ||W||^2 (the error of data-free RTN): float32 squares summed in float64, without
// float64 copies of a weight (a 4096 x 11008 projection would take 360 MB twice).
double weightError(const at::Tensor& w, const at::Tensor& wq) {
  const double den = at::sum(at::square(w), at::kDouble).item<double>();
  return den > 0 ? at::sum(at::sub(w, wq).square_(), at::kDouble).item<double>() / den : 0.0;
}

PipelineResult quantizeModelImpl(model::Model& model, const at::Tensor& ids, const at::Tensor& mask,
                                 const PipelineOptions& options, jobs::Progress& progress) {
  options.layer.validate();
  if (!ids.defined() || ids.dim() != 2 || ids.size(0) == 0 || ids.size(1) == 0)
    throw Error("calibration ids: expected a non-empty [samples, seqlen] tensor");
  if (mask.defined() && mask.sizes() != ids.sizes())
    throw Error("calibration mask: expected the shape of the ids [samples, seqlen]");
  if (options.batchSize < 1) throw Error("batch_size: must be at least 1, got " + std::to_string(options.batchSize));
  for (const auto& s : model.sites()) options.siteOptions(s.name).spec.validateFor(s.outFeatures, s.inFeatures);

  c10::InferenceMode guard;
  const auto t0 = Clock::now();
  const c10::Device device = model.device();
  const int blocks = model.numBlocks();
  Calibration cal{ids.to(at::kCPU, at::kLong).contiguous(),
                  mask.defined() ? mask.to(at::kCPU, at::kLong).contiguous() : at::Tensor(),
                  std::min<int64_t>(options.batchSize, ids.size(0))};
  PipelineResult result;
  result.blocks = blocks;
  result.samples = cal.ids.size(0);
  result.seqlen = cal.ids.size(1);
  result.dataFree = options.layer.method == Method::Rtn && !options.calibrateRtn;
#ifdef QS_PIPELINE_CUDA_STATS
  if (device.is_cuda()) cudaResetPeak(device.index() < 0 ? 0 : device.index());
#endif

  const bool checkpoints = !options.checkpointDir.empty();
  const std::string blockDir = checkpoints ? options.checkpointDir : options.workDir;
  if (options.offloadWeights && blockDir.empty())
    throw std::logic_error("quantizeModel: offloadWeights needs a checkpoint or work folder");
  const bool writeBlocks = checkpoints || options.offloadWeights;
  if (writeBlocks) std::filesystem::create_directories(blockDir);
  const bool keepGridsInMemory = options.keepGrids && !options.offloadWeights;
  std::map<int, std::vector<std::string>> sitesOfBlock;
  for (const auto& s : model.sites()) sitesOfBlock[s.block].push_back(s.name);

  // Block-0 inputs, or the state of a previous run.
  at::Tensor hidden;
  int startBlock = 0;
  if (checkpoints && options.resume && fs::exists(stateFile(options.checkpointDir))) {
    auto state = io::SafetensorsFile::open(stateFile(options.checkpointDir));
    if (metaOr(*state, "tag") != options.checkpointTag)
      throw fileError(state->path(), "checkpoint was written with a different configuration; it cannot be resumed "
                                     "with this one (remove the folder to start over)");
    startBlock = parseNextBlock(*state);
    if (startBlock > blocks) throw fileError(state->path(), "checkpoint is for a model with more blocks");
    if (!state->find("ids") || !state->load("ids").equal(cal.ids))
      throw fileError(state->path(), "checkpoint was calibrated on different samples (nsamples/seqlen/seed/dataset)");
    if (!result.dataFree) hidden = state->load("hidden").to(device);
    for (int b = 0; b < startBlock; ++b) {
      const std::string path = blockFile(options.checkpointDir, b);
      auto f = io::SafetensorsFile::open(path);
      if (metaOr(*f, "tag") != options.checkpointTag) throw fileError(f->path(), "checkpoint tag differs from state.safetensors");
      std::set<std::string> gridSites;
      for (const auto& meta : f->tensors()) {
        if (meta.name.rfind(kGridPrefix, 0) != 0) {
          if (!options.offloadWeights) model.setSiteWeight(meta.name, f->load(meta.name));
          continue;
        }
        const size_t colon = meta.name.rfind(':');
        const std::string site = meta.name.substr(5, colon - 5), field = meta.name.substr(colon + 1);
        gridSites.insert(site);
        if (!keepGridsInMemory) continue;
        LayerQuantResult& g = result.grids[site];
        const at::Tensor t = f->load(meta.name);
        if (field == "codes") g.codes = t;
        else if (field == "scales") g.scales = t;
        else if (field == "zeros") g.zeros = t;
        else if (field == "g_idx") g.gIdx = t;
        else if (field == "outlier_indices") g.outlierIndices = t;
        else if (field == "outlier_values") g.outlierValues = t;
      }
      if (options.offloadWeights) {
        useBlockFile(model, path, sitesOfBlock[b]);
      } else {
        // Sites stored as grids only: their weight is the grid's (bit-identical to the run's).
        for (const auto& site : gridSites)
          if (!f->find(site)) model.setSiteWeight(site, gridFromFile(*f, site));
      }
      result.blockFiles.push_back(path);
      try {
        for (const auto& j : nlohmann::json::parse(metaOr(*f, "results", "[]"))) result.sites.push_back(summaryFromJson(j));
      } catch (const nlohmann::json::exception& e) {
        throw fileError(f->path(), std::string("unreadable per-site results: ") + e.what());
      }
    }
    result.resumedBlocks = startBlock;
    log::info("pipeline: resuming at block " + std::to_string(startBlock) + "/" + std::to_string(blocks) + " from " +
              options.checkpointDir);
  } else if (!result.dataFree) {
    std::vector<at::Tensor> parts;
    for (int64_t c = 0; c < cal.chunks(); ++c) {
      progress.checkCancel();
      parts.push_back(model.embed(model.prepare(cal.idsChunk(c), cal.maskChunk(c))));
    }
    hidden = at::cat(parts, 0);
    model.releaseEmbedding();
  }

  // The hook accumulates the current group's input once (its sites read the same tensor); the
  // current chunk's mask picks rows. After the group's last site it stops the block.
  std::unique_ptr<HessianAccumulator> acc;
  std::string accSite, lastSite;
  at::Tensor chunkMask;
  const auto accumulate = [&](const std::string& site, const at::Tensor& x) {
    if (acc && site == accSite) {
      if (chunkMask.defined()) {
        const at::Tensor keep = chunkMask.to(x.device()).reshape({-1}).ne(0);
        acc->add(x.reshape({-1, x.size(-1)}).index({keep}));
      } else {
        acc->add(x);
      }
    }
    if (site == lastSite) throw GroupInputsSeen{};
  };
  struct HookReset {
    model::Model& m;
    ~HookReset() { m.setInputHook(nullptr); }
  } hookReset{model};

  const auto runChunks = [&](int b, bool keepOutputs) {
    std::vector<at::Tensor> outs;
    for (int64_t c = 0; c < cal.chunks(); ++c) {
      progress.checkCancel();
      chunkMask = cal.maskChunk(c);
      const at::Tensor idsC = cal.idsChunk(c);
      try {
        at::Tensor out = model.runBlock(b, cal.hiddenChunk(hidden, c), model.prepare(idsC, chunkMask));
        if (keepOutputs) outs.push_back(out);
      } catch (const GroupInputsSeen&) {
      }
    }
    chunkMask = at::Tensor();
    return keepOutputs ? at::cat(outs, 0) : at::Tensor();
  };

  for (int b = startBlock; b < blocks; ++b) {
    const double bBegin = static_cast<double>(b) / blocks, bEnd = static_cast<double>(b + 1) / blocks;
    const std::string where = "block " + std::to_string(b + 1) + "/" + std::to_string(blocks);
    progress.update(bBegin, where);
    progress.checkCancel();
    int64_t blockWeightBytes = 0;
    // Input groups (sites reading one tensor, in execution order) and quantization groups: the
    // same with true-sequential, else one group of every site of the block.
    std::vector<std::vector<std::string>> inputs, groups;
    if (result.dataFree) {
      groups = {sitesOfBlock[b]};
    } else {
      model.materialize(b);
      inputs = siteGroups(model, b, cal.hiddenChunk(hidden, 0).narrow(0, 0, 1), cal.idsChunk(0).narrow(0, 0, 1));
      model.setInputHook(accumulate);  // siteGroups leaves no hook behind
      groups = inputs;
      if (!options.trueSequential) {
        std::vector<std::string> all;
        for (auto& g : inputs) all.insert(all.end(), g.begin(), g.end());
        groups = {all};
      }
    }
    size_t nSites = 0;
    for (auto& g : groups) nSites += g.size();
    std::map<std::string, int64_t> inFeatures;
    for (const auto& si : model.sites()) {
      inFeatures[si.name] = si.inFeatures;
      if (si.block == b) blockWeightBytes += si.outFeatures * si.inFeatures * static_cast<int64_t>(c10::elementSize(model.dtype()));
    }

    std::vector<std::pair<std::string, at::Tensor>> blockTensors;
    size_t done = 0;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      const auto& group = groups[gi];
      const auto tH = Clock::now();
      int64_t tokens = 0;
      double hSeconds = 0;
      std::map<std::string, at::Tensor> hessians;  // one per input group, shared by its sites
      if (!result.dataFree) {
        progress.update(bBegin + (bEnd - bBegin) * done / (nSites + 1), where + ": " + shortSite(group.front()));
        const std::set<std::string> members(group.begin(), group.end());
        for (const auto& in : inputs) {
          if (!members.count(in.front())) continue;
          accSite = in.front();
          lastSite = in.back();
          acc = std::make_unique<HessianAccumulator>(inFeatures.at(accSite));
          runChunks(b, false);
          tokens = acc->tokens();
          const at::Tensor h = acc->hessian().to(device);
          acc.reset();
          log::debug("pipeline: " + where + " " + shortSite(accSite) + " Hessian done, RSS " +
                     formatMemory(currentRssBytes()) + ", peak " + formatMemory(peakRssBytes()));
          for (const auto& site : in) hessians[site] = h;
        }
        accSite.clear();
        lastSite.clear();
        hSeconds = since(tH) / static_cast<double>(group.size());
      }
      for (const auto& site : group) {
        const double f0 = bBegin + (bEnd - bBegin) * done / (nSites + 1);
        const double f1 = bBegin + (bEnd - bBegin) * (done + 1) / (nSites + 1);
        FixedMessageProgress sp(progress, f0, f1, where + ": " + shortSite(site));
        sp.update(0, "");
        const at::Tensor w = model.siteWeight(site).to(device, at::kFloat);
        const at::Tensor H = result.dataFree ? at::Tensor() : hessians.at(site);
        const LayerQuantOptions siteOpts = options.siteOptions(site);
        LayerQuantResult r = quantizeLayer(w, H, siteOpts, sp);
        if (result.dataFree) r.relError = weightError(w, r.weight);
        // Data-free and offloaded, nothing reads the weight before the block file exists: the loader
        // set then is all the model needs (no float32 copy of the block in memory meanwhile).
        if (!(result.dataFree && options.offloadWeights)) model.setSiteWeight(site, r.weight);
        log::debug("pipeline: " + where + " " + shortSite(site) + " quantized, RSS " + formatMemory(currentRssBytes()) +
                   ", peak " + formatMemory(peakRssBytes()));
        SiteSummary s;
        s.block = b;
        s.group = static_cast<int>(gi);
        s.site = site;
        s.method = r.method;
        s.relError = r.relError;
        s.errorOnWeights = result.dataFree;
        s.bitsPerWeight = r.bitsPerWeight;
        s.outlierBits = r.outlierBits;
        s.hessianSeconds = hSeconds;
        s.quantSeconds = r.quantSeconds;
        s.tokens = result.dataFree ? 0 : tokens;
        result.sites.push_back(s);
        if (r.codes.defined()) {
          LayerQuantResult g;
          g.method = r.method;
          g.codes = compactCodes(r.codes.to(at::kCPU), siteOpts.spec.symmetric);
          g.scales = r.scales.to(at::kCPU);
          g.zeros = r.zeros.to(at::kCPU);
          g.gIdx = r.gIdx.to(at::kCPU);
          if (r.outlierIndices.defined()) g.outlierIndices = r.outlierIndices.to(at::kCPU);
          if (r.outlierValues.defined()) g.outlierValues = r.outlierValues.to(at::kCPU);
          g.keptColumns = r.keptColumns.defined() ? r.keptColumns.to(at::kCPU) : at::Tensor();
          if (writeBlocks) appendGrid(blockTensors, site, g);
          if (keepGridsInMemory) result.grids[site] = std::move(g);
        } else if (writeBlocks) {
          blockTensors.emplace_back(site, r.weight.to(at::kCPU));
        }
        ++done;
      }
    }

    // Next block's inputs through the quantized block.
    at::Tensor next;
    if (!result.dataFree) {
      progress.update(bBegin + (bEnd - bBegin) * nSites / (nSites + 1), where + ": outputs");
      next = runChunks(b, true);
      result.peakWorkingBytes =
          std::max(result.peakWorkingBytes, blockWeightBytes + tensorBytes(hidden) + tensorBytes(next));
      hidden = next;
    } else {
      result.peakWorkingBytes = std::max(result.peakWorkingBytes, blockWeightBytes);
    }
    model.release(b);
    if (writeBlocks) {
      const std::string path = blockFile(blockDir, b);
      writeBlockFile(path, b, options.checkpointTag, blockTensors, result.sites);
      result.blockFiles.push_back(path);
      if (options.offloadWeights) useBlockFile(model, path, sitesOfBlock[b]);
      if (checkpoints) writeState(options.checkpointDir, b + 1, options.checkpointTag, hidden, cal.ids);
    }
    releaseFreedMemory();
    if (log::level() <= log::Level::Debug) {
      std::ifstream st("/proc/self/status");
      std::string line, detail;
      while (std::getline(st, line))
        if (line.rfind("RssAnon", 0) == 0 || line.rfind("RssFile", 0) == 0) detail += " " + line;
      log::debug("pipeline: " + where + " done, RSS " + formatMemory(currentRssBytes()) + detail);
    }
    progress.update(bEnd, where + " done");
  }

  result.seconds = since(t0);
#ifdef QS_PIPELINE_CUDA_STATS
  if (device.is_cuda()) {
    result.peakMemoryBytes = cudaPeakBytes(device.index() < 0 ? 0 : device.index());
    result.peakMemorySource = "cuda allocator";
  }
#endif
  if (result.peakMemorySource.empty()) {
    result.peakMemoryBytes = qs::peakRssBytes();
    result.peakMemorySource = "process peak RSS (VmHWM)";
  }
  return result;
}

}  // namespace

PipelineResult quantizeModel(model::Model& model, const at::Tensor& ids, const at::Tensor& mask,
                             const PipelineOptions& options, jobs::Progress& progress) {
  // Device out-of-memory stops the job with what to lower (checkpoints of finished blocks stay,
  // as on cancel; nothing else is written before the pipeline returns).
  OomContext oom{"quantization", model.device().str(), {}, ""};
  if (ids.defined() && ids.dim() == 2)
    oom.add("calibration samples", "--nsamples", ids.size(0)).add("sequence length", "--seqlen", ids.size(1));
  oom.add("batch size", "--batch-size", options.batchSize);
  return withOomMessage(oom, [&] { return quantizeModelImpl(model, ids, mask, options, progress); });
}

}  // namespace qs::algo
