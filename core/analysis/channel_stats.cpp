#include "core/analysis/channel_stats.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/analysis/channel_moments.h"
#include "core/analysis/column_moments.h"
#include "core/util/error.h"

namespace qs::analysis {
namespace {

std::vector<float> toFloats(const at::Tensor& t) {
  if (!t.defined()) return {};
  at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::string shapeText(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace

ChannelStats::ChannelStats(ChannelStatsOptions options) : options_(options) {}

void ChannelStats::update(const at::Tensor& xIn, const at::Tensor& ids, const at::Tensor& keep,
                          int64_t sampleOffset) {
  c10::InferenceMode guard;
  if (xIn.dim() != 2 && xIn.dim() != 3)
    throw Error("channel statistics need a [B, T, C] or [N, C] tensor, got " + shapeText(xIn));
  if (!xIn.is_floating_point()) throw Error("channel statistics need a floating-point tensor");
  const int64_t C = xIn.size(-1);
  const int64_t B = xIn.dim() == 3 ? xIn.size(0) : 1;
  const int64_t T = xIn.dim() == 3 ? xIn.size(1) : xIn.size(0);
  if (channels() != 0 && C != channels())
    throw Error("channel statistics: batch has " + std::to_string(C) + " channels, earlier batches " +
                std::to_string(channels()));
  if (B * T == 0) return;
  at::Tensor x = xIn.reshape({B * T, C});
  at::Tensor keepFlat;
  if (keep.defined()) {
    if (keep.numel() != B * T)
      throw Error("channel statistics: keep mask " + shapeText(keep) + " does not match " + shapeText(xIn));
    keepFlat = keep.reshape({B * T}).to(x.device(), at::kBool);
  }

  // One pass over the batch: moments of the kept rows and the per-token absmax (the CUDA kernel
  // when x is on a device that has one, else the reference ops; channel_moments.h).
  const bool wantPositions = options_.positions && xIn.dim() == 3;
  const BatchMoments bm = batchMomentsDispatch(x, keepFlat, options_.topTokens > 0 || wantPositions);
  if (options_.topTokens > 0 || wantPositions) {
    const at::Tensor& tokAbs = bm.tokenAbsmax;
    if (wantPositions) {
      at::Tensor pm = tokAbs.view({B, T}).amax(0).to(at::kFloat);
      if (!posMax_.defined()) {
        posMax_ = pm;
      } else {
        int64_t L = std::max(posMax_.size(0), T);
        if (posMax_.size(0) < L) posMax_ = at::constant_pad_nd(posMax_, {0, L - posMax_.size(0)}, 0);
        posMax_.narrow(0, 0, T).copy_(at::maximum(posMax_.narrow(0, 0, T), pm.to(posMax_.device())));
      }
    }
    if (options_.topTokens > 0) {
      int64_t k = std::min<int64_t>(options_.topTokens, B * T);
      auto tk = at::topk(tokAbs, k);
      at::Tensor idx = std::get<1>(tk);
      at::Tensor vals = std::get<0>(tk).to(at::kCPU, at::kFloat);
      at::Tensor picked = x.index_select(0, idx);
      if (picked.scalar_type() != at::kDouble) picked = picked.to(at::kFloat);
      at::Tensor chan = picked.abs().argmax(1).to(at::kCPU);
      at::Tensor tokIds = ids.defined() ? ids.reshape({B * T}).to(idx.device()).index_select(0, idx).to(at::kCPU, at::kLong)
                                        : at::Tensor();
      at::Tensor kept = keepFlat.defined() ? keepFlat.index_select(0, idx).to(at::kCPU) : at::Tensor();
      at::Tensor idxCpu = idx.to(at::kCPU);
      std::vector<TopToken> cand;
      for (int64_t j = 0; j < k; ++j) {  // k entries, not the batch
        if (kept.defined() && !kept[j].item<bool>()) continue;
        int64_t row = idxCpu[j].item<int64_t>();
        TopToken t;
        t.id = tokIds.defined() ? static_cast<int32_t>(tokIds[j].item<int64_t>()) : -1;
        t.sample = sampleOffset + row / T;
        t.position = row % T;
        t.channel = chan[j].item<int64_t>();
        t.value = vals[j].item<float>();
        cand.push_back(std::move(t));
      }
      mergeTop(std::move(cand));
    }
  }
  mergeMoments(bm.count, bm.mean, bm.m2, bm.m3, bm.m4, bm.min, bm.max);
}

// Chan, Golub & LeVeque (1979) / Pébay (2008) pairwise update of the central moment sums.
void ChannelStats::mergeMoments(int64_t nbInt, const at::Tensor& meanB, const at::Tensor& m2B, const at::Tensor& m3B,
                                const at::Tensor& m4B, const at::Tensor& minB, const at::Tensor& maxB) {
  if (nbInt == 0) return;
  if (n_ == 0) {
    n_ = nbInt;
    mean_ = meanB.clone();
    m2_ = m2B.clone();
    m3_ = m3B.clone();
    m4_ = m4B.clone();
    min_ = minB.clone();
    max_ = maxB.clone();
    return;
  }
  const auto dev = mean_.device();
  const double na = static_cast<double>(n_), nb = static_cast<double>(nbInt), n = na + nb;
  at::Tensor delta = meanB.to(dev) - mean_;
  at::Tensor dd = delta * delta;
  at::Tensor b2 = m2B.to(dev), b3 = m3B.to(dev), b4 = m4B.to(dev);
  at::Tensor m4 = m4_ + b4 + dd * dd * (na * nb * (na * na - na * nb + nb * nb) / (n * n * n)) +
                  6.0 * dd * (na * na * b2 + nb * nb * m2_) / (n * n) + 4.0 * delta * (na * b3 - nb * m3_) / n;
  at::Tensor m3 = m3_ + b3 + dd * delta * (na * nb * (na - nb) / (n * n)) + 3.0 * delta * (na * b2 - nb * m2_) / n;
  at::Tensor m2 = m2_ + b2 + dd * (na * nb / n);
  mean_ = mean_ + delta * (nb / n);
  m2_ = m2;
  m3_ = m3;
  m4_ = m4;
  min_ = at::minimum(min_, minB.to(dev));
  max_ = at::maximum(max_, maxB.to(dev));
  n_ += nbInt;
}

void ChannelStats::mergeTop(std::vector<TopToken> candidates) {
  for (auto& t : candidates) top_.push_back(std::move(t));
  // Ties are broken by (sample, position) so the kept set does not depend on batch order.
  std::sort(top_.begin(), top_.end(), [](const TopToken& a, const TopToken& b) {
    if (a.value != b.value) return a.value > b.value;
    if (a.sample != b.sample) return a.sample < b.sample;
    return a.position < b.position;
  });
  if (top_.size() > static_cast<size_t>(std::max(0, options_.topTokens))) top_.resize(options_.topTokens);
}

void ChannelStats::merge(const ChannelStats& other) {
  c10::InferenceMode guard;
  if (other.n_ == 0) return;
  if (channels() != 0 && other.channels() != channels())
    throw Error("channel statistics: cannot merge " + std::to_string(other.channels()) + " channels into " +
                std::to_string(channels()));
  mergeMoments(other.n_, other.mean_, other.m2_, other.m3_, other.m4_, other.min_, other.max_);
  if (other.posMax_.defined()) {
    at::Tensor o = other.posMax_;
    if (!posMax_.defined()) {
      posMax_ = o.clone();
    } else {
      int64_t L = std::max(posMax_.size(0), o.size(0));
      at::Tensor a = at::constant_pad_nd(posMax_, {0, L - posMax_.size(0)}, 0);
      at::Tensor b = at::constant_pad_nd(o.to(a.device()), {0, L - o.size(0)}, 0);
      posMax_ = at::maximum(a, b);
    }
  }
  mergeTop(other.top_);
}

at::Tensor ChannelStats::var() const { return n_ ? m2_ / static_cast<double>(n_) : at::Tensor(); }

at::Tensor ChannelStats::kurtosis() const {
  if (!n_) return {};
  c10::InferenceMode guard;
  at::Tensor k = static_cast<double>(n_) * m4_ / (m2_ * m2_);
  return at::where(m2_ > 0, k, at::full_like(k, std::numeric_limits<double>::quiet_NaN()));
}

at::Tensor ChannelStats::absmax() const { return n_ ? at::maximum(max_, min_.neg()) : at::Tensor(); }

std::vector<float> ChannelStats::positionAbsmax() const { return toFloats(posMax_); }

ChannelArrays ChannelStats::arrays() const {
  ChannelArrays a;
  if (!n_) return a;
  c10::InferenceMode guard;
  a.min = toFloats(min_);
  a.max = toFloats(max_);
  a.mean = toFloats(mean_);
  a.var = toFloats(var());
  a.absmax = toFloats(absmax());
  a.kurtosis = toFloats(kurtosis());
  a.center = toFloats((max_ + min_) * 0.5);
  a.halfRange = toFloats((max_ - min_) * 0.5);
  return a;
}

SiteSummary summarize(const ChannelArrays& a, int64_t count, const OutlierOptions& outliers) {
  SiteSummary s;
  const size_t C = a.size();
  if (C == 0) return s;
  double kSum = 0, kMax = 0;
  size_t kN = 0;
  for (size_t c = 0; c < C; ++c) {
    s.maxAbs = std::max(s.maxAbs, static_cast<double>(a.absmax[c]));
    if (std::isfinite(a.kurtosis[c])) {
      kSum += a.kurtosis[c];
      kMax = kN ? std::max(kMax, static_cast<double>(a.kurtosis[c])) : a.kurtosis[c];
      ++kN;
    }
  }
  s.kurtosisMean = kN ? kSum / static_cast<double>(kN) : std::numeric_limits<double>::quiet_NaN();
  s.kurtosisMax = kN ? kMax : std::numeric_limits<double>::quiet_NaN();
  std::vector<float> sorted = a.absmax;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(C / 2), sorted.end());
  double median = sorted[C / 2];
  if (C % 2 == 0) median = 0.5 * (median + *std::max_element(sorted.begin(), sorted.begin() + static_cast<long>(C / 2)));
  s.medianAbsmax = median;
  for (size_t c = 0; c < C; ++c)
    if (a.absmax[c] > outliers.absThreshold && a.absmax[c] > outliers.medianFactor * median) ++s.outlierChannels;
  // Law of total variance: every channel saw the same `count` values.
  double mu = 0;
  for (size_t c = 0; c < C; ++c) mu += a.mean[c];
  mu /= static_cast<double>(C);
  double v = 0;
  for (size_t c = 0; c < C; ++c) v += a.var[c] + (a.mean[c] - mu) * (a.mean[c] - mu);
  s.mean = mu;
  s.variance = count > 0 ? v / static_cast<double>(C) : 0;
  return s;
}

void weightStats(const at::Tensor& w, SiteResult& site, const OutlierOptions& outliers) {
  c10::InferenceMode guard;
  if (w.dim() != 2) throw Error("weight statistics need a [out, in] matrix, got " + shapeText(w));
  site.channels = w.size(1);
  site.count = w.size(0);
  if (w.device().is_cpu()) {
    // The whole matrix is at hand: two float64 passes per direction, no temporaries (column_moments.h).
    site.channel = columnArrays(w);   // per input column, over the output rows
    site.outChannel = rowArrays(w);   // per output row, over the input columns
  } else {
    auto opts = ChannelStatsOptions().withTopTokens(0).withPositions(false);
    ChannelStats perIn(opts), perOut(opts);
    perIn.update(w);      // rows are the samples: statistics per input column
    perOut.update(w.t()); // per output row
    site.channel = perIn.arrays();
    site.outChannel = perOut.arrays();
  }
  site.summary = summarize(site.channel, site.count, outliers);
}

}  // namespace qs::analysis
