#include "core/model/decoder_model.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <sstream>

#include "core/io/safetensors.h"
#include "core/io/weight_source.h"
#include "core/model/attention.h"
#include "core/model/rope.h"
#include "core/util/error.h"

namespace qs::model {
namespace {

std::string shapeText(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

int roleIndex(Role r) { return static_cast<int>(r); }

}  // namespace

DecoderModel::DecoderModel(ModelConfig config, std::unique_ptr<io::WeightSource> source,
                           const LoadOptions& options)
    : cfg_(std::move(config)), src_(std::move(source)), device_(options.device), storeDtype_(options.dtype) {
  if (storeDtype_ != at::kFloat && storeDtype_ != at::kHalf && storeDtype_ != at::kBFloat16)
    throw Error("model dtype must be float32, float16 or bfloat16");
  // CPU kernels of LibTorch 1.13 have no float16 GEMM/LayerNorm: keep float16 weights (the memory
  // saving), compute in float32.
  computeDtype_ = (storeDtype_ == at::kHalf && device_.is_cpu()) ? at::kFloat : storeDtype_;
  spec_ = makeFamilySpec(cfg_, *src_);
  normKind_ = spec_.normKindRms ? NormKind::RmsNorm : NormKind::LayerNorm;

  const int64_t D = cfg_.hiddenSize, H = cfg_.numHeads, Hkv = cfg_.numKvHeads, d = cfg_.headDim;
  const int64_t I = cfg_.intermediateSize;
  auto shapeOf = [&](Role r) -> std::pair<int64_t, int64_t> {  // [out, in]
    switch (r) {
      case Role::Q: return {H * d, D};
      case Role::K:
      case Role::V: return {Hkv * d, D};
      case Role::Qkv: return {(H + 2 * Hkv) * d, D};
      case Role::O: return {D, H * d};
      case Role::Gate:
      case Role::Up: return {I, D};
      case Role::Down: return {D, I};
    }
    return {0, 0};
  };

  blocks_.resize(static_cast<size_t>(cfg_.numLayers));
  // Input groups: attention input, MLP input (the same when one norm feeds both parallel
  // branches), attention context, MLP hidden.
  const bool oneNorm = spec_.residual == Residual::Parallel && spec_.ln2.empty();
  auto groupOf = [&](int block, Role r) {
    int g = 0;
    switch (r) {
      case Role::Q: case Role::K: case Role::V: case Role::Qkv: g = 0; break;
      case Role::Gate: case Role::Up: g = oneNorm ? 0 : 1; break;
      case Role::O: g = 2; break;
      case Role::Down: g = 3; break;
    }
    return block * 4 + g;
  };
  for (int i = 0; i < numBlocks(); ++i) {
    Block& b = blocks_[static_cast<size_t>(i)];
    const std::string hfPrefix = spec_.blockPrefix + std::to_string(i) + ".";
    for (const auto& slot : spec_.linears) {
      SiteInfo si;
      si.name = "layers." + std::to_string(i) + "." + slot.local;
      si.hfWeight = hfPrefix + slot.local + ".weight";
      si.block = i;
      std::tie(si.outFeatures, si.inFeatures) = shapeOf(slot.role);
      si.hasBias = src_->has(hfPrefix + slot.local + ".bias");
      si.inputGroup = groupOf(i, slot.role);
      const int r = roleIndex(slot.role);
      b.site[static_cast<size_t>(r)] = si.name;
      b.siteIndex[static_cast<size_t>(r)] = static_cast<int>(sites_.size());
      siteIndex_[si.name] = {i, r};
      sites_.push_back(std::move(si));
    }
    // The attention module is the output projection's parent ("layers.3.self_attn").
    const std::string& o = b.site[static_cast<size_t>(roleIndex(Role::O))];
    const std::string attn = o.substr(0, o.rfind('.'));
    b.matmul = {attn + ".q_matmul", attn + ".k_matmul", attn + ".v_matmul"};
    for (const auto& n : b.matmul) matmulSites_.push_back(n);
    b.softmax = attn + ".softmax_in";
    softmaxSites_.push_back(b.softmax);
  }
  if (cfg_.alibi) slopes_ = alibiSlopes(H, at::TensorOptions().device(device_));
}

DecoderModel::~DecoderModel() = default;

// ---- weights ---------------------------------------------------------------------------------

at::Tensor DecoderModel::loadTensor(const std::string& name, const std::vector<int64_t>& shape,
                                    at::ScalarType dtype, bool transpose) const {
  if (!src_->has(name))
    throw fileError(src_->path(), std::string("missing tensor '") + name + "' (needed by the " +
                                      familyName(cfg_.family) + " model described by config.json)");
  at::Tensor t = src_->load(name);
  if (transpose) t = t.t();  // GPT-2 Conv1D [in, out] -> [out, in], once, here
  bool ok = t.dim() == static_cast<int64_t>(shape.size());
  for (size_t k = 0; ok && k < shape.size(); ++k) ok = shape[k] < 0 || t.size(static_cast<int64_t>(k)) == shape[k];
  if (!ok) {
    std::vector<int64_t> want(shape);
    throw fileError(src_->path(), "tensor '" + name + "' has shape " +
                                      shapeText(transpose ? t.t().sizes() : t.sizes()) + ", config.json implies " +
                                      shapeText(transpose ? std::vector<int64_t>(want.rbegin(), want.rend()) : want));
  }
  return t.to(device_, dtype).contiguous();
}

NormWeights DecoderModel::loadNorm(const std::string& name, int64_t dim, bool withBias) const {
  NormWeights n;
  if (cfg_.family == Family::Opt && !cfg_.layerNormAffine) return n;  // LayerNorm without gains
  n.w = loadTensor(name + ".weight", {dim}, at::kFloat);
  if (withBias && src_->has(name + ".bias")) n.b = loadTensor(name + ".bias", {dim}, at::kFloat);
  return n;
}

LinearWeights DecoderModel::loadLinear(const SiteInfo& si, const std::string& hfWeight, bool transpose) const {
  LinearWeights l;
  l.w = loadTensor(hfWeight, {si.outFeatures, si.inFeatures}, storeDtype_, transpose);
  if (si.hasBias) {
    const std::string base = hfWeight.substr(0, hfWeight.size() - std::string(".weight").size());
    l.b = loadTensor(base + ".bias", {si.outFeatures}, storeDtype_);
  }
  return l;
}

void DecoderModel::checkBlock(int block) const {
  if (block < 0 || block >= numBlocks())
    throw Error("block " + std::to_string(block) + " out of range (the model has " +
                std::to_string(numBlocks()) + " blocks)");
}

void DecoderModel::materialize(int block) {
  checkBlock(block);
  Block& b = blocks_[static_cast<size_t>(block)];
  if (b.loaded) return;
  // Weights are ordinary tensors even when first used inside a caller's InferenceMode.
  c10::InferenceMode normalTensors(false);
  const std::string p = spec_.blockPrefix + std::to_string(block) + ".";
  // RMSNorm families have no norm bias, but an OS+-shifted export carries one ("<norm>.bias",
  // config.json quantscope_rmsnorm_bias); loadNorm reads it only when the checkpoint has it.
  const bool lnBias = true;
  const int64_t D = cfg_.hiddenSize;
  if (!spec_.ln1.empty()) b.ln1 = loadNorm(p + spec_.ln1, D, lnBias);
  if (!spec_.ln2.empty()) b.ln2 = loadNorm(p + spec_.ln2, D, lnBias);
  for (int which = 1; which <= 2; ++which) {
    auto nov = normOverrides_.find(block * 2 + which - 1);
    if (nov == normOverrides_.end()) continue;
    NormWeights& n = blockNorm(b, which);
    n.w = nov->second.w.defined() ? nov->second.w.to(device_) : at::Tensor();
    n.b = nov->second.b.defined() ? nov->second.b.to(device_) : at::Tensor();
  }
  for (const auto& slot : spec_.linears) {
    const int r = roleIndex(slot.role);
    const SiteInfo& si = sites_[static_cast<size_t>(b.siteIndex[static_cast<size_t>(r)])];
    LinearWeights& l = b.lin[static_cast<size_t>(r)];
    auto ov = overrides_.find(si.name);
    auto bov = biasOverrides_.find(si.name);
    if (ov != overrides_.end()) {
      l.w = overrideWeight(ov->second, false).to(device_);
      if (si.hasBias && bov == biasOverrides_.end()) {
        const std::string base = si.hfWeight.substr(0, si.hfWeight.size() - 7);
        l.b = loadTensor(base + ".bias", {si.outFeatures}, storeDtype_);
      }
    } else if (bov != biasOverrides_.end()) {
      l.w = loadTensor(si.hfWeight, {si.outFeatures, si.inFeatures}, storeDtype_, spec_.transposedWeights);
    } else {
      l = loadLinear(si, si.hfWeight, spec_.transposedWeights);
    }
    if (bov != biasOverrides_.end()) l.b = bov->second.to(device_);
    if (weightTransform_) l.w = weightTransform_(si.name, l.w).to(device_, storeDtype_).contiguous();
  }
  if (spec_.qkv == QkvLayout::Separate) fuseQkv(b);
  if (cfg_.attention.gated()) {
    // The gate lives next to out_proj in the attention module ("<attn>.gate.*").
    const std::string& o = sites_[static_cast<size_t>(b.siteIndex[static_cast<size_t>(roleIndex(Role::O))])].hfWeight;
    const std::string module = o.substr(0, o.rfind('.', o.size() - std::string(".weight").size() - 1));
    b.gate = loadGateWeights(*src_, module, cfg_.attention, cfg_.numHeads, cfg_.hiddenSize,
                             at::TensorOptions().device(device_).dtype(computeDtype_));
  }
  b.loaded = true;
}

void DecoderModel::fuseQkv(Block& b) const {
  LinearWeights& q = b.lin[static_cast<size_t>(roleIndex(Role::Q))];
  LinearWeights& k = b.lin[static_cast<size_t>(roleIndex(Role::K))];
  LinearWeights& v = b.lin[static_cast<size_t>(roleIndex(Role::V))];
  // A bias added to some of q/k/v (exact shifting on a bias-free family): zeros for the others
  // keep the three in one GEMM.
  if (q.b.defined() || k.b.defined() || v.b.defined()) {
    for (LinearWeights* l : {&q, &k, &v})
      if (!l->b.defined()) l->b = at::zeros({l->w.size(0)}, l->w.options());
  }
  const int64_t nq = q.w.size(0), nk = k.w.size(0), nv = v.w.size(0);
  b.fusedQkv.w = at::cat({q.w, k.w, v.w}, 0);
  q.w = b.fusedQkv.w.narrow(0, 0, nq);
  k.w = b.fusedQkv.w.narrow(0, nq, nk);
  v.w = b.fusedQkv.w.narrow(0, nq + nk, nv);
  if (q.b.defined()) {
    b.fusedQkv.b = at::cat({q.b, k.b, v.b}, 0);
    q.b = b.fusedQkv.b.narrow(0, 0, nq);
    k.b = b.fusedQkv.b.narrow(0, nq, nk);
    v.b = b.fusedQkv.b.narrow(0, nq + nk, nv);
  }
}

void DecoderModel::release(int block) {
  checkBlock(block);
  Block& b = blocks_[static_cast<size_t>(block)];
  b.ln1 = {};
  b.ln2 = {};
  for (auto& l : b.lin) l = {};
  b.fusedQkv = {};
  b.gate = {};
  b.loaded = false;
}

void DecoderModel::releaseEmbedding() {
  embedTokens_ = at::Tensor();
  embedPositions_ = at::Tensor();
  embedNorm_ = {};
  projectIn_ = {};
  embedLoaded_ = false;
}

void DecoderModel::releaseHead() {
  finalNorm_ = {};
  projectOut_ = {};
  lmHead_ = {};
  headLoaded_ = false;
}

void DecoderModel::ensureEmbed() {
  if (embedLoaded_) return;
  c10::InferenceMode normalTensors(false);
  const int64_t V = cfg_.vocabSize, D = cfg_.hiddenSize;
  const int64_t E = cfg_.family == Family::Opt ? cfg_.wordEmbedProjDim : D;
  embedTokens_ = loadTensor(spec_.embedTokens + ".weight", {V, E}, storeDtype_);
  if (!spec_.projectIn.empty()) projectIn_.w = loadTensor(spec_.projectIn + ".weight", {D, E}, storeDtype_);
  if (!spec_.embedPositions.empty())
    embedPositions_ = loadTensor(spec_.embedPositions + ".weight", {-1, D}, storeDtype_);
  if (!spec_.embedNorm.empty()) embedNorm_ = loadNorm(spec_.embedNorm, D, true);
  embedLoaded_ = true;
}

void DecoderModel::ensureHead() {
  if (headLoaded_) return;
  c10::InferenceMode normalTensors(false);
  const int64_t V = cfg_.vocabSize, D = cfg_.hiddenSize;
  const int64_t E = cfg_.family == Family::Opt ? cfg_.wordEmbedProjDim : D;
  if (!spec_.finalNorm.empty()) finalNorm_ = loadNorm(spec_.finalNorm, D, normKind_ == NormKind::LayerNorm);
  if (!spec_.projectOut.empty()) projectOut_.w = loadTensor(spec_.projectOut + ".weight", {E, D}, storeDtype_);
  if (spec_.lmHead == spec_.embedTokens) {
    ensureEmbed();
    lmHead_.w = embedTokens_;  // tied: one tensor, no copy
  } else {
    lmHead_.w = loadTensor(spec_.lmHead + ".weight", {V, E}, storeDtype_);
    if (src_->has(spec_.lmHead + ".bias")) lmHead_.b = loadTensor(spec_.lmHead + ".bias", {V}, storeDtype_);
  }
  headLoaded_ = true;
}

// ---- sites -----------------------------------------------------------------------------------

const SiteInfo& DecoderModel::siteInfo(const std::string& site, int& block, int& role) const {
  auto it = siteIndex_.find(site);
  if (it == siteIndex_.end())
    throw Error("unknown quantization site '" + site + "' (sites look like '" +
                (sites_.empty() ? std::string("layers.0...") : sites_.front().name) + "')");
  block = it->second.first;
  role = it->second.second;
  const Block& b = blocks_[static_cast<size_t>(block)];
  return sites_[static_cast<size_t>(b.siteIndex[static_cast<size_t>(role)])];
}

at::Tensor DecoderModel::siteWeight(const std::string& site) {
  int block = 0, role = 0;
  const SiteInfo& si = siteInfo(site, block, role);
  c10::InferenceMode normalTensors(false);
  const Block& b = blocks_[static_cast<size_t>(block)];
  // Copies: callers may modify the result in place without touching the model.
  if (b.loaded) return b.lin[static_cast<size_t>(role)].w.clone();
  auto ov = overrides_.find(site);
  at::Tensor w = ov != overrides_.end()
                     ? overrideWeight(ov->second, /*copy=*/true).to(device_)
                     : loadTensor(si.hfWeight, {si.outFeatures, si.inFeatures}, storeDtype_, spec_.transposedWeights);
  return weightTransform_ ? weightTransform_(site, w).to(device_, storeDtype_).contiguous() : w;
}

void DecoderModel::setWeightTransform(WeightTransform fn) {
  weightTransform_ = std::move(fn);
  for (int i = 0; i < numBlocks(); ++i) release(i);
}

at::Tensor DecoderModel::overrideWeight(const Override& o, bool copy) const {
  if (o.value.defined()) return copy ? o.value.clone() : o.value;
  at::Tensor w = o.load();
  return w.to(at::kCPU, storeDtype_).contiguous();
}

void DecoderModel::setSiteWeightLoader(const std::string& site, WeightLoader loader) {
  int block = 0, role = 0;
  siteInfo(site, block, role);
  if (!loader) throw Error("setSiteWeightLoader('" + site + "'): empty loader");
  overrides_[site] = Override{at::Tensor(), std::move(loader)};
  // A loaded block keeps the weight it has; the loader serves the next materialize().
}

int64_t DecoderModel::offloadOverrides(int block, const std::string& dir) {
  checkBlock(block);
  std::vector<std::pair<std::string, at::Tensor>> held;
  int64_t bytes = 0;
  for (const auto& si : sites_) {
    if (si.block != block) continue;
    auto it = overrides_.find(si.name);
    if (it == overrides_.end() || !it->second.value.defined()) continue;
    held.emplace_back(si.name, it->second.value);
    bytes += it->second.value.numel() * static_cast<int64_t>(it->second.value.element_size());
  }
  if (held.empty()) return 0;
  const std::string path =
      dir + "/overrides-" + std::to_string(block) + "-" + std::to_string(offloadFiles_++) + ".safetensors";
  io::writeSafetensors(path, held);
  std::shared_ptr<io::SafetensorsFile> file = io::SafetensorsFile::open(path);
  for (const auto& [name, tensor] : held) {
    (void)tensor;
    overrides_[name] = Override{at::Tensor(), [file, name = name] { return file->load(name); }};
  }
  return bytes;
}

int64_t DecoderModel::overrideBytes() const {
  int64_t bytes = 0;
  for (const auto& [name, o] : overrides_)
    if (o.value.defined()) bytes += o.value.numel() * static_cast<int64_t>(o.value.element_size());
  return bytes;
}

Model::Footprint DecoderModel::footprint() const {
  Footprint f;
  f.blockBytes.assign(static_cast<size_t>(numBlocks()), 0);
  const int64_t store = static_cast<int64_t>(c10::elementSize(storeDtype_));
  auto bytesOf = [&](const io::TensorMeta& m) {
    // Norm gains/biases are held in float32, matrices in the model's dtype.
    return m.numel() * (m.shape.size() == 1 ? std::max<int64_t>(store, 4) : store);
  };
  auto startsWith = [](const std::string& s, const std::string& p) { return !p.empty() && s.rfind(p, 0) == 0; };
  for (const auto& m : src_->tensors()) {
    if (startsWith(m.name, spec_.blockPrefix)) {
      const size_t begin = spec_.blockPrefix.size();
      const size_t dot = m.name.find('.', begin);
      try {
        const int b = std::stoi(m.name.substr(begin, dot - begin));
        if (b >= 0 && b < numBlocks()) f.blockBytes[static_cast<size_t>(b)] += bytesOf(m);
      } catch (const std::exception&) {
      }
      continue;
    }
    for (const std::string* p : {&spec_.embedTokens, &spec_.embedPositions, &spec_.embedNorm, &spec_.projectIn})
      if (startsWith(m.name, *p + ".")) f.embeddingBytes += bytesOf(m);
    for (const std::string* p : {&spec_.finalNorm, &spec_.projectOut, &spec_.lmHead})
      if (startsWith(m.name, *p + ".")) f.headBytes += bytesOf(m);
    if (spec_.lmHead == spec_.embedTokens && startsWith(m.name, spec_.embedTokens + ".")) f.sharedBytes += bytesOf(m);
  }
  return f;
}

void DecoderModel::setSiteWeight(const std::string& site, const at::Tensor& w) {
  int block = 0, role = 0;
  const SiteInfo& si = siteInfo(site, block, role);
  if (!w.defined() || w.dim() != 2 || w.size(0) != si.outFeatures || w.size(1) != si.inFeatures)
    throw Error("setSiteWeight('" + site + "'): expected a weight of shape [" + std::to_string(si.outFeatures) +
                ", " + std::to_string(si.inFeatures) + "] ([out, in]), got " +
                (w.defined() ? shapeText(w.sizes()) : std::string("an undefined tensor")));
  c10::InferenceMode normalTensors(false);
  // Kept on the CPU so the change survives release() without holding device memory.
  at::Tensor cpu = w.detach().to(at::kCPU, storeDtype_, false, /*copy=*/true).contiguous();
  overrides_[site] = Override{cpu, {}};
  if (overrideBudget_ > 0 && overrideBytes() > overrideBudget_)
    for (int i = 0; i < numBlocks(); ++i) offloadOverrides(i, offloadDir_);
  Block& b = blocks_[static_cast<size_t>(block)];
  if (!b.loaded) return;
  LinearWeights& l = b.lin[static_cast<size_t>(role)];
  if (b.fusedQkv.defined() && (role == roleIndex(Role::Q) || role == roleIndex(Role::K) || role == roleIndex(Role::V)))
    l.w.copy_(cpu);  // a row view of the fused [q; k; v] matrix
  else
    l.w = cpu.to(device_);
}

// ---- biases, norms, migration pairs (OS+ / SmoothQuant folding) -------------------------------

at::Tensor DecoderModel::siteBias(const std::string& site) {
  int block = 0, role = 0;
  const SiteInfo& si = siteInfo(site, block, role);
  c10::InferenceMode normalTensors(false);
  const Block& b = blocks_[static_cast<size_t>(block)];
  if (b.loaded) {
    const at::Tensor& bias = b.lin[static_cast<size_t>(role)].b;
    return bias.defined() ? bias.clone() : at::Tensor();
  }
  auto ov = biasOverrides_.find(site);
  if (ov != biasOverrides_.end()) return ov->second.to(device_, storeDtype_, false, /*copy=*/true);
  if (!si.hasBias) return {};
  const std::string base = si.hfWeight.substr(0, si.hfWeight.size() - std::string(".weight").size());
  return loadTensor(base + ".bias", {si.outFeatures}, storeDtype_);
}

void DecoderModel::setSiteBias(const std::string& site, const at::Tensor& bias) {
  int block = 0, role = 0;
  const SiteInfo& si = siteInfo(site, block, role);
  if (!bias.defined() || bias.dim() != 1 || bias.size(0) != si.outFeatures)
    throw Error("setSiteBias('" + site + "'): expected a bias of shape [" + std::to_string(si.outFeatures) +
                "], got " + (bias.defined() ? shapeText(bias.sizes()) : std::string("an undefined tensor")));
  c10::InferenceMode normalTensors(false);
  biasOverrides_[site] = bias.detach().to(at::kCPU, storeDtype_, false, /*copy=*/true).contiguous();
  sites_[static_cast<size_t>(blocks_[static_cast<size_t>(block)].siteIndex[static_cast<size_t>(role)])].hasBias = true;
  // A new bias can change how q/k/v fuse: rebuild the block from the checkpoint + overrides.
  if (blocks_[static_cast<size_t>(block)].loaded) {
    release(block);
    materialize(block);
  }
}

const std::string& DecoderModel::normName(int block, int which) const {
  checkBlock(block);
  if (which != 1 && which != 2) throw Error("norm index must be 1 or 2, got " + std::to_string(which));
  const std::string& name = which == 1 ? spec_.ln1 : spec_.ln2;
  if (name.empty())
    throw Error("block " + std::to_string(block) + " of this " + familyName(cfg_.family) + " model has no norm " +
                std::to_string(which));
  return name;
}

NormParams DecoderModel::normParams(int block, int which) {
  const std::string& name = normName(block, which);
  c10::InferenceMode normalTensors(false);
  NormWeights n;
  auto ov = normOverrides_.find(block * 2 + which - 1);
  Block& b = blocks_[static_cast<size_t>(block)];
  if (ov != normOverrides_.end())
    n = ov->second;
  else if (b.loaded)
    n = blockNorm(b, which);
  else
    n = loadNorm(spec_.blockPrefix + std::to_string(block) + "." + name, cfg_.hiddenSize, /*withBias=*/true);
  NormParams p;
  if (n.w.defined()) p.weight = n.w.to(at::kCPU, at::kFloat, false, /*copy=*/true);
  if (n.b.defined()) p.bias = n.b.to(at::kCPU, at::kFloat, false, /*copy=*/true);
  return p;
}

void DecoderModel::setNormParams(int block, int which, const NormParams& params) {
  normName(block, which);
  for (const at::Tensor* t : {&params.weight, &params.bias})
    if (t->defined() && (t->dim() != 1 || t->size(0) != cfg_.hiddenSize))
      throw Error("setNormParams(block " + std::to_string(block) + ", norm " + std::to_string(which) +
                  "): expected [" + std::to_string(cfg_.hiddenSize) + "], got " + shapeText(t->sizes()));
  c10::InferenceMode normalTensors(false);
  NormWeights n;
  if (params.weight.defined()) n.w = params.weight.detach().to(at::kCPU, at::kFloat, false, true).contiguous();
  if (params.bias.defined()) n.b = params.bias.detach().to(at::kCPU, at::kFloat, false, true).contiguous();
  normOverrides_[block * 2 + which - 1] = n;
  Block& b = blocks_[static_cast<size_t>(block)];
  if (b.loaded) {
    NormWeights& dst = blockNorm(b, which);
    dst.w = n.w.defined() ? n.w.to(device_) : at::Tensor();
    dst.b = n.b.defined() ? n.b.to(device_) : at::Tensor();
  }
}

std::vector<MigrationPair> DecoderModel::migrationPairs() const {
  std::vector<MigrationPair> out;
  const int64_t H = cfg_.numHeads, Hkv = cfg_.numKvHeads, d = cfg_.headDim;
  // A norm whose output is also added to the residual stream cannot absorb a transform.
  const bool normsMigrate = spec_.residual != Residual::PostLn && !cfg_.residualPostLayerNorm;
  for (int i = 0; i < numBlocks(); ++i) {
    const Block& b = blocks_[static_cast<size_t>(i)];
    auto site = [&](Role r) { return b.site[static_cast<size_t>(roleIndex(r))]; };
    std::vector<std::string> attnIn, mlpIn;
    for (Role r : {Role::Q, Role::K, Role::V, Role::Qkv})
      if (!site(r).empty()) attnIn.push_back(site(r));
    for (Role r : {Role::Gate, Role::Up})
      if (!site(r).empty()) mlpIn.push_back(site(r));
    const std::string prefix = "layers." + std::to_string(i) + ".";
    if (normsMigrate && !spec_.ln1.empty()) {
      MigrationPair p;
      p.name = prefix + "ln1";
      p.block = i;
      p.norm = 1;
      p.consumers = attnIn;
      if (spec_.residual == Residual::Parallel && spec_.ln2.empty())
        p.consumers.insert(p.consumers.end(), mlpIn.begin(), mlpIn.end());
      out.push_back(p);
    }
    // Value -> output projection: channel j of o's input is value channel j of head j / d;
    // with grouped/multi-query heads several o channels share one value row, so not exact.
    if (H == Hkv) {
      MigrationPair p;
      p.kind = MigrationPair::Kind::ValueOut;
      p.name = prefix + "v_out";
      p.block = i;
      p.consumers = {site(Role::O)};
      p.producer = site(spec_.qkv == QkvLayout::Separate ? Role::V : Role::Qkv);
      for (int64_t j = 0; j < H * d; ++j) {
        const int64_t h = j / d, c = j % d;
        switch (spec_.qkv) {
          case QkvLayout::Separate: p.producerRows.push_back(j); break;
          case QkvLayout::Concat: p.producerRows.push_back(2 * H * d + j); break;
          case QkvLayout::PerHead:
          case QkvLayout::Grouped: p.producerRows.push_back(h * 3 * d + 2 * d + c); break;  // [H, 3, d]
        }
      }
      out.push_back(p);
    }
    if (normsMigrate && !spec_.ln2.empty()) {
      MigrationPair p;
      p.name = prefix + "ln2";
      p.block = i;
      p.norm = 2;
      p.consumers = mlpIn;
      out.push_back(p);
    }
  }
  return out;
}

// ---- forward pieces --------------------------------------------------------------------------

BatchState DecoderModel::prepare(const at::Tensor& ids, const at::Tensor& mask) {
  c10::InferenceMode guard;
  if (!ids.defined() || ids.dim() != 2 || ids.size(1) == 0)
    throw Error("model input ids must be a non-empty [batch, tokens] tensor, got " +
                (ids.defined() ? shapeText(ids.sizes()) : std::string("an undefined tensor")));
  BatchState s;
  s.ids = ids.to(device_, at::kLong);
  const int64_t T = ids.size(1);
  auto range = at::aminmax(s.ids);
  const int64_t lo = std::get<0>(range).item<int64_t>(), hi = std::get<1>(range).item<int64_t>();
  if (lo < 0 || hi >= cfg_.vocabSize)
    throw Error("token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary [0, " +
                std::to_string(cfg_.vocabSize) + ")");
  if (!spec_.embedPositions.empty() && cfg_.maxPositions > 0 && T > cfg_.maxPositions)
    throw Error("sequence of " + std::to_string(T) + " tokens exceeds the model's " +
                std::to_string(cfg_.maxPositions) + " learned positions (max_position_embeddings)");
  if (mask.defined()) {
    if (mask.sizes() != ids.sizes())
      throw Error("attention mask shape " + shapeText(mask.sizes()) + " differs from ids " + shapeText(ids.sizes()));
    s.mask = mask.to(device_, at::kLong);
  } else {
    s.mask = at::ones_like(s.ids);
  }
  // Padding-aware positions (HF's cumsum(mask) - 1): a left-padded row gets the positions of the
  // same row unpadded.
  s.positions = (s.mask.cumsum(1) - 1).clamp_min(0);
  s.attnBias = attentionBias(s.mask, s.positions, cfg_.slidingWindow, slopes_);
  if (cfg_.rope) ropeTables(cfg_, s.positions, computeDtype_, s.cos, s.sin);
  return s;
}

at::Tensor DecoderModel::embed(const BatchState& s) {
  c10::InferenceMode guard;
  ensureEmbed();
  at::Tensor x = at::embedding(embedTokens_, s.ids);
  if (x.scalar_type() != computeDtype_) x = x.to(computeDtype_);
  if (projectIn_.defined()) x = linear(x, projectIn_);
  if (embedPositions_.defined()) {
    at::Tensor rows = s.positions + spec_.positionOffset;
    if (s.positions.size(1) + spec_.positionOffset > embedPositions_.size(0))
      throw Error("sequence of " + std::to_string(s.positions.size(1)) + " tokens exceeds the " +
                  std::to_string(embedPositions_.size(0) - spec_.positionOffset) + " learned positions");
    at::Tensor pos = at::embedding(embedPositions_, rows);
    x = x + (pos.scalar_type() == x.scalar_type() ? pos : pos.to(x.scalar_type()));
  }
  if (embedNorm_.w.defined()) x = layerNorm(x, embedNorm_, cfg_.normEps);
  return x;
}

at::Tensor DecoderModel::norm(const at::Tensor& x, const NormWeights& n) const {
  return applyNorm(normKind_, x, n, cfg_.normEps);
}

at::Tensor DecoderModel::attention(Block& b, const at::Tensor& x, const BatchState& s, int layer) {
  const int64_t B = x.size(0), T = x.size(1);
  const int64_t H = cfg_.numHeads, Hkv = cfg_.numKvHeads, d = cfg_.headDim;
  auto lin = [&](Role r) -> const LinearWeights& { return b.lin[static_cast<size_t>(roleIndex(r))]; };
  at::Tensor q, k, v;
  if (b.fusedQkv.defined()) {
    hook(b, Role::Q, x);
    hook(b, Role::K, x);
    hook(b, Role::V, x);
    at::Tensor xq = transformed(b, Role::Q, x), xk = transformed(b, Role::K, x), xv = transformed(b, Role::V, x);
    if (xq.is_same(xk) && xq.is_same(xv)) {
      at::Tensor y = linear(xq, b.fusedQkv);
      q = y.narrow(-1, 0, H * d).view({B, T, H, d});
      k = y.narrow(-1, H * d, Hkv * d).view({B, T, Hkv, d});
      v = y.narrow(-1, (H + Hkv) * d, Hkv * d).view({B, T, Hkv, d});
    } else {  // differently transformed inputs: the row views of the fused matrix, one by one
      q = linear(xq, lin(Role::Q)).view({B, T, H, d});
      k = linear(xk, lin(Role::K)).view({B, T, Hkv, d});
      v = linear(xv, lin(Role::V)).view({B, T, Hkv, d});
    }
  } else if (spec_.qkv == QkvLayout::Separate) {
    hook(b, Role::Q, x);
    q = linear(transformed(b, Role::Q, x), lin(Role::Q)).view({B, T, H, d});
    hook(b, Role::K, x);
    k = linear(transformed(b, Role::K, x), lin(Role::K)).view({B, T, Hkv, d});
    hook(b, Role::V, x);
    v = linear(transformed(b, Role::V, x), lin(Role::V)).view({B, T, Hkv, d});
  } else {
    hook(b, Role::Qkv, x);
    at::Tensor y = linear(transformed(b, Role::Qkv, x), lin(Role::Qkv));
    switch (spec_.qkv) {
      case QkvLayout::Concat:
        q = y.narrow(-1, 0, H * d).view({B, T, H, d});
        k = y.narrow(-1, H * d, Hkv * d).view({B, T, Hkv, d});
        v = y.narrow(-1, (H + Hkv) * d, Hkv * d).view({B, T, Hkv, d});
        break;
      case QkvLayout::PerHead: {
        at::Tensor y5 = y.view({B, T, H, 3, d});
        q = y5.select(3, 0);
        k = y5.select(3, 1);
        v = y5.select(3, 2);
        break;
      }
      case QkvLayout::Grouped: {
        const int64_t r = H / Hkv;
        at::Tensor y5 = y.view({B, T, Hkv, r + 2, d});
        q = y5.narrow(3, 0, r).reshape({B, T, H, d});
        k = y5.select(3, r);
        v = y5.select(3, r + 1);
        break;
      }
      case QkvLayout::Separate: break;
    }
  }
  if (cfg_.rope) {
    q = applyRope(q, s.cos, s.sin);
    k = applyRope(k, s.cos, s.sin);
  }
  double scale = 1.0 / std::sqrt(static_cast<double>(d));
  if (cfg_.family == Family::Gpt2) {
    if (!cfg_.scaleAttnWeights) scale = 1.0;
    if (cfg_.scaleAttnByInverseLayerIdx) scale /= static_cast<double>(layer + 1);
  }
  // q is always this call's own tensor (or a slice of one), so scaling in place is safe.
  q.mul_(scale);
  if (mmHook_ || mmTransform_) matmulOperands(b, q, k, v);
  ScoresHook scoresHook;  // empty (no allocation, one test per chunk) unless a softmax hook is set
  if (smHook_)
    scoresHook = [this, &b](const at::Tensor& scores, int64_t sample, int64_t query0) {
      smHook_(b.softmax, scores, sample, query0);
    };
  at::Tensor ctx = attend(q, k, v, s.attnBias, cfg_.attention, scoresHook);
  if (cfg_.attention.gated()) ctx = gateContext(ctx, attentionGate(x, b.gate, cfg_.attention, H));
  hook(b, Role::O, ctx);
  return linear(transformed(b, Role::O, ctx), lin(Role::O));
}

void DecoderModel::matmulOperands(const Block& b, at::Tensor& q, at::Tensor& k, at::Tensor& v) const {
  at::Tensor* ops[3] = {&q, &k, &v};
  for (size_t i = 0; i < 3; ++i) {
    at::Tensor& t = *ops[i];
    const auto shape = t.sizes().vec();  // [B, T, heads, d]
    at::Tensor flat = t.reshape({shape[0], shape[1], shape[2] * shape[3]});
    if (mmHook_) mmHook_(b.matmul[i], flat);
    if (mmTransform_) {
      at::Tensor y = mmTransform_(b.matmul[i], flat);
      if (!y.sizes().equals(flat.sizes()))
        throw Error("matmul transform of " + b.matmul[i] + " changed the operand's shape");
      t = y.reshape(shape);
    }
  }
}

at::Tensor DecoderModel::mlp(Block& b, const at::Tensor& x) {
  auto lin = [&](Role r) -> const LinearWeights& { return b.lin[static_cast<size_t>(roleIndex(r))]; };
  at::Tensor y;
  if (spec_.gatedMlp) {
    hook(b, Role::Gate, x);
    at::Tensor g = linear(transformed(b, Role::Gate, x), lin(Role::Gate));
    hook(b, Role::Up, x);
    at::Tensor u = linear(transformed(b, Role::Up, x), lin(Role::Up));
    y = activateInPlace(g, cfg_.activation).mul_(u);
  } else {
    hook(b, Role::Up, x);
    y = activateInPlace(linear(transformed(b, Role::Up, x), lin(Role::Up)), cfg_.activation);
  }
  hook(b, Role::Down, y);
  return linear(transformed(b, Role::Down, y), lin(Role::Down));
}

at::Tensor DecoderModel::runBlock(int i, const at::Tensor& h, const BatchState& s) {
  c10::InferenceMode guard;
  materialize(i);
  Block& b = blocks_[static_cast<size_t>(i)];
  switch (spec_.residual) {
    case Residual::PreLn: {
      at::Tensor x = norm(h, b.ln1);
      at::Tensor h2 = attention(b, x, s, i).add_(cfg_.residualPostLayerNorm ? x : h);
      at::Tensor x2 = norm(h2, b.ln2);
      return mlp(b, x2).add_(cfg_.residualPostLayerNorm ? x2 : h2);
    }
    case Residual::PostLn: {
      at::Tensor h2 = norm(attention(b, h, s, i).add_(h), b.ln1);
      return norm(mlp(b, h2).add_(h2), b.ln2);
    }
    case Residual::Parallel: {
      at::Tensor x1 = norm(h, b.ln1);
      at::Tensor x2 = spec_.ln2.empty() ? x1 : norm(h, b.ln2);
      at::Tensor a = attention(b, x1, s, i);
      return mlp(b, x2).add_(a).add_(h);
    }
  }
  return h;
}

at::Tensor DecoderModel::head(const at::Tensor& h) {
  c10::InferenceMode guard;
  ensureHead();
  at::Tensor x = spec_.finalNorm.empty() ? h : norm(h, finalNorm_);
  if (projectOut_.defined()) x = linear(x, projectOut_);
  at::Tensor logits = linear(x, lmHead_);
  return logits.scalar_type() == at::kFloat ? logits : logits.to(at::kFloat);
}

}  // namespace qs::model
