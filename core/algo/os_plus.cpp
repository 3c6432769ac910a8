#include "core/algo/os_plus.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>

#include "core/algo/act_calibration.h"
#include "core/model/migration.h"
#include "core/model/model.h"
#include "core/util/error.h"

namespace qs::algo {
namespace {

std::vector<LinearRef> consumerRefs(model::Model& model, const model::MigrationPair& pair) {
  std::vector<LinearRef> refs;
  for (const auto& site : pair.consumers) {
    LinearRef r;
    r.w = model.siteWeight(site).to(at::kCPU, at::kFloat);
    at::Tensor b = model.siteBias(site);
    if (b.defined()) r.b = b.to(at::kCPU, at::kFloat);
    refs.push_back(r);
  }
  return refs;
}

}  // namespace

namespace {

// Each consumer's unmigrated output x W^T: the same for every candidate of a search.
std::vector<at::Tensor> referenceOutputs(const at::Tensor& x, const std::vector<LinearRef>& consumers) {
  std::vector<at::Tensor> refs;
  for (const auto& c : consumers) refs.push_back(at::matmul(x, c.w.t()));
  return refs;
}

double migrationErrorAgainst(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale,
                             const std::vector<LinearRef>& consumers, const std::vector<at::Tensor>& refs,
                             const OsPlusOptions& options) {
  at::Tensor xm = x;
  if (shift.defined()) xm = xm - shift;
  if (scale.defined()) xm = xm / scale;
  at::Tensor xq = quant::fakeQuantActDynamic(xm, options.act);
  double err = 0;
  for (size_t i = 0; i < consumers.size(); ++i) {
    const LinearRef& c = consumers[i];
    const at::Tensor& ref = refs[i];
    at::Tensor wm = scale.defined() ? c.w * scale : c.w;
    at::Tensor wq = options.weight.enabled() ? fakeQuantWeight(wm, options.weight) : wm;
    at::Tensor y = at::matmul(xq, wq.t());
    if (shift.defined()) y = y + at::matmul(c.w, shift);  // the bias the shift folds in
    // b_c cancels between the two sides.
    err += (y - ref).pow(2).sum().item<double>();
  }
  return err;
}

}  // namespace

double migrationError(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale,
                      const std::vector<LinearRef>& consumers, const OsPlusOptions& options) {
  c10::InferenceMode guard;
  return migrationErrorAgainst(x, shift, scale, consumers, referenceOutputs(x, consumers), options);
}

at::Tensor thresholdScale(const at::Tensor& range, double threshold) {
  if (!(threshold > 0)) throw Error("OS+ threshold must be positive (0 = search)");
  return (range.to(at::kFloat).clamp_min(1e-8) / threshold).clamp_min(1.0);
}

ThresholdSearch searchThreshold(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& range,
                                const std::vector<LinearRef>& consumers, const OsPlusOptions& options,
                                jobs::Progress& progress) {
  if (options.searchSteps < 1) throw Error("OS+ search_steps must be at least 1");
  c10::InferenceMode guard;
  const std::vector<at::Tensor> refs = referenceOutputs(x, consumers);  // once, not per candidate
  at::Tensor r = range.to(at::kFloat).clamp_min(1e-8);
  const double lo = r.min().item<double>(), hi = r.max().item<double>();
  ThresholdSearch best;
  best.error = std::numeric_limits<double>::infinity();
  for (int k = 0; k <= options.searchSteps; ++k) {
    // From the largest range down: t = hi is "no scaling", which ties win (scale only if it helps).
    const double t = hi - (hi - lo) * static_cast<double>(k) / options.searchSteps;
    progress.checkCancel();  // a 7B pair takes minutes: cancel between candidates
    at::Tensor s = thresholdScale(r, t);
    const double e = migrationErrorAgainst(x, shift, s, consumers, refs, options);
    best.candidates.push_back(t);
    best.errors.push_back(e);
    if (e < best.error) {
      best.error = e;
      best.threshold = t;
      best.scale = s;
    }
  }
  std::reverse(best.candidates.begin(), best.candidates.end());
  std::reverse(best.errors.begin(), best.errors.end());
  return best;
}

OsPlusReport applyOsPlus(model::Model& model, const at::Tensor& samples, const OsPlusOptions& options,
                         jobs::Progress& progress) {
  OsPlusReport report;
  std::vector<model::MigrationPair> pairs;
  for (auto& p : model.migrationPairs())
    if (options.valueOut || p.kind == model::MigrationPair::Kind::Norm) pairs.push_back(std::move(p));
  if (pairs.empty()) return report;
  // Each pair's input is the input of its first consumer.
  std::vector<std::string> watch;
  for (const auto& p : pairs) watch.push_back(p.consumers.front());
  jobs::SubProgress capture(progress, 0.0, 0.4);
  auto stats = captureSiteInputs(model, samples, watch, options.searchTokens, capture);
  for (size_t i = 0; i < pairs.size(); ++i) {
    progress.checkCancel();
    const auto& pair = pairs[i];
    const SiteInputStats& st = stats.at(pair.consumers.front());
    report.calibrationTokens = st.tokensSeen;
    PairReport pr;
    pr.name = pair.name;
    pr.consumers = pair.consumers;
    std::vector<LinearRef> refs = consumerRefs(model, pair);
    at::Tensor z = options.shift ? ((st.max + st.min) / 2) : at::Tensor();
    at::Tensor range = options.shift ? (st.max - st.min) / 2 : st.absMax;
    pr.maxAbsBefore = st.absMax.max().item<double>();
    pr.errorBefore = migrationError(st.tokens, {}, {}, refs, options);
    pr.errorShift = options.shift ? migrationError(st.tokens, z, {}, refs, options) : pr.errorBefore;
    pr.errorAfter = pr.errorShift;
    at::Tensor s;
    if (options.scale && options.threshold > 0) {
      s = thresholdScale(range, options.threshold);
      pr.threshold = options.threshold;
      pr.errorAfter = migrationError(st.tokens, z, s, refs, options);
    } else if (options.scale) {
      ThresholdSearch ts = searchThreshold(st.tokens, z, range, refs, options, progress);
      pr.threshold = ts.threshold;
      pr.errorAfter = ts.error;
      s = ts.scale;
    }
    pr.maxAbsAfter = (s.defined() ? range / s : range).max().item<double>();
    pr.shift = z;
    pr.scale = s;
    model::foldMigration(model, pair, z, s);
    report.pairs.push_back(std::move(pr));
    progress.update(0.4 + 0.6 * static_cast<double>(i + 1) / static_cast<double>(pairs.size()), "OS+ " + pair.name);
  }
  return report;
}

}  // namespace qs::algo
