// The one Model implementation: a generic decoder block driven by a FamilySpec (family.h),
// with lazily materialised per-block weights, weight overrides that survive release(), and
// input hooks on every Linear site.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/model/attention.h"
#include "core/model/family.h"
#include "core/model/layers.h"
#include "core/model/model.h"

namespace qs::model {

class DecoderModel final : public Model {
 public:
  DecoderModel(ModelConfig config, std::unique_ptr<io::WeightSource> source, const LoadOptions& options);
  ~DecoderModel() override;

  const ModelConfig& config() const override { return cfg_; }
  int numBlocks() const override { return static_cast<int>(cfg_.numLayers); }
  c10::Device device() const override { return device_; }
  at::ScalarType dtype() const override { return storeDtype_; }

  BatchState prepare(const at::Tensor& ids, const at::Tensor& mask) override;
  at::Tensor embed(const BatchState& s) override;
  at::Tensor runBlock(int i, const at::Tensor& h, const BatchState& s) override;
  at::Tensor head(const at::Tensor& h) override;

  const std::vector<SiteInfo>& sites() const override { return sites_; }
  at::Tensor siteWeight(const std::string& site) override;
  void setSiteWeight(const std::string& site, const at::Tensor& w) override;
  void setInputHook(std::function<void(const std::string&, const at::Tensor&)> hook) override {
    hook_ = std::move(hook);
  }

  void materialize(int block) override;
  void release(int block) override;
  void releaseEmbedding() override;
  void releaseHead() override;
  void setSiteWeightLoader(const std::string& site, WeightLoader loader) override;
  void setWeightTransform(WeightTransform fn) override;
  int64_t offloadOverrides(int block, const std::string& dir) override;
  int64_t overrideBytes() const override;
  void setOverrideBudget(int64_t bytes, const std::string& dir) override {
    overrideBudget_ = bytes;
    offloadDir_ = dir;
  }
  void spillOverrides(int block) override {
    if (overrideBudget_ > 0 && !offloadDir_.empty()) offloadOverrides(block, offloadDir_);
  }
  Footprint footprint() const override;

  void setInputTransform(InputTransform fn) override { transform_ = std::move(fn); }
  at::Tensor siteBias(const std::string& site) override;
  void setSiteBias(const std::string& site, const at::Tensor& bias) override;
  NormParams normParams(int block, int which) override;
  void setNormParams(int block, int which, const NormParams& params) override;
  std::vector<MigrationPair> migrationPairs() const override;
  std::vector<std::string> matmulSites() const override { return matmulSites_; }
  void setMatmulHook(std::function<void(const std::string&, const at::Tensor&)> hook) override {
    mmHook_ = std::move(hook);
  }
  void setMatmulTransform(InputTransform fn) override { mmTransform_ = std::move(fn); }
  std::vector<std::string> softmaxSites() const override { return softmaxSites_; }
  void setSoftmaxHook(SoftmaxHook hook) override { smHook_ = std::move(hook); }

 private:
  static constexpr int kRoles = 8;
  struct Block {
    bool loaded = false;
    NormWeights ln1, ln2;
    std::array<LinearWeights, kRoles> lin;
    // Separate q/k/v projections stored as one [q; k; v] matrix (lin[Q/K/V] are row views of it)
    // so the three projections run as one GEMM.
    LinearWeights fusedQkv;
    GateWeights gate;  // gated attention only (config.json quantscope_attention)
    std::array<std::string, kRoles> site;  // site name per role ("" = role unused)
    std::array<int, kRoles> siteIndex{};   // index into sites_
    std::array<std::string, 3> matmul;     // q/k/v matmul operand sites (matmulSites())
    std::string softmax;                   // softmax input site (softmaxSites())
  };

  at::Tensor attention(Block& b, const at::Tensor& x, const BatchState& s, int layer);
  at::Tensor mlp(Block& b, const at::Tensor& x);
  at::Tensor norm(const at::Tensor& x, const NormWeights& n) const;
  // Runs the matmul hook/transform on q [B, T, H, d], k and v [B, T, Hkv, d] (replaced in place
  // by the transformed operands).
  void matmulOperands(const Block& b, at::Tensor& q, at::Tensor& k, at::Tensor& v) const;
  void hook(const Block& b, Role r, const at::Tensor& x) const {
    if (hook_) hook_(b.site[static_cast<int>(r)], x);
  }
  at::Tensor transformed(const Block& b, Role r, const at::Tensor& x) const {
    return transform_ ? transform_(b.site[static_cast<int>(r)], x) : x;
  }
  const std::string& normName(int block, int which) const;  // checks block/which; HF-local name
  NormWeights& blockNorm(Block& b, int which) { return which == 1 ? b.ln1 : b.ln2; }

  void ensureEmbed();
  void ensureHead();
  // Reads a tensor by HF name (qs::Error naming the checkpoint and tensor when absent), checks its
  // shape, converts to the device/dtype.
  at::Tensor loadTensor(const std::string& name, const std::vector<int64_t>& shape, at::ScalarType dtype,
                        bool transpose = false) const;
  NormWeights loadNorm(const std::string& name, int64_t dim, bool withBias) const;
  LinearWeights loadLinear(const SiteInfo& site, const std::string& hfWeight, bool transpose) const;
  const SiteInfo& siteInfo(const std::string& site, int& block, int& role) const;
  void checkBlock(int block) const;
  void fuseQkv(Block& b) const;

  ModelConfig cfg_;
  FamilySpec spec_;
  std::unique_ptr<io::WeightSource> src_;
  c10::Device device_;
  at::ScalarType storeDtype_;    // weights as held
  at::ScalarType computeDtype_;  // activations: storeDtype_, but float32 for float16 on a CPU
  NormKind normKind_ = NormKind::LayerNorm;

  std::vector<Block> blocks_;
  std::vector<SiteInfo> sites_;
  std::unordered_map<std::string, std::pair<int, int>> siteIndex_;  // site -> (block, role)
  // A site weight that is not the checkpoint's: held (setSiteWeight, [out, in], CPU, storeDtype_)
  // or produced on demand (setSiteWeightLoader, offloadOverrides).
  struct Override {
    at::Tensor value;
    WeightLoader load;
  };
  // The override as a CPU tensor in storeDtype_ (a fresh copy when copy is true).
  at::Tensor overrideWeight(const Override& o, bool copy) const;
  std::unordered_map<std::string, Override> overrides_;
  int offloadFiles_ = 0;  // files written by offloadOverrides, for unique names
  int64_t overrideBudget_ = 0;  // setOverrideBudget
  WeightTransform weightTransform_;
  std::string offloadDir_;
  std::function<void(const std::string&, const at::Tensor&)> hook_;
  InputTransform transform_;
  std::vector<std::string> matmulSites_;
  std::function<void(const std::string&, const at::Tensor&)> mmHook_;
  InputTransform mmTransform_;
  std::vector<std::string> softmaxSites_;
  SoftmaxHook smHook_;
  std::unordered_map<std::string, at::Tensor> biasOverrides_;  // setSiteBias, [out], CPU
  std::unordered_map<int, NormWeights> normOverrides_;         // setNormParams, key block * 2 + which - 1

  bool embedLoaded_ = false, headLoaded_ = false;
  at::Tensor embedTokens_, embedPositions_, slopes_;
  NormWeights embedNorm_, finalNorm_;
  LinearWeights projectIn_, projectOut_, lmHead_;
};

}  // namespace qs::model
