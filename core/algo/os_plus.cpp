#include "core/algo/os_plus.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>
#include <map>

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

const char* osPlusSearchName(OsPlusSearch s) { return s == OsPlusSearch::Grid ? "grid" : "refine"; }

OsPlusSearch parseOsPlusSearch(const std::string& name) {
  if (name == "refine") return OsPlusSearch::Refine;
  if (name == "grid") return OsPlusSearch::Grid;
  throw Error("OS+ search '" + name + "' is not refine (coarse to fine) or grid (every candidate)");
}

namespace {

// The coarse stride of a refined search: about ten coarse candidates, then halving.
int coarseStride(const OsPlusOptions& o) {
  return o.search == OsPlusSearch::Grid ? 1 : std::max(1, (o.searchSteps + 9) / 10);
}

}  // namespace

int thresholdEvaluations(const OsPlusOptions& options) {
  const int steps = std::max(1, options.searchSteps);
  int h = coarseStride(options);
  if (h == 1) return steps + 1;
  int n = steps / h + 1 + (steps % h != 0 ? 1 : 0);
  while (h > 1) {
    h = (h + 1) / 2;
    n += 2;
  }
  return std::min(n, steps + 1);
}

ThresholdSearch searchThreshold(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& range,
                                const std::vector<LinearRef>& consumers, const OsPlusOptions& options,
                                jobs::Progress& progress) {
  if (options.searchSteps < 1) throw Error("OS+ search_steps must be at least 1");
  c10::InferenceMode guard;
  const std::vector<at::Tensor> refs = referenceOutputs(x, consumers);  // once, not per candidate
  at::Tensor r = range.to(at::kFloat).clamp_min(1e-8);
  const double lo = r.min().item<double>(), hi = r.max().item<double>();
  const int steps = options.searchSteps;
  // Candidate k of the grid: t = hi - (hi - lo) k / steps; k = 0 is "no scaling".
  std::map<int, std::pair<double, double>> tried;  // k -> (t, error)
  int best = -1;
  auto evaluate = [&](int k) {
    if (k < 0 || k > steps || tried.count(k)) return;
    const double t = hi - (hi - lo) * static_cast<double>(k) / steps;
    progress.checkCancel();  // a 7B pair takes seconds per candidate: cancel between them
    const double e = migrationErrorAgainst(x, shift, thresholdScale(r, t), consumers, refs, options);
    tried[k] = {t, e};
    // Ties go to the smaller k (the larger threshold): scale only where it helps.
    if (best < 0 || e < tried[best].second || (e == tried[best].second && k < best)) best = k;
  };
  int h = coarseStride(options);
  for (int k = 0; k <= steps; k += h) evaluate(k);
  evaluate(steps);
  while (h > 1) {
    h = (h + 1) / 2;
    const int centre = best;
    evaluate(centre - h);
    evaluate(centre + h);
  }
  ThresholdSearch out;
  out.threshold = tried[best].first;
  out.error = tried[best].second;
  out.scale = thresholdScale(r, out.threshold);
  for (auto it = tried.rbegin(); it != tried.rend(); ++it) {  // ascending t
    out.candidates.push_back(it->second.first);
    out.errors.push_back(it->second.second);
  }
  return out;
}

namespace {

// One pair: the errors before and after shifting, the threshold (fixed or searched), then folded.
PairReport migratePair(model::Model& model, const model::MigrationPair& pair, const SiteInputStats& st,
                       const OsPlusOptions& options, jobs::Progress& progress) {
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
  return pr;
}

}  // namespace

void forEachPairBlockwise(model::Model& model, const at::Tensor& samples, bool valueOut, int64_t maxTokens,
                          int64_t statTokens, const PairFn& fn, jobs::Progress& progress, const std::string& what) {
  std::vector<model::MigrationPair> pairs;
  for (auto& p : model.migrationPairs())
    if (valueOut || p.kind == model::MigrationPair::Kind::Norm) pairs.push_back(std::move(p));
  if (pairs.empty()) return;
  std::vector<std::string> watch;
  for (const auto& p : pairs) watch.push_back(p.consumers.front());
  captureBlockwise(
      model, samples, watch, maxTokens, statTokens,
      [&](int block, std::map<std::string, SiteInputStats>& captured) {
        for (const auto& pair : pairs) {
          auto it = captured.find(pair.consumers.front());
          if (it != captured.end()) fn(block, pair, it->second);  // else another block's pair
        }
        model.spillOverrides(block);  // streaming: the block's folded weights go to disk now
      },
      progress, what);
}

OsPlusReport applyOsPlus(model::Model& model, const at::Tensor& samples, const OsPlusOptions& options,
                         jobs::Progress& progress, const PairObserver& observe, int64_t statTokens) {
  OsPlusReport report;
  const double blocks = model.numBlocks();
  forEachPairBlockwise(
      model, samples, options.valueOut, options.searchTokens, statTokens,
      [&](int block, const model::MigrationPair& pair, const SiteInputStats& st) {
        progress.update((block + 1) / blocks, "OS+ " + pair.name + ": threshold search");
        report.calibrationTokens = st.tokensSeen;
        report.pairs.push_back(migratePair(model, pair, st, options, progress));
        if (observe) observe(pair, st, report.pairs.back().shift, report.pairs.back().scale);
      },
      progress, "OS+ capture");
  return report;
}

}  // namespace qs::algo
