// The layer-wise pipeline on tiny random LLaMA/OPT models: equal to quantizing site by site by
// hand (true-sequential groups, inputs captured with hooks), RTN independent of calibration,
// cancellation, and resume from a checkpoint reproducing an uninterrupted run bit for bit.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/algo/hessian.h"
#include "core/algo/pipeline.h"
#include "core/algo/rtn.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs::algo {
namespace {

constexpr int64_t kSamples = 6, kSeqlen = 16;

std::string tinyLlama(int64_t layers = 2) {
  static std::map<int64_t, std::string> dirs;
  auto& d = dirs[layers];
  if (d.empty()) d = test::writeTinyLlama(test::tempDir("pipe_llama" + std::to_string(layers)),
                                          test::TinyModelOptions().setLayers(layers).setSeed(3));
  return d;
}

std::string tinyOpt() {
  static std::string d = test::writeTinyOpt(test::tempDir("pipe_opt"), test::TinyModelOptions().setSeed(4));
  return d;
}

at::Tensor calibrationIds(uint64_t seed = 11) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return at::randint(0, 256, {kSamples, kSeqlen}, gen, at::kLong);
}

LayerQuantOptions gptq3() { return LayerQuantOptions().withMethod(Method::Gptq).withBits(3); }

std::map<std::string, at::Tensor> weights(model::Model& m) {
  std::map<std::string, at::Tensor> w;
  for (const auto& s : m.sites()) w[s.name] = m.siteWeight(s.name).to(at::kFloat).clone();
  return w;
}

// Progress that records messages and requests cancel once a message starts with `at`.
class CancelAt : public jobs::Progress {
 public:
  explicit CancelAt(std::string at) : at_(std::move(at)) {}
  void update(double, const std::string& message) override {
    messages.push_back(message);
    if (!at_.empty() && message.rfind(at_, 0) == 0) cancel_ = true;
  }
  bool cancelRequested() const override { return cancel_; }
  std::vector<std::string> messages;

 private:
  std::string at_;
  bool cancel_ = false;
};

// GPTQ's sequential recipe written out by hand for LLaMA: block inputs captured with hooks, the
// sites quantized in the order q/k/v, o, gate/up, down, the block re-run after each group.
std::map<std::string, at::Tensor> quantizeByHand(model::Model& m, const at::Tensor& ids, int64_t batch,
                                                 const LayerQuantOptions& opts) {
  c10::InferenceMode guard;
  std::vector<at::Tensor> parts;
  for (int64_t c = 0; c < ids.size(0); c += batch) parts.push_back(m.embed(m.prepare(ids.narrow(0, c, batch), {})));
  at::Tensor h = at::cat(parts, 0);
  const std::vector<std::vector<std::string>> order = {
      {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"},
      {"self_attn.o_proj"},
      {"mlp.gate_proj", "mlp.up_proj"},
      {"mlp.down_proj"}};
  for (int b = 0; b < m.numBlocks(); ++b) {
    const std::string prefix = "layers." + std::to_string(b) + ".";
    const auto runAll = [&] {
      std::vector<at::Tensor> outs;
      for (int64_t c = 0; c < ids.size(0); c += batch)
        outs.push_back(m.runBlock(b, h.narrow(0, c, batch), m.prepare(ids.narrow(0, c, batch), {})));
      return at::cat(outs, 0);
    };
    for (const auto& group : order) {
      std::map<std::string, std::unique_ptr<HessianAccumulator>> acc;
      for (const auto& s : group) acc[prefix + s] = std::make_unique<HessianAccumulator>(m.siteWeight(prefix + s).size(1));
      m.setInputHook([&](const std::string& site, const at::Tensor& x) {
        auto it = acc.find(site);
        if (it != acc.end()) it->second->add(x);
      });
      runAll();
      m.setInputHook(nullptr);
      for (const auto& s : group) {
        auto r = quantizeLayer(m.siteWeight(prefix + s).to(at::kFloat), acc[prefix + s]->hessian(), opts);
        m.setSiteWeight(prefix + s, r.weight);
      }
    }
    h = runAll();
  }
  return weights(m);
}

void expectSameWeights(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, w] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(at::equal(w, b.at(name))) << name << ": max diff " << (w - b.at(name)).abs().max().item<double>();
  }
}

TEST(Pipeline, GroupsSitesThatReadTheSameInput) {
  auto m = model::openModel(tinyLlama());
  c10::InferenceMode guard;
  const at::Tensor ids = calibrationIds().narrow(0, 0, 1);
  const at::Tensor h = m->embed(m->prepare(ids, {}));
  const auto groups = siteGroups(*m, 1, h, ids);
  const std::vector<std::vector<std::string>> expected = {
      {"layers.1.self_attn.q_proj", "layers.1.self_attn.k_proj", "layers.1.self_attn.v_proj"},
      {"layers.1.self_attn.o_proj"},
      {"layers.1.mlp.gate_proj", "layers.1.mlp.up_proj"},
      {"layers.1.mlp.down_proj"}};
  EXPECT_EQ(groups, expected);
}

TEST(Pipeline, EqualsQuantizingLayerByLayerByHand) {
  const at::Tensor ids = calibrationIds();
  auto byPipeline = model::openModel(tinyLlama());
  CancelAt progress("");
  auto r = quantizeModel(*byPipeline, ids, {}, PipelineOptions().withLayer(gptq3()).withBatchSize(2), progress);
  auto byHand = model::openModel(tinyLlama());
  expectSameWeights(weights(*byPipeline), quantizeByHand(*byHand, ids, 2, gptq3()));

  ASSERT_EQ(r.sites.size(), byPipeline->sites().size());
  EXPECT_EQ(r.sites[3].site, "layers.0.self_attn.o_proj");
  EXPECT_EQ(r.sites[3].group, 1);
  for (const auto& s : r.sites) {
    EXPECT_EQ(s.tokens, kSamples * kSeqlen) << s.site;
    EXPECT_GT(s.relError, 0) << s.site;
    EXPECT_LT(s.relError, 0.5) << s.site;
    EXPECT_GE(s.bitsPerWeight, 3.0) << s.site;
  }
  EXPECT_GT(r.peakMemoryBytes, 0);
  EXPECT_GT(r.peakWorkingBytes, 0);
  bool sawSite = false;
  for (const auto& msg : progress.messages) sawSite |= msg == "block 2/2: self_attn.q_proj";
  EXPECT_TRUE(sawSite) << "progress names block and site";
  // The quantized model still runs, and differs from the FP one.
  auto fp = model::openModel(tinyLlama());
  const at::Tensor q = byPipeline->forward(ids), f = fp->forward(ids);
  EXPECT_FALSE(at::allclose(q, f));
  EXPECT_LT((q - f).abs().mean().item<double>(), f.abs().mean().item<double>());
}

TEST(Pipeline, TrueSequentialFeedsQuantizedOutputsToLaterGroups) {
  const at::Tensor ids = calibrationIds();
  auto seq = model::openModel(tinyLlama(1)), par = model::openModel(tinyLlama(1));
  quantizeModel(*seq, ids, {}, PipelineOptions().withLayer(gptq3()));
  quantizeModel(*par, ids, {}, PipelineOptions().withLayer(gptq3()).withTrueSequential(false));
  const auto a = weights(*seq), b = weights(*par);
  // q/k/v read the block input either way; o_proj's Hessian differs once q/k/v are quantized.
  EXPECT_TRUE(at::equal(a.at("layers.0.self_attn.q_proj"), b.at("layers.0.self_attn.q_proj")));
  EXPECT_FALSE(at::equal(a.at("layers.0.self_attn.o_proj"), b.at("layers.0.self_attn.o_proj")));
}

TEST(Pipeline, RtnMatchesPerSiteRtnWithoutCalibrationDependence) {
  auto m = model::openModel(tinyOpt());
  const auto original = weights(*m);
  const auto spec = quant::QuantSpec().withBits(4).withGroupSize(16);
  auto r = quantizeModel(*m, calibrationIds(), {}, PipelineOptions().withLayer(
                                                         LayerQuantOptions().withMethod(Method::Rtn).withSpec(spec)));
  EXPECT_EQ(r.sites.size(), original.size());
  for (const auto& [name, w] : weights(*m)) {
    const at::Tensor h = at::eye(w.size(1), at::kDouble);
    EXPECT_TRUE(at::equal(w, quantizeRtn(original.at(name), spec, h).weight)) << name;
  }
  // Other calibration samples: the same RTN weights.
  auto m2 = model::openModel(tinyOpt());
  quantizeModel(*m2, calibrationIds(99), {}, PipelineOptions().withLayer(
                                                   LayerQuantOptions().withMethod(Method::Rtn).withSpec(spec)));
  expectSameWeights(weights(*m), weights(*m2));
}

TEST(Pipeline, MaskedPositionsAreLeftOutOfTheHessian) {
  const at::Tensor ids = calibrationIds();
  at::Tensor mask = at::ones_like(ids);
  mask.narrow(1, kSeqlen - 4, 4).zero_();  // right padding
  auto m = model::openModel(tinyLlama(1));
  auto r = quantizeModel(*m, ids, mask, PipelineOptions().withLayer(gptq3()));
  for (const auto& s : r.sites) EXPECT_EQ(s.tokens, kSamples * (kSeqlen - 4)) << s.site;
}

TEST(Pipeline, CancelLeavesNoCheckpointAndNoHook) {
  const std::string dir = test::tempDir("pipe_cancel") + "/ckpt";
  auto m = model::openModel(tinyLlama());
  CancelAt progress("block 1/2: self_attn.o_proj");
  EXPECT_THROW(quantizeModel(*m, calibrationIds(), {}, PipelineOptions().withLayer(gptq3()).withCheckpoint(dir, "t"),
                             progress),
               qs::Cancelled);
  EXPECT_EQ(checkpointedBlocks(dir), 0);
  EXPECT_FALSE(std::filesystem::exists(dir + "/block-0.safetensors"));
  // The pipeline's hook is gone: a forward runs without touching freed accumulators.
  EXPECT_NO_THROW(m->forward(calibrationIds().narrow(0, 0, 1)));
}

TEST(Pipeline, ResumeAfterCancelEqualsUninterruptedRun) {
  const at::Tensor ids = calibrationIds();
  const auto opts = PipelineOptions().withLayer(LayerQuantOptions().withMethod(Method::QuantEase).withBits(3).withNumIter(3))
                        .withBatchSize(4);
  auto whole = model::openModel(tinyLlama(3));
  auto wholeResult = quantizeModel(*whole, ids, {}, opts);

  const std::string dir = test::tempDir("pipe_resume") + "/ckpt";
  {
    auto first = model::openModel(tinyLlama(3));
    CancelAt cancelAfterBlock1("block 3/3");
    EXPECT_THROW(quantizeModel(*first, ids, {}, PipelineOptions(opts).withCheckpoint(dir, "cfg-a"), cancelAfterBlock1),
                 qs::Cancelled);
  }
  ASSERT_EQ(checkpointedBlocks(dir), 2);

  // A different config must not pick up this checkpoint.
  auto other = model::openModel(tinyLlama(3));
  EXPECT_THROW(quantizeModel(*other, ids, {}, PipelineOptions(opts).withCheckpoint(dir, "cfg-b").withResume(true)),
               qs::Error);
  // Nor different calibration samples.
  EXPECT_THROW(quantizeModel(*other, calibrationIds(5), {},
                             PipelineOptions(opts).withCheckpoint(dir, "cfg-a").withResume(true)),
               qs::Error);

  auto resumed = model::openModel(tinyLlama(3));
  auto r = quantizeModel(*resumed, ids, {}, PipelineOptions(opts).withCheckpoint(dir, "cfg-a").withResume(true));
  EXPECT_EQ(r.resumedBlocks, 2);
  expectSameWeights(weights(*whole), weights(*resumed));
  ASSERT_EQ(r.sites.size(), wholeResult.sites.size());
  for (size_t i = 0; i < r.sites.size(); ++i) {
    EXPECT_EQ(r.sites[i].site, wholeResult.sites[i].site);
    EXPECT_EQ(r.sites[i].relError, wholeResult.sites[i].relError) << r.sites[i].site;
    EXPECT_EQ(r.sites[i].resumed, r.sites[i].block < 2);
  }
}

TEST(Pipeline, GridsSurviveResumeAndRebuildTheWeights) {
  // keepGrids (what export needs): every site's codes/scales/zeros/g_idx, also for blocks
  // restored from a checkpoint, equal to an uninterrupted run and rebuilding its weights.
  const at::Tensor ids = calibrationIds();
  const auto opts = PipelineOptions().withLayer(gptq3().withGroupSize(48)).withKeepGrids(true);
  auto whole = model::openModel(tinyLlama(2));
  const auto wholeResult = quantizeModel(*whole, ids, {}, opts);
  ASSERT_EQ(wholeResult.grids.size(), wholeResult.sites.size());
  const std::string dir = test::tempDir("pipe_grids") + "/ckpt";
  {
    auto first = model::openModel(tinyLlama(2));
    CancelAt cancelInBlock2("block 2/2");
    EXPECT_THROW(quantizeModel(*first, ids, {}, PipelineOptions(opts).withCheckpoint(dir, "g"), cancelInBlock2),
                 qs::Cancelled);
  }
  ASSERT_EQ(checkpointedBlocks(dir), 1);
  auto resumed = model::openModel(tinyLlama(2));
  const auto r = quantizeModel(*resumed, ids, {}, PipelineOptions(opts).withCheckpoint(dir, "g").withResume(true));
  EXPECT_EQ(r.resumedBlocks, 1);
  ASSERT_EQ(r.grids.size(), wholeResult.grids.size());
  for (const auto& [site, g] : wholeResult.grids) {
    const LayerQuantResult& h = r.grids.at(site);
    EXPECT_TRUE(at::equal(g.codes, h.codes)) << site;
    EXPECT_EQ(g.codes.scalar_type(), at::kByte) << "asymmetric codes kept as uint8";
    EXPECT_TRUE(at::equal(g.scales, h.scales) && at::equal(g.zeros, h.zeros) && at::equal(g.gIdx, h.gIdx)) << site;
    LayerQuantResult full = g;
    full.codes = expandCodes(g.codes);
    EXPECT_TRUE(at::equal(reconstructWeight(full), resumed->siteWeight(site).to(at::kFloat))) << site;
  }
}

TEST(Pipeline, OffloadedWeightsEqualInMemoryOnesAndHoldNoMemory) {
  // Issue 15: with offloadWeights every finished block's quantized weights live in its block file
  // as an integer grid and are rebuilt on demand; the model holds none of them in memory, and
  // they equal the in-memory run's bit for bit (act-order groups, QuantEase outliers, 16-bit).
  const at::Tensor ids = calibrationIds();
  const std::vector<LayerQuantOptions> methods = {
      gptq3().withGroupSize(32).withActOrder(true),
      LayerQuantOptions().withMethod(Method::QuantEase).withBits(3).withNumIter(2).withOutlier(0.02),
      LayerQuantOptions().withMethod(Method::Gptq).withBits(16)};
  for (const auto& layer : methods) {
    auto held = model::openModel(tinyLlama());
    const auto a = quantizeModel(*held, ids, {}, PipelineOptions().withLayer(layer).withKeepGrids(true));
    auto offloaded = model::openModel(tinyLlama());
    const std::string work = test::tempDir("pipe_offload");
    const auto b = quantizeModel(*offloaded, ids, {},
                                 PipelineOptions().withLayer(layer).withKeepGrids(true).withOffload(true, work));
    EXPECT_EQ(offloaded->overrideBytes(), 0) << "quantized weights stay on disk";
    EXPECT_TRUE(b.grids.empty());
    ASSERT_EQ(b.blockFiles.size(), 2u);
    for (const auto& f : b.blockFiles) EXPECT_TRUE(std::filesystem::exists(f)) << f;
    expectSameWeights(weights(*held), weights(*offloaded));
    for (size_t i = 0; i < a.sites.size(); ++i) EXPECT_EQ(a.sites[i].relError, b.sites[i].relError);
    if (layer.spec.bits < 16)
      for (const auto& [site, g] : a.grids) {
        const LayerQuantResult fromFile = readBlockGrid(b.blockFiles.at(static_cast<size_t>(
                                                            site.find("layers.1.") == 0 ? 1 : 0)),
                                                        site);
        EXPECT_TRUE(at::equal(g.codes, fromFile.codes)) << site;
      }
  }
}

TEST(Pipeline, RtnRunsNoCalibrationPassUnlessAsked) {
  // RTN needs no data: the pipeline must not push a single token through the model (a 7B model's
  // calibration forward would take hours on a CPU). Calibration ids outside the vocabulary would
  // make any forward throw.
  at::Tensor bad = calibrationIds();
  bad[0][0] = 1000000;
  const auto rtn = LayerQuantOptions().withMethod(Method::Rtn).withBits(4).withGroupSize(16);
  auto m = model::openModel(tinyLlama());
  const auto original = weights(*m);
  PipelineResult r;
  ASSERT_NO_THROW(r = quantizeModel(*m, bad, {}, PipelineOptions().withLayer(rtn)));
  EXPECT_TRUE(r.dataFree);
  for (const auto& s : r.sites) {
    EXPECT_TRUE(s.errorOnWeights);
    EXPECT_EQ(s.tokens, 0);
    // ||W - W^||^2 / ||W||^2, against a float64 computation (the pipeline sums float32 squares).
    const at::Tensor w = original.at(s.site).to(at::kDouble), q = m->siteWeight(s.site).to(at::kDouble);
    EXPECT_NEAR(s.relError, ((w - q).pow(2).sum() / w.pow(2).sum()).item<double>(), 1e-6 * s.relError) << s.site;
  }
  auto calibrated = model::openModel(tinyLlama());
  EXPECT_THROW(quantizeModel(*calibrated, bad, {}, PipelineOptions().withLayer(rtn).withCalibrateRtn(true)), qs::Error);
}

TEST(Pipeline, RejectsBadInputs) {
  auto m = model::openModel(tinyLlama(1));
  EXPECT_THROW(quantizeModel(*m, at::zeros({0, 4}, at::kLong), {}, PipelineOptions()), qs::Error);
  EXPECT_THROW(quantizeModel(*m, calibrationIds(), at::ones({2, 2}, at::kLong), PipelineOptions()), qs::Error);
  EXPECT_THROW(quantizeModel(*m, calibrationIds(), {}, PipelineOptions().withBatchSize(0)), qs::Error);
  EXPECT_THROW(quantizeModel(*m, calibrationIds(), {}, PipelineOptions().withLayer(gptq3().withGroupSize(0))), qs::Error);
}

TEST(Pipeline, RaggedGroupsQuantizeEverySite) {
  // group size 48 divides no site of the tiny model (in = 64 / 128): every site gets a shorter
  // last group (64 = 48 + 16, 128 = 2 * 48 + 32) and stays on its 3-bit grid.
  auto m = model::openModel(tinyLlama(1));
  const PipelineResult r = quantizeModel(*m, calibrationIds(), {}, PipelineOptions().withLayer(gptq3().withGroupSize(48)));
  ASSERT_FALSE(r.sites.empty());
  for (const auto& s : r.sites) EXPECT_LT(s.relError, 1.0) << s.site;
}

}  // namespace
}  // namespace qs::algo
