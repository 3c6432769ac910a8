// The calibration captures (activation ranges, OS+/SmoothQuant statistics) and the activation
// fake-quant calibration streamed block by block (issue 15) equal the whole-model pass exactly,
// and the analysis statistics (which always stream) equal what a whole-model capture sees. Tiny
// random LLaMA with GQA; the whole-model path is the reference.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/algo/act_calibration.h"
#include "core/analysis/analyze.h"
#include "core/analysis/calibration.h"
#include "core/eval/perplexity.h"
#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/quant/act_quant.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs::algo {
namespace {

std::string tinyLlama() {
  static std::string d = test::writeTinyLlama(test::tempDir("capture_llama"), test::TinyModelOptions().setLayers(3).setSeed(31));
  return d;
}

at::Tensor samples() {
  at::Tensor s = at::empty({7, 24}, at::kLong);
  for (int64_t i = 0; i < s.numel(); ++i) s.view({-1})[i] = (i * 37 + 11) % 256;
  return s;
}

std::unique_ptr<model::Model> open(model::ExecMode mode) {
  auto m = model::openModel(tinyLlama());
  m->setExecOptions(model::ExecOptions().withMode(mode).withMaxMemory(mode == model::ExecMode::Streaming ? 1 : 0));
  return m;
}

TEST(StreamingCapture, SiteInputsEqualTheWholeModelPass) {
  auto w = open(model::ExecMode::Whole), s = open(model::ExecMode::Streaming);
  std::vector<std::string> sites;
  for (const auto& si : w->sites()) sites.push_back(si.name);
  const auto a = captureSiteInputs(*w, samples(), sites, 64);
  const auto b = captureSiteInputs(*s, samples(), sites, 64);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [site, x] : a) {
    const SiteInputStats& y = b.at(site);
    EXPECT_TRUE(at::equal(x.min, y.min) && at::equal(x.max, y.max)) << site;
    EXPECT_TRUE(at::equal(x.tokens, y.tokens)) << site;
    EXPECT_EQ(x.tokensSeen, y.tokensSeen);
  }
}

TEST(StreamingCapture, StaticActivationRangesEqualTheWholeModelPass) {
  // EMA observers depend on the order of batches: each site still sees them in order.
  quant::ActQuantOptions act;
  act.bits = 6;
  act.observer = quant::parseActObserver("ema_minmax", "a_observer");
  std::vector<double> ppl;
  for (auto mode : {model::ExecMode::Whole, model::ExecMode::Streaming}) {
    auto m = open(mode);
    ActQuantSession session(*m, act);
    session.calibrate(samples());
    std::vector<int32_t> tokens(6 * 24);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 53 + 7) % 256);
    ppl.push_back(eval::evaluatePerplexity(*m, tokens, eval::PerplexityOptions().setSeqlen(24)).perplexity);
  }
  EXPECT_EQ(ppl[0], ppl[1]);
}

TEST(StreamingCapture, AnalysisStatisticsEqualAWholeModelCapture) {
  // The analysis streams blocks by design; its per-channel min/max of every site input must be
  // what a whole-model forward's hooks see.
  auto m = model::openModel(tinyLlama());
  analysis::CalibrationSet cal;
  const at::Tensor ids = samples();
  cal.samples = ids.size(0);
  cal.seqlen = ids.size(1);
  for (int64_t i = 0; i < ids.numel(); ++i) cal.ids.push_back(static_cast<int32_t>(ids.view({-1})[i].item<int64_t>()));
  const analysis::AnalysisResult r = analysis::analyzeModel(*m, cal, analysis::AnalysisOptions().withBatchSize(3));
  auto w = open(model::ExecMode::Whole);
  std::vector<std::string> sites;
  for (const auto& si : w->sites()) sites.push_back(si.name);
  const auto cap = captureSiteInputs(*w, ids, sites, 1);
  int compared = 0;
  for (const auto& s : r.sites) {
    if (s.kind != "input" || !cap.count(s.fullName)) continue;
    const SiteInputStats& c = cap.at(s.fullName);
    for (int64_t k = 0; k < s.channels; ++k) {
      EXPECT_FLOAT_EQ(s.channel.min[static_cast<size_t>(k)], c.min[k].item<float>()) << s.fullName << " channel " << k;
      EXPECT_FLOAT_EQ(s.channel.max[static_cast<size_t>(k)], c.max[k].item<float>()) << s.fullName << " channel " << k;
    }
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(sites.size()));
}

}  // namespace
}  // namespace qs::algo
