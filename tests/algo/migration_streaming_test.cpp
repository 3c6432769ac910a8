// OS+ and SmoothQuant migrate block by block in one pass (issue 15): a block's pair inputs are
// captured, searched and folded before the next block runs. Checked on a tiny random LLaMA of 8
// blocks: the streamed migration (one block loaded, migrated weights spilled to disk beyond one
// block) folds exactly what the whole-model migration folds, bit for bit, while the tensors it
// holds at once are a few blocks' worth, not the model (the counting allocator sees every tensor,
// the weights read from the checkpoint included). The statistics "after" that the migration
// derives from its own capture, x' = (x - shift) / scale, are checked against a capture of the
// migrated model itself, and the blockwise capture against the whole-model capture.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "core/algo/act_calibration.h"
#include "core/algo/migration_run.h"
#include "core/algo/quantize_config.h"
#include "core/model/model.h"
#include "tests/support/counting_allocator.h"
#include "tests/support/tensor_checks.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs::algo {
namespace {

std::string eightBlocks() {
  static const std::string d = test::writeTinyLlama(
      test::tempDir("migration_stream"),
      test::TinyModelOptions().setLayers(8).setHidden(128).setHeads(4, 4).setFfn(512).setVocab(256).setSeed(41));
  return d;
}

std::unique_ptr<model::Model> open(model::ExecMode mode) {
  auto m = model::openModel(eightBlocks());
  m->setExecOptions(model::ExecOptions().withMode(mode).withMaxMemory(mode == model::ExecMode::Streaming ? 1 : 0));
  return m;
}

QuantizeConfig osPlus() {
  QuantizeConfig c;
  c.migrate = Migration::OsPlus;
  c.layer.spec = quant::QuantSpec().withBits(4).withGroupSize(32);
  c.osplusSearchSteps = 40;
  return c;
}

void expectSameTensor(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.defined(), b.defined()) << what;
  if (a.defined()) {
    EXPECT_TRUE(at::equal(a, b)) << what;
  }
}

TEST(MigrationStreaming, BlockwiseCaptureEqualsTheWholeModelCapture) {
  auto w = open(model::ExecMode::Whole), s = open(model::ExecMode::Streaming);
  const at::Tensor ids = test::randomTokens(11, 20, 7);  // two batches of 8 and 3 rows
  std::vector<std::string> sites;
  for (const auto& si : w->sites()) sites.push_back(si.name);
  const auto reference = captureSiteInputs(*w, ids, sites, 64);
  for (model::Model* m : {w.get(), s.get()}) {
    std::vector<int> order;
    std::map<std::string, SiteInputStats> got;
    captureBlockwise(*m, ids, sites, 64, 0, [&](int block, std::map<std::string, SiteInputStats>& captured) {
      order.push_back(block);
      for (auto& [site, st] : captured) {
        EXPECT_EQ(site.rfind("layers." + std::to_string(block) + ".", 0), 0u) << "block " << block;
        got.emplace(site, st);
      }
    });
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
    ASSERT_EQ(got.size(), reference.size());
    for (const auto& [site, x] : reference) {
      const SiteInputStats& y = got.at(site);
      EXPECT_TRUE(at::equal(x.min, y.min) && at::equal(x.max, y.max)) << site;
      EXPECT_TRUE(at::equal(x.tokens, y.tokens)) << site;
      EXPECT_EQ(x.tokensSeen, y.tokensSeen) << site;
    }
  }
}

TEST(MigrationStreaming, OsPlusStreamedFoldsWhatTheWholeModelFoldsHoldingAboutOneBlock) {
  auto& counter = test::CountingCpuAllocator::install();
  const at::Tensor ids = test::randomTokens(4, 64, 3);
  auto run = [&](model::ExecMode mode, MigrationOutcome& out, int64_t& peak) {
    auto m = open(mode);
    const std::string spill = test::tempDir(mode == model::ExecMode::Streaming ? "migration_spill_s" : "migration_spill_w");
    // The budget a streamed quantize job sets (two blocks, at least 512 MiB: more than this
    // whole model): the migration spills each finished block itself.
    if (mode == model::ExecMode::Streaming) m->setOverrideBudget(m->defaultOverrideBudget(), spill);
    counter.resetPeak();
    const int64_t before = counter.current();
    out = runMigration(*m, ids, osPlus());
    peak = counter.peak() - before;
    return m;
  };
  MigrationOutcome whole, streamed;
  int64_t wholePeak = 0, streamPeak = 0;
  auto mw = run(model::ExecMode::Whole, whole, wholePeak);
  auto ms = run(model::ExecMode::Streaming, streamed, streamPeak);
  const model::Model::Footprint f = mw->footprint();
  RecordProperty("whole_peak_bytes", std::to_string(wholePeak));
  RecordProperty("stream_peak_bytes", std::to_string(streamPeak));
  RecordProperty("max_block_bytes", std::to_string(f.maxBlockBytes()));

  ASSERT_EQ(whole.records.size(), 24u);  // 8 blocks x (ln1, v_out, ln2)
  ASSERT_EQ(streamed.records.size(), whole.records.size());
  for (size_t i = 0; i < whole.records.size(); ++i) {
    const auto &a = whole.records[i], &b = streamed.records[i];
    EXPECT_EQ(a.pair, b.pair);
    expectSameTensor(a.shift, b.shift, a.pair + " shift");
    expectSameTensor(a.scale, b.scale, a.pair + " scale");
    EXPECT_EQ(a.threshold, b.threshold) << a.pair;
    EXPECT_EQ(a.errorAfter, b.errorAfter) << a.pair;
    EXPECT_EQ(whole.after[i].kurtosis, streamed.after[i].kurtosis) << a.pair;
  }
  // The folded models are the same weights (the streamed one's read back from its spill files).
  for (const auto& si : mw->sites()) EXPECT_TRUE(at::equal(mw->siteWeight(si.name), ms->siteWeight(si.name))) << si.name;

  EXPECT_EQ(ms->overrideBytes(), 0) << "every finished block's folded weights are on disk";
  EXPECT_GT(mw->overrideBytes(), 0) << "the whole path keeps them in memory";
  EXPECT_GE(wholePeak, f.totalBytes()) << "the whole path holds every block";
  EXPECT_LT(streamPeak * 2, wholePeak) << "stream " << streamPeak << " B vs whole " << wholePeak << " B";
  // Both hold the same search working set (float32 consumer copies, the search tokens' outputs):
  // what streaming saves is the weights, all but about one block (the block being migrated and
  // its migrated weights until the block spills).
  EXPECT_GE(wholePeak - streamPeak, f.totalBytes() - 2 * f.maxBlockBytes())
      << "stream " << streamPeak << " B vs whole " << wholePeak << " B, block " << f.maxBlockBytes() << " B";
}

TEST(MigrationStreaming, StatisticsAfterAreThoseOfTheMigratedModel) {
  auto m = open(model::ExecMode::Whole);
  const at::Tensor ids = test::randomTokens(4, 64, 3);
  const MigrationOutcome o = runMigration(*m, ids, osPlus());
  std::vector<std::string> sites;
  for (const auto& s : o.after) sites.push_back(s.site);
  // An independent pass over the migrated model (the very inputs its consumers now see).
  const auto measured = captureSiteInputs(*m, ids, sites, kMigrationStatTokens);
  ASSERT_EQ(o.after.size(), 24u);
  for (size_t i = 0; i < o.after.size(); ++i) {
    const SiteInputStats& x = measured.at(o.after[i].site);
    const double maxAbs = x.absMax.max().item<double>();
    const double asym = ((x.max + x.min) / 2).abs().max().item<double>();
    EXPECT_NEAR(o.after[i].maxAbs, maxAbs, 1e-4 * maxAbs) << o.after[i].pair;
    EXPECT_NEAR(o.after[i].asymmetry, asym, 1e-4 * maxAbs) << o.after[i].pair;
    // OS+ shifting centres every channel: what is left of the asymmetry is rounding.
    EXPECT_LT(o.after[i].asymmetry, 1e-4 * maxAbs) << o.after[i].pair;
    EXPECT_LE(o.after[i].maxAbs, o.before[i].maxAbs * (1 + 1e-6)) << o.after[i].pair;
  }
}

TEST(MigrationStreaming, SmoothQuantStreamedEqualsWhole) {
  auto w = open(model::ExecMode::Whole), s = open(model::ExecMode::Streaming);
  s->setOverrideBudget(s->footprint().maxBlockBytes(), test::tempDir("migration_spill_sq"));
  const at::Tensor ids = test::randomTokens(4, 64, 3);
  QuantizeConfig c;
  c.migrate = Migration::SmoothQuant;
  const MigrationOutcome a = runMigration(*w, ids, c), b = runMigration(*s, ids, c);
  ASSERT_EQ(a.records.size(), 16u);  // 8 blocks x (ln1, ln2)
  ASSERT_EQ(b.records.size(), a.records.size());
  for (size_t i = 0; i < a.records.size(); ++i) expectSameTensor(a.records[i].scale, b.records[i].scale, a.records[i].pair);
  for (const auto& si : w->sites()) EXPECT_TRUE(at::equal(w->siteWeight(si.name), s->siteWeight(si.name))) << si.name;
}

}  // namespace
}  // namespace qs::algo
