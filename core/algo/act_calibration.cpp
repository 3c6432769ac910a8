#include "core/algo/act_calibration.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <unordered_map>

#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/quant/qconfig_yaml.h"
#include "core/util/error.h"

namespace qs::algo {

struct ActQuantSession::State {
  std::unordered_map<std::string, int> groupOfSite;            // site -> index into quantizers
  std::vector<std::unique_ptr<quant::ActQuantizer>> quantizers;
  bool observing = false;
  // Sites of one group receive the same input tensor: quantize once, so q/k/v stay one GEMM.
  at::Tensor lastIn, lastOut;
  int lastGroup = -1;
};

ActQuantSession::ActQuantSession(model::Model& model, const quant::ActQuantOptions& options,
                                 const std::vector<std::string>& except, bool matmulOperands)
    : model_(model), state_(std::make_shared<State>()), matmul_(matmulOperands) {
  options.validate();
  std::unordered_map<int, int> byGroup;
  for (const auto& si : model.sites()) {
    if (quant::siteExcluded(si.name, except)) continue;
    // Excluding one site of a shared input still quantizes the others with their own quantizer.
    const int key = si.inputGroup >= 0 ? si.inputGroup : -1 - static_cast<int>(state_->groupOfSite.size());
    auto it = byGroup.find(key);
    if (it == byGroup.end()) {
      it = byGroup.emplace(key, static_cast<int>(state_->quantizers.size())).first;
      state_->quantizers.push_back(std::make_unique<quant::ActQuantizer>(options));
    }
    state_->groupOfSite[si.name] = it->second;
  }
  if (matmul_) {
    const auto names = model.matmulSites();
    if (names.empty()) throw Error("this model has no attention matmul operands to quantize");
    for (const auto& name : names) {
      if (quant::siteExcluded(name, except)) continue;
      state_->groupOfSite[name] = static_cast<int>(state_->quantizers.size());
      state_->quantizers.push_back(std::make_unique<quant::ActQuantizer>(options));
    }
  }
  std::weak_ptr<State> weak = state_;
  auto transform = [weak](const std::string& site, const at::Tensor& x) -> at::Tensor {
    auto s = weak.lock();
    if (!s) return x;
    auto it = s->groupOfSite.find(site);
    if (it == s->groupOfSite.end()) return x;
    quant::ActQuantizer& q = *s->quantizers[static_cast<size_t>(it->second)];
    if (s->lastGroup == it->second && s->lastIn.defined() && s->lastIn.is_same(x)) return s->lastOut;
    at::Tensor y;
    if (s->observing) {
      q.observe(x);
      y = x;
    } else {
      y = q.apply(x);
    }
    s->lastIn = x;
    s->lastOut = y;
    s->lastGroup = it->second;
    return y;
  };
  model_.setInputTransform(transform);
  if (matmul_) model_.setMatmulTransform(transform);
}

ActQuantSession::~ActQuantSession() {
  model_.setInputTransform({});
  if (matmul_) model_.setMatmulTransform({});
}

void ActQuantSession::calibrate(const at::Tensor& samples, jobs::Progress& progress) {
  bool anyStatic = false;
  for (const auto& q : state_->quantizers) anyStatic |= !q->options().isDynamic() && q->options().enabled();
  if (!anyStatic) return;
  c10::InferenceMode guard;
  state_->observing = true;
  try {
    model::runBlocks(model_, samples, kCalibrationBatch, progress, "activation calibration");
  } catch (...) {
    state_->observing = false;
    throw;
  }
  state_->observing = false;
  state_->lastIn = state_->lastOut = at::Tensor();
  state_->lastGroup = -1;
  for (auto& q : state_->quantizers) q->finalize();
}

const quant::ActQuantizer* ActQuantSession::quantizer(const std::string& site) const {
  auto it = state_->groupOfSite.find(site);
  return it == state_->groupOfSite.end() ? nullptr : state_->quantizers[static_cast<size_t>(it->second)].get();
}

int ActQuantSession::numQuantizers() const { return static_cast<int>(state_->quantizers.size()); }

at::Tensor fakeQuantWeight(const at::Tensor& w, const quant::QuantSpec& spec) {
  if (!spec.enabled()) return w;
  c10::InferenceMode guard;
  const at::Tensor wf = w.to(at::kFloat);
  // Per group (a ragged last group included), per channel or per tensor, as every weight method.
  const quant::QuantParams p = quant::observeGroups(wf, spec);
  const at::Tensor gIdx = quant::naturalGroupIndex(wf.size(1), spec).to(at::kLong);
  const at::Tensor s = p.scale.index_select(1, gIdx), z = p.zero.index_select(1, gIdx);
  return quant::dequantizeCodes(quant::quantizeCodes(wf, s, z, spec), s, z).to(w.scalar_type());
}

int quantizeWeightsRtn(model::Model& model, const quant::QuantSpec& spec, const std::vector<std::string>& except,
                       jobs::Progress& progress) {
  if (!spec.enabled()) return 0;
  spec.validate();
  int done = 0;
  const auto& sites = model.sites();
  for (size_t i = 0; i < sites.size(); ++i) {
    progress.checkCancel();
    if (quant::siteExcluded(sites[i].name, except)) continue;
    model.setSiteWeight(sites[i].name, fakeQuantWeight(model.siteWeight(sites[i].name), spec));
    ++done;
    progress.update(static_cast<double>(i + 1) / static_cast<double>(sites.size()), "weights " + sites[i].name);
  }
  return done;
}

namespace {

// Accumulates one site's statistics and its evenly spread token subsamples, batch by batch.
class SiteRecorder {
 public:
  SiteRecorder(int64_t batches, int64_t maxTokens, int64_t statTokens)
      : maxTokens_(maxTokens), statTokens_(statTokens),
        quota_(std::max<int64_t>(1, maxTokens / std::max<int64_t>(1, batches))),
        statQuota_(std::max<int64_t>(1, statTokens / std::max<int64_t>(1, batches))) {}

  void observe(const at::Tensor& x) {
    at::Tensor rows = x.reshape({-1, x.size(-1)}).to(at::kFloat);
    at::Tensor mn = std::get<0>(rows.min(0)), mx = std::get<0>(rows.max(0));
    st_.min = st_.min.defined() ? at::minimum(st_.min, mn) : mn;
    st_.max = st_.max.defined() ? at::maximum(st_.max, mx) : mx;
    st_.tokensSeen += rows.size(0);
    kept_.push_back(subsample(rows, quota_));
    if (statTokens_ > 0) statKept_.push_back(subsample(rows, statQuota_));
  }

  SiteInputStats finish(const std::string& site) {
    if (!st_.min.defined()) throw Error("site '" + site + "' saw no input during calibration");
    st_.min = st_.min.cpu();
    st_.max = st_.max.cpu();
    st_.absMax = at::maximum(st_.min.abs(), st_.max.abs());
    st_.tokens = firstRows(at::cat(kept_), maxTokens_);
    if (statTokens_ > 0) st_.statTokens = firstRows(at::cat(statKept_), statTokens_);
    kept_.clear();
    statKept_.clear();
    return std::move(st_);
  }

 private:
  static at::Tensor subsample(const at::Tensor& rows, int64_t quota) {
    const int64_t step = std::max<int64_t>(1, rows.size(0) / quota);
    return rows.slice(0, 0, rows.size(0), step).slice(0, 0, quota).cpu().clone();
  }
  static at::Tensor firstRows(const at::Tensor& all, int64_t n) { return all.size(0) > n ? all.slice(0, 0, n) : all; }

  int64_t maxTokens_, statTokens_, quota_, statQuota_;
  SiteInputStats st_;
  std::vector<at::Tensor> kept_, statKept_;
};

// Calibration batches of kCalibrationBatch rows in samples [N, T].
int64_t batchCount(const at::Tensor& samples) { return model::blocksWorkload(samples, kCalibrationBatch).batches; }

}  // namespace

std::map<std::string, SiteInputStats> captureSiteInputs(model::Model& model, const at::Tensor& samples,
                                                        const std::vector<std::string>& sites, int64_t maxTokens,
                                                        jobs::Progress& progress) {
  std::map<std::string, SiteRecorder> recorders;
  for (const auto& s : sites) recorders.emplace(s, SiteRecorder(batchCount(samples), maxTokens, 0));
  model.setInputHook([&](const std::string& site, const at::Tensor& x) {
    auto it = recorders.find(site);
    if (it != recorders.end()) it->second.observe(x);
  });
  try {
    c10::InferenceMode guard;
    model::runBlocks(model, samples, kCalibrationBatch, progress, "channel ranges");
  } catch (...) {
    model.setInputHook({});
    throw;
  }
  model.setInputHook({});
  std::map<std::string, SiteInputStats> out;
  for (auto& [site, r] : recorders) out.emplace(site, r.finish(site));
  return out;
}

void captureBlockwise(model::Model& model, const at::Tensor& samples, const std::vector<std::string>& sites,
                      int64_t maxTokens, int64_t statTokens, const BlockCaptureFn& onBlock, jobs::Progress& progress,
                      const std::string& what) {
  const int blocks = model.numBlocks();
  std::vector<std::vector<std::string>> byBlock(static_cast<size_t>(blocks));
  {
    std::map<std::string, int> blockOf;
    for (const auto& si : model.sites()) blockOf[si.name] = si.block;
    for (const auto& s : sites) {
      auto it = blockOf.find(s);
      if (it == blockOf.end()) throw Error("unknown quantization site '" + s + "'");
      byBlock[static_cast<size_t>(it->second)].push_back(s);
    }
  }
  const model::Workload work = model::blocksWorkload(samples, kCalibrationBatch);
  const int64_t n = samples.size(0), batches = work.batches;
  const bool streaming = model::planExecution(model, work, model.execOptions()).streaming;
  auto batchIds = [&](int64_t i) {
    return samples.narrow(0, i * kCalibrationBatch, std::min(kCalibrationBatch, n - i * kCalibrationBatch))
        .to(model.device(), at::kLong);
  };
  c10::InferenceMode guard;
  std::vector<at::Tensor> hidden(static_cast<size_t>(batches));
  for (int64_t i = 0; i < batches; ++i) {
    progress.checkCancel();
    hidden[static_cast<size_t>(i)] = model.embed(model.prepare(batchIds(i), {}));
  }
  if (streaming) {
    model.releaseAll();  // the budget is for one block (an earlier whole pass may have left blocks loaded)
  }
  std::map<std::string, SiteRecorder> recorders;
  struct HookReset {
    model::Model& m;
    ~HookReset() { m.setInputHook({}); }
  } reset{model};
  model.setInputHook([&](const std::string& site, const at::Tensor& x) {
    auto it = recorders.find(site);
    if (it != recorders.end()) it->second.observe(x);
  });
  const double total = static_cast<double>(blocks) * static_cast<double>(batches);
  for (int b = 0; b < blocks; ++b) {
    recorders.clear();
    for (const auto& s : byBlock[static_cast<size_t>(b)]) recorders.emplace(s, SiteRecorder(batches, maxTokens, statTokens));
    model.materialize(b);
    for (int64_t i = 0; i < batches; ++i) {
      progress.checkCancel();
      at::Tensor& h = hidden[static_cast<size_t>(i)];
      h = model.runBlock(b, h, model.prepare(batchIds(i), {}));
      progress.update((static_cast<double>(b) * static_cast<double>(batches) + static_cast<double>(i + 1)) / total,
                      what + ": block " + std::to_string(b + 1) + "/" + std::to_string(blocks) + ", batch " +
                          std::to_string(i + 1) + "/" + std::to_string(batches));
    }
    std::map<std::string, SiteInputStats> captured;
    for (auto& [site, r] : recorders) captured.emplace(site, r.finish(site));
    recorders.clear();
    if (onBlock) onBlock(b, captured);
    if (streaming) model.release(b);
  }
}

at::Tensor calibrationWindows(const std::vector<int32_t>& tokens, int n, int seqlen) {
  const int64_t total = static_cast<int64_t>(tokens.size());
  if (n < 1 || seqlen < 2) throw Error("calibration needs at least 1 sample of at least 2 tokens");
  if (total < seqlen)
    throw Error("calibration text has " + std::to_string(total) + " tokens, fewer than one window of " +
                std::to_string(seqlen));
  at::Tensor out = at::empty({n, seqlen}, at::kLong);
  auto acc = out.accessor<int64_t, 2>();
  const int64_t span = total - seqlen;
  for (int i = 0; i < n; ++i) {
    const int64_t start = n == 1 ? 0 : span * i / (n - 1);
    for (int t = 0; t < seqlen; ++t) acc[i][t] = tokens[static_cast<size_t>(start + t)];
  }
  return out;
}

}  // namespace qs::algo
