// Generation: the token sampler against its definition (argmax at temperature 0 and top-k 1,
// frequencies matching softmax(logits / T), top-k support, seed reproducibility), and
// generate() on stories260K against a plain argmax loop written here (the greedy decoder
// before sampling existed), plus stopping at EOS / extra stop ids.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/model/generate.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "tests/support/test_paths.h"

namespace {

using qs::model::GenerateOptions;
using qs::model::TokenSampler;

GenerateOptions sampling(double t, int k, uint64_t seed) {
  GenerateOptions o;
  o.temperature = t;
  o.topK = k;
  o.seed = seed;
  return o;
}

TEST(TokenSampler, GreedyAndTopOneAreArgmaxWithFirstMaximumOnTies) {
  std::vector<float> logits{0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
  TokenSampler greedy(sampling(0, 0, 7));
  TokenSampler top1(sampling(1.0, 1, 7));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(greedy.pick(logits), 1);
    EXPECT_EQ(top1.pick(logits), 1);
  }
}

TEST(TokenSampler, FrequenciesFollowTheTemperedSoftmaxWithinTopK) {
  // Reference: p_i = exp(l_i / T) / sum_j exp(l_j / T), computed here in double.
  std::vector<float> logits{std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  for (double t : {1.0, 0.5}) {
    for (int k : {0, 2}) {
      size_t n = (k == 0) ? logits.size() : static_cast<size_t>(k);
      std::vector<double> p(n);
      double z = 0;
      for (size_t i = 0; i < n; ++i) z += p[i] = std::exp(logits[i] / t);
      TokenSampler s(sampling(t, k, 123));
      std::vector<int> count(logits.size(), 0);
      const int draws = 40000;
      for (int d = 0; d < draws; ++d) ++count[static_cast<size_t>(s.pick(logits))];
      for (size_t i = 0; i < logits.size(); ++i) {
        double expect = i < n ? p[i] / z : 0.0;
        // 4 binomial standard deviations (<= 0.01 at 40,000 draws); 0 outside the top k.
        double tol = 4 * std::sqrt(expect * (1 - expect) / draws) + 1e-12;
        EXPECT_NEAR(static_cast<double>(count[i]) / draws, expect, tol) << "T=" << t << " k=" << k << " id " << i;
      }
    }
  }
}

TEST(TokenSampler, SeedReproducesAndOtherSeedsDiffer) {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(std::sin(i * 1.7)) * 2;
  auto draw = [&](uint64_t seed) {
    TokenSampler s(sampling(1.0, 0, seed));
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.pick(logits));
    return out;
  };
  EXPECT_EQ(draw(5), draw(5));
  EXPECT_NE(draw(5), draw(6));
  EXPECT_NE(qs::model::sampleSeed(1, 0), qs::model::sampleSeed(1, 1));
  EXPECT_NE(qs::model::sampleSeed(1, 0), qs::model::sampleSeed(2, 0));
  EXPECT_EQ(qs::model::sampleSeed(3, 9), qs::model::sampleSeed(3, 9));
}

TEST(TokenSampler, RejectsBadOptionsNamingThem) {
  try {
    TokenSampler s(sampling(-1, 0, 0));
    FAIL() << "negative temperature accepted";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--temperature"), std::string::npos) << e.what();
  }
  try {
    TokenSampler s(sampling(1, -3, 0));
    FAIL() << "negative top-k accepted";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--top-k"), std::string::npos) << e.what();
  }
}

class GenerateStories : public ::testing::Test {
 protected:
  void SetUp() override {
    QS_REQUIRE_SHARED();
    model_ = qs::model::openModel(qs::test::sharedPath("models/stories260K/stories260K.gguf"));
  }
  // The greedy decoder as it was before sampling: re-run the sequence, take the argmax.
  std::vector<int32_t> argmaxLoop(std::vector<int64_t> seq, int n) {
    c10::InferenceMode guard;
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      auto logits = model_->forward(at::tensor(seq, at::kLong).view({1, -1}));
      out.push_back(static_cast<int32_t>(logits[0][-1].argmax().item<int64_t>()));
      seq.push_back(out.back());
    }
    return out;
  }
  std::unique_ptr<qs::model::Model> model_;
  const std::vector<int32_t> bos_{1};
};

TEST_F(GenerateStories, TemperatureZeroAndTopOneEqualTheArgmaxLoop) {
  auto reference = argmaxLoop({1}, 24);
  GenerateOptions o;
  o.maxNewTokens = 24;
  EXPECT_EQ(qs::model::generate(*model_, bos_, o), reference);
  for (uint64_t seed : {0u, 1u, 99u}) {
    auto top1 = sampling(1.0, 1, seed);
    top1.maxNewTokens = 24;
    EXPECT_EQ(qs::model::generate(*model_, bos_, top1), reference) << "seed " << seed;
  }
}

TEST_F(GenerateStories, FixedSeedReproducesAndSeedsGiveDifferentStories) {
  auto o = sampling(1.0, 0, qs::model::sampleSeed(1, 0));
  o.maxNewTokens = 40;
  auto a = qs::model::generate(*model_, bos_, o);
  EXPECT_EQ(qs::model::generate(*model_, bos_, o), a);
  auto other = o;
  other.seed = qs::model::sampleSeed(1, 1);
  EXPECT_NE(qs::model::generate(*model_, bos_, other), a);
  auto k5 = sampling(1.0, 5, 3);
  k5.maxNewTokens = 40;
  EXPECT_EQ(qs::model::generate(*model_, bos_, k5), qs::model::generate(*model_, bos_, k5));
}

TEST_F(GenerateStories, StopsRightAfterTheEosOrAStopId) {
  auto o = sampling(1.0, 0, 11);
  o.maxNewTokens = 40;
  auto full = qs::model::generate(*model_, bos_, o);
  ASSERT_EQ(full.size(), 40u);
  // Make the 10th sampled token the EOS (its first occurrence): the same draw stops there.
  size_t at = 9;
  auto before = [&](size_t i) { return full.begin() + static_cast<std::ptrdiff_t>(i); };
  while (at < full.size() && std::find(full.begin(), before(at), full[at]) != before(at)) ++at;
  ASSERT_LT(at, full.size());
  auto eos = o;
  eos.eosId = full[at];
  auto cut = qs::model::generate(*model_, bos_, eos);
  EXPECT_EQ(cut, std::vector<int32_t>(full.begin(), before(at + 1)));
  auto stop = o;
  stop.extraStopIds = {full[at]};
  EXPECT_EQ(qs::model::generate(*model_, bos_, stop), cut);
}

}  // namespace
