// The softmax-input hook (Model::setSoftmaxHook, site "<attn>.softmax_in") on every golden family
// (../shared): one site per block in order, called per batch row and query chunk, its scores equal
// q.k^T (the q/k matmul operands the matmul hook sees) plus the batch's additive bias (causal,
// padding, ALiBi, sliding window) where a key is visible, and masked (<= kMaskedScoreBelow) exactly
// where it is not; setting the hook leaves the logits bit-identical.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/model/attention.h"
#include "core/model/model.h"
#include "tests/support/test_paths.h"

namespace {

class SoftmaxSite : public ::testing::TestWithParam<std::string> {};

TEST_P(SoftmaxSite, ScoresAreQKPlusBiasAndMaskedWhereHidden) {
  QS_REQUIRE_SHARED();
  c10::InferenceMode guard;
  auto m = qs::model::openModel(qs::test::sharedPath("golden/" + GetParam()));
  const auto& cfg = m->config();
  const int64_t B = 2, T = 13, H = cfg.numHeads, Hkv = cfg.numKvHeads, d = cfg.headDim;
  at::Tensor ids = at::arange(B * T, at::kLong).mul(37).remainder(cfg.vocabSize).view({B, T});
  at::Tensor mask = at::ones({B, T}, at::kLong);
  mask[1].narrow(0, 0, 3).zero_();  // row 1 left-padded
  const at::Tensor reference = m->forward(ids, mask);
  ASSERT_EQ(m->softmaxSites().size(), static_cast<size_t>(m->numBlocks()));

  std::map<std::string, at::Tensor> q, k, scores;  // scores [B, H, T, T], NaN where never computed
  std::vector<std::string> order;
  m->setMatmulHook([&](const std::string& site, const at::Tensor& x) {
    const std::string attn = site.substr(0, site.rfind('.'));
    if (site.substr(site.rfind('.') + 1) == "q_matmul") q[attn] = x.view({B, T, H, d}).to(at::kDouble);
    if (site.substr(site.rfind('.') + 1) == "k_matmul") k[attn] = x.view({B, T, Hkv, d}).to(at::kDouble);
  });
  m->setSoftmaxHook([&](const std::string& site, const at::Tensor& sc, int64_t row, int64_t q0) {
    if (order.empty() || order.back() != site) order.push_back(site);
    ASSERT_EQ(sc.scalar_type(), at::kFloat);
    ASSERT_EQ(sc.size(0), H);
    auto it = scores.find(site);
    if (it == scores.end())
      it = scores.emplace(site, at::full({B, H, T, T}, std::numeric_limits<double>::quiet_NaN(), at::kDouble)).first;
    it->second[row].narrow(1, q0, sc.size(1)).narrow(2, 0, sc.size(2)).copy_(sc);
  });
  const at::Tensor hooked = m->forward(ids, mask);
  m->setSoftmaxHook(nullptr);
  m->setMatmulHook(nullptr);
  EXPECT_TRUE(at::equal(hooked, reference));
  EXPECT_EQ(order, m->softmaxSites());

  const at::Tensor bias = m->prepare(ids, mask).attnBias.to(at::kDouble).expand({B, H, T, T});
  const at::Tensor hidden = bias <= qs::model::kMaskedScoreBelow;
  for (const auto& site : m->softmaxSites()) {
    SCOPED_TRACE(site);
    EXPECT_EQ(site.substr(site.rfind('.') + 1), "softmax_in");
    const std::string attn = site.substr(0, site.rfind('.'));
    at::Tensor kk = k.at(attn).repeat_interleave(H / Hkv, 2);
    at::Tensor expected = at::einsum("bihd,bjhd->bhij", {q.at(attn), kk}) + bias;
    const at::Tensor& got = scores.at(site);
    // Every visible entry was computed and equals the definition.
    at::Tensor visible = hidden.logical_not();
    ASSERT_FALSE(got.masked_select(visible).isnan().any().item<bool>());
    at::Tensor diff = (got - expected).abs().masked_select(visible);
    const double scale = 1 + expected.masked_select(visible).abs().max().item<double>();
    EXPECT_LT(diff.max().item<double>(), 1e-4 * scale);
    // Hidden entries that were computed hold the mask value (the rest are causally skipped).
    at::Tensor hiddenGot = got.masked_select(hidden);
    hiddenGot = hiddenGot.masked_select(hiddenGot.isnan().logical_not());
    if (hiddenGot.numel() > 0) {
      EXPECT_LE(hiddenGot.max().item<double>(), qs::model::kMaskedScoreBelow);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, SoftmaxSite,
                         ::testing::Values("opt", "opt_350m_like", "bloom", "llama", "mistral_sliding_window",
                                           "falcon", "falcon_new_arch", "gpt2", "gpt_neox"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
