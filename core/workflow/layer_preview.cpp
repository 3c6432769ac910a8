// LayerPreviewer: see layer_preview.h.
#include "core/workflow/layer_preview.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <map>

#include "core/algo/act_calibration.h"
#include "core/algo/os_plus.h"
#include "core/algo/quantize_config.h"
#include "core/eval/datasets.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"
#include "core/util/error.h"

namespace qs::workflow {

struct LayerPreviewer::State {
  std::string key;  // model + calibration the capture belongs to
  std::unique_ptr<model::Model> model;
  std::vector<model::MigrationPair> pairs;
  std::map<std::string, algo::SiteInputStats> stats;  // by first consumer
};

LayerPreviewer::LayerPreviewer() : state_(std::make_unique<State>()) {}
LayerPreviewer::~LayerPreviewer() = default;

std::vector<std::string> LayerPreviewer::pairNames(int layer) const {
  std::vector<std::string> out;
  for (const auto& p : state_->pairs)
    if (p.block == layer) out.push_back(p.name);
  return out;
}

namespace {

std::vector<float> toVector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

LayerPreviewResult LayerPreviewer::preview(const LayerPreviewOptions& o, jobs::Progress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  LayerPreviewResult out;
  const algo::QuantizeConfig cfg =
      algo::parseQuantizeConfig(o.configYaml.empty() ? "quantize: {}\n" : o.configYaml, "tuning panel");
  if (o.searchSteps < 1) throw Error("preview: search steps must be at least 1");
  if (o.threshold < 0) throw Error("preview: threshold must be 0 (search) or positive");

  const std::string key = o.modelPath + "\n" + o.dataset + "\n" + o.dataDir + "\n" + std::to_string(o.samples) + "x" +
                          std::to_string(o.seqlen) + "\n" + std::to_string(o.tokens);
  State& s = *state_;
  if (s.key != key) {
    s = State();
    progress.update(0, "opening the model");
    auto model = model::openModel(o.modelPath);
    auto tokenizer = io::loadTokenizer(o.modelPath);
    const eval::DatasetText text = eval::loadDataset(o.dataset, o.dataDir);
    progress.checkCancel();
    const at::Tensor samples = algo::calibrationWindows(tokenizer->encode(text.text, true), o.samples, o.seqlen);
    std::vector<std::string> watch;
    for (auto& p : model->migrationPairs()) {
      watch.push_back(p.consumers.front());
      s.pairs.push_back(std::move(p));
    }
    jobs::SubProgress capture(progress, 0.0, 0.9);
    s.stats = algo::captureSiteInputs(*model, samples, watch, o.tokens, capture);
    s.model = std::move(model);
    s.key = key;
    out.recaptured = true;
  }
  std::vector<const model::MigrationPair*> inLayer;
  for (const auto& p : s.pairs)
    if (p.block == o.layer) inLayer.push_back(&p);
  if (inLayer.empty()) throw Error("preview: layer " + std::to_string(o.layer) + " has no migration pair (the model has " +
                                   std::to_string(s.pairs.empty() ? 0 : s.pairs.back().block + 1) + " blocks)");
  const model::MigrationPair* chosen = nullptr;
  if (!o.site.empty()) {
    auto matches = [&](const std::string& consumer) {
      return consumer == o.site || (consumer.size() > o.site.size() &&
                                    consumer.compare(consumer.size() - o.site.size(), o.site.size(), o.site) == 0 &&
                                    consumer[consumer.size() - o.site.size() - 1] == '.');
    };
    for (const auto* p : inLayer)
      for (const auto& c : p->consumers)
        if (!chosen && matches(c)) chosen = p;
    if (!chosen)
      throw Error("preview: OS+ migrates no pair read by " + o.site + " in layer " + std::to_string(o.layer) +
                  " (its input is not a norm or value output)");
  } else {
    if (o.pairIndex < 0 || o.pairIndex >= static_cast<int>(inLayer.size()))
      throw Error("preview: layer " + std::to_string(o.layer) + " has " + std::to_string(inLayer.size()) + " pairs");
    chosen = inLayer[static_cast<size_t>(o.pairIndex)];
  }
  const model::MigrationPair& pair = *chosen;
  const algo::SiteInputStats& st = s.stats.at(pair.consumers.front());

  c10::InferenceMode guard;
  algo::OsPlusOptions opt;
  opt.withShift(o.shift).withScale(o.scale).withSearchSteps(o.searchSteps).withWeight(cfg.layer.spec);
  opt.withSearch(algo::parseOsPlusSearch(o.search));
  // As migrate: osplus does: with FP activations the objective assumes 8-bit per-tensor.
  quant::ActQuantOptions act = cfg.act;
  if (!act.enabled()) act = quant::ActQuantOptions().withBits(8);
  opt.withAct(act);
  std::vector<algo::LinearRef> refs;
  for (const auto& site : pair.consumers) {
    algo::LinearRef r;
    r.w = s.model->siteWeight(site).to(at::kCPU, at::kFloat);
    refs.push_back(r);  // biases cancel in the objective
  }
  at::Tensor z = o.shift ? (st.max + st.min) / 2 : at::Tensor();
  at::Tensor range = o.shift ? (st.max - st.min) / 2 : st.absMax;
  out.errorBefore = algo::migrationError(st.tokens, {}, {}, refs, opt);
  at::Tensor scale;
  if (o.scale) {
    if (o.threshold > 0) {
      scale = algo::thresholdScale(range, o.threshold);
      out.threshold = o.threshold;
      out.errorAfter = algo::migrationError(st.tokens, z, scale, refs, opt);
    } else {
      const algo::ThresholdSearch ts = algo::searchThreshold(st.tokens, z, range, refs, opt);
      scale = ts.scale;
      out.threshold = ts.threshold;
      out.errorAfter = ts.error;
    }
  } else {
    out.errorAfter = algo::migrationError(st.tokens, z, {}, refs, opt);
  }
  at::Tensor lo = st.min, hi = st.max;
  if (z.defined()) {
    lo = lo - z;
    hi = hi - z;
  }
  if (scale.defined()) {
    lo = lo / scale;
    hi = hi / scale;
  }
  out.pair = pair.name;
  out.consumers = pair.consumers;
  out.minBefore = toVector(st.min);
  out.maxBefore = toVector(st.max);
  out.minAfter = toVector(lo);
  out.maxAfter = toVector(hi);
  out.maxAbsBefore = st.absMax.max().item<double>();
  out.maxAbsAfter = at::maximum(lo.abs(), hi.abs()).max().item<double>();
  out.tokens = st.tokens.size(0);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  progress.update(1, "preview " + pair.name);
  return out;
}

}  // namespace qs::workflow
