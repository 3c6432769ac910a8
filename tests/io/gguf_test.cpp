// GGUF reader, the HF view of GGUF files (names and row layouts per llama.cpp architecture), and the
// config derived from GGUF metadata.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <tuple>
#include <vector>

#include "core/io/gguf.h"
#include "core/io/gguf_weights.h"
#include "core/io/safetensors.h"
#include "core/io/weight_source.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "tests/io/io_fixtures.h"
#include "tests/support/test_paths.h"

namespace qs::io {
namespace {

using fixtures::GgufBuilder;
using fixtures::writeFile;

template <typename F>
std::string errorOf(F&& f) {
  try {
    f();
  } catch (const qs::Error& e) {
    return e.what();
  }
  return "<no error>";
}

std::string bytesOf(const at::Tensor& t) {
  return std::string(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
}

// HF -> llama.cpp, as llama.cpp's convert script permutes q/k (the direction we must undo).
at::Tensor toGgufLayout(const at::Tensor& w, int64_t heads) {
  return w.reshape({heads, 2, w.size(0) / heads / 2, w.size(1)}).transpose(1, 2).reshape(w.sizes()).contiguous();
}

// A 1-layer LLaMA: hidden 8, 2 heads, 1 KV head (head dim 4), FFN 12, vocab 5.
struct TinyLlama {
  at::Tensor emb = at::randn({5, 8}), q = at::randn({8, 8}), k = at::randn({4, 8}), v = at::randn({4, 8}),
             o = at::randn({8, 8}), norm = at::randn({8}), gate = at::randn({12, 8}).to(at::kHalf),
             out = at::randn({5, 8}).to(at::kBFloat16);
  GgufBuilder b;
  explicit TinyLlama(const std::string& arch = "llama", bool withOutput = true) {
    b.string("general.architecture", arch);
    b.u32("llama.embedding_length", 8);
    b.u32("llama.feed_forward_length", 12);
    b.u32("llama.block_count", 1);
    b.u32("llama.attention.head_count", 2);
    b.u32("llama.attention.head_count_kv", 1);
    b.u32("llama.context_length", 64);
    b.f32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
    b.f32("llama.rope.freq_base", 500000.0f);
    b.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b"});
    b.u32("tokenizer.ggml.bos_token_id", 1);
    b.u32("tokenizer.ggml.eos_token_id", 2);
    auto add = [&](const std::string& name, const at::Tensor& t, uint32_t type) {
      std::vector<uint64_t> ne(t.sizes().rbegin(), t.sizes().rend());
      b.tensors.push_back({name, ne, type, bytesOf(t)});
    };
    add("token_embd.weight", emb, 0);
    add("blk.0.attn_q.weight", toGgufLayout(q, 2), 0);
    add("blk.0.attn_k.weight", toGgufLayout(k, 1), 0);
    add("blk.0.attn_v.weight", v, 0);
    add("blk.0.attn_output.weight", o, 0);
    add("blk.0.attn_norm.weight", norm, 0);
    add("blk.0.ffn_gate.weight", gate, 1);
    add("rope_freqs.weight", at::ones({2}), 0);
    b.tensors.push_back({"blk.0.ffn_up.weight", {32, 12}, 2, std::string(12 * 18, '\0')});  // Q4_0
    b.tensors.push_back({"blk.0.ffn_down.weight", {256, 8}, 16, std::string(8 * 66, '\0')});  // IQ2_XXS: not read
    if (withOutput) add("output.weight", out, 30);
  }
};

TEST(Gguf, TinyLlamaRoundTrip) {
  at::manual_seed(3);
  TinyLlama m;
  const std::string path = fs::join(test::tempDir("gguf_tiny"), "tiny.gguf");
  writeFile(path, m.b.build());
  auto f = GgufFile::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->metadata()["general.architecture"], "llama");
  EXPECT_EQ(f->metadata()["tokenizer.ggml.tokens"].size(), 5u);
  ASSERT_NE(f->find("blk.0.ffn_up.weight"), nullptr);
  EXPECT_EQ(f->find("blk.0.ffn_up.weight")->shape, (std::vector<int64_t>{12, 32}));
  EXPECT_EQ(ggmlTypeName(f->find("blk.0.ffn_up.weight")->ggmlType), "Q4_0");

  auto w = openWeights(path);
  EXPECT_NE(dynamic_cast<GgufWeightSource*>(w.get()), nullptr);
  EXPECT_FALSE(w->has("rope_freqs.weight"));
  EXPECT_TRUE(at::equal(w->load("model.embed_tokens.weight"), m.emb));
  EXPECT_TRUE(at::equal(w->load("model.layers.0.self_attn.q_proj.weight"), m.q));
  EXPECT_TRUE(at::equal(w->load("model.layers.0.self_attn.k_proj.weight"), m.k));
  EXPECT_TRUE(at::equal(w->load("model.layers.0.self_attn.v_proj.weight"), m.v));
  EXPECT_TRUE(at::equal(w->load("model.layers.0.self_attn.o_proj.weight"), m.o));
  EXPECT_TRUE(at::equal(w->load("model.layers.0.input_layernorm.weight"), m.norm));
  EXPECT_TRUE(at::equal(w->load("model.layers.0.mlp.gate_proj.weight"), m.gate));
  EXPECT_EQ(w->meta("model.layers.0.mlp.gate_proj.weight").dtype, DType::F16);
  EXPECT_TRUE(at::equal(w->load("lm_head.weight"), m.out));
  // Block types QuantScope reads are dequantized (all-zero Q4_0 blocks: d = 0); others are named.
  EXPECT_TRUE(at::equal(w->load("model.layers.0.mlp.up_proj.weight"), at::zeros({12, 32})));
  std::string msg = errorOf([&] { w->load("model.layers.0.mlp.down_proj.weight"); });
  EXPECT_NE(msg.find("blk.0.ffn_down.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("IQ2_XXS"), std::string::npos) << msg;

  nlohmann::json c = ggufToHfConfig(*f);
  EXPECT_EQ(c["num_key_value_heads"], 1);
  EXPECT_EQ(c["vocab_size"], 5);
  EXPECT_EQ(c["rope_theta"], 500000.0);
  EXPECT_EQ(c["rms_norm_eps"], 1e-6);
  EXPECT_EQ(c["tie_word_embeddings"], false);
  EXPECT_EQ(c["max_position_embeddings"], 64);
}

TEST(Gguf, TiedAndUnknownArchitecture) {
  TinyLlama tied("llama", false);
  const std::string dir = test::tempDir("gguf_arch");
  writeFile(fs::join(dir, "tied.gguf"), tied.b.build());
  EXPECT_EQ(ggufToHfConfig(*GgufFile::open(fs::join(dir, "tied.gguf")))["tie_word_embeddings"], true);
  TinyLlama other("mamba");
  writeFile(fs::join(dir, "other.gguf"), other.b.build());
  std::string msg = errorOf([&] { openWeights(fs::join(dir, "other.gguf")); });
  EXPECT_NE(msg.find("other.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mamba"), std::string::npos) << msg;
  msg = errorOf([&] { ggufToHfConfig(*GgufFile::open(fs::join(dir, "other.gguf"))); });
  EXPECT_NE(msg.find("mamba"), std::string::npos) << msg;
}

TEST(Gguf, RejectsMalformed) {
  const std::string path = fs::join(test::tempDir("gguf_bad"), "bad.gguf");
  auto expectMsg = [&](const std::string& bytes, const std::string& frag) {
    writeFile(path, bytes);
    std::string msg = errorOf([&] { GgufFile::open(path); });
    EXPECT_NE(msg.find(frag), std::string::npos) << msg;
    EXPECT_NE(msg.find("bad.gguf"), std::string::npos) << msg;
  };
  TinyLlama m;
  std::string good = m.b.build();
  expectMsg("GGUX" + good.substr(4), "bad magic");
  expectMsg(good.substr(0, 4) + std::string("\x01\0\0\0", 4) + good.substr(8), "version 1");
  expectMsg(good.substr(0, good.size() - 100), "past the end");
  expectMsg(good.substr(0, 60), "metadata count 12 exceeds the file size");
  expectMsg(good.substr(0, 300), "end of file");
  std::string hugeCount = good;
  for (int i = 0; i < 8; ++i) hugeCount[8 + i] = '\xff';
  expectMsg(hugeCount, "tensor count");
  GgufBuilder b;
  b.u32("general.alignment", 3);
  expectMsg(b.build(), "power of two");
  GgufBuilder s;
  s.add("k", 8, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8));
  expectMsg(s.build(), "string of");
  GgufBuilder a;
  std::string arr;
  fixtures::putLe(arr, 4, 4);
  fixtures::putLe(arr, 1ull << 60, 8);
  a.add("arr", 9, arr);
  expectMsg(a.build(), "exceeds the file size");
}

TEST(Gguf, Stories260KMatchesHfExport) {
  QS_REQUIRE_SHARED();
  const std::string gguf = test::sharedPath("models/stories260K/stories260K.gguf");
  auto w = openWeights(gguf);
  auto hf = SafetensorsFile::open(test::sharedPath("models/stories260K/hf/model.safetensors"));
  ASSERT_FALSE(hf->tensors().empty());
  for (const auto& m : hf->tensors()) {
    ASSERT_TRUE(w->has(m.name)) << m.name;
    EXPECT_EQ(w->meta(m.name).shape, m.shape) << m.name;
    EXPECT_TRUE(at::equal(w->load(m.name), hf->load(m.name))) << m.name;
  }
  // stories260K stores output.weight as a byte copy of token_embd.weight (its HF export keeps
  // lm_head.weight too); the config calls that tied.
  EXPECT_TRUE(at::equal(w->load("lm_head.weight"), w->load("model.embed_tokens.weight")));

  auto f = GgufFile::open(gguf);
  nlohmann::json c = ggufToHfConfig(*f);
  nlohmann::json ref = nlohmann::json::parse(fs::readText(test::sharedPath("models/stories260K/hf/config.json")));
  for (const char* k : {"model_type", "architectures", "hidden_size", "intermediate_size", "num_hidden_layers",
                        "num_attention_heads", "num_key_value_heads", "vocab_size",
                        "rms_norm_eps", "rope_theta", "tie_word_embeddings", "bos_token_id", "eos_token_id",
                        "hidden_act"})
    EXPECT_EQ(c[k], ref[k]) << k;
  // The GGUF says llama.context_length 2048; the HF export chose llama2.c's seq_len 512, which
  // the GGUF does not record. We report what the GGUF says.
  EXPECT_EQ(c["max_position_embeddings"], 2048);
}

}  // namespace
}  // namespace qs::io

namespace qs::io {
namespace {

// The name tables of the llama.cpp architectures run both ways (convert_hf_to_gguf.py's names),
// with and without the model's prefix; Falcon-40B's two norms map by whether the file has attn_norm_2.
TEST(GgufLayouts, NamesRoundTripPerArchitecture) {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"llama", "model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight"},
      {"gpt2", "transformer.h.1.attn.c_attn.weight", "blk.1.attn_qkv.weight"},
      {"gpt2", "transformer.wpe.weight", "position_embd.weight"},
      {"bloom", "transformer.word_embeddings_layernorm.bias", "token_embd_norm.bias"},
      {"bloom", "transformer.h.0.self_attention.query_key_value.bias", "blk.0.attn_qkv.bias"},
      {"falcon", "transformer.h.2.mlp.dense_4h_to_h.weight", "blk.2.ffn_down.weight"},
      {"falcon", "transformer.h.2.input_layernorm.weight", "blk.2.attn_norm.weight"},
      {"gptneox", "gpt_neox.layers.5.post_attention_layernorm.weight", "blk.5.ffn_norm.weight"},
      {"gptneox", "embed_out.weight", "output.weight"}};
  for (const auto& [arch, hf, gguf] : cases) {
    EXPECT_EQ(hfToGgufName(hf, arch), gguf) << arch << " " << hf;
    EXPECT_EQ(ggufToHfName(gguf, arch), hf) << arch << " " << gguf;
  }
  EXPECT_EQ(hfToGgufName("h.1.attn.c_attn.weight", "gpt2"), "blk.1.attn_qkv.weight") << "a checkpoint without prefix";
  EXPECT_EQ(ggufToHfName("blk.0.attn_norm.weight", "falcon", true), "transformer.h.0.ln_mlp.weight");
  EXPECT_EQ(ggufToHfName("blk.0.attn_norm_2.weight", "falcon", true), "transformer.h.0.ln_attn.weight");
  EXPECT_EQ(hfToGgufName("transformer.h.0.ln_attn.bias", "falcon"), "blk.0.attn_norm_2.bias");
  EXPECT_EQ(hfToGgufName("transformer.h.0.post_attention_layernorm.weight", "falcon"), "") << "no llama.cpp twin";
  EXPECT_TRUE(isHfBufferTensor("transformer.h.0.attn.masked_bias"));
  EXPECT_TRUE(ggufHfTransposed("gpt2", "blk.0.ffn_up.weight"));
  EXPECT_FALSE(ggufHfTransposed("gpt2", "blk.0.ffn_up.bias"));
  EXPECT_FALSE(isMappedGgufArch("mamba"));
}

// The fused q|k|v rows: BLOOM/NeoX interleave [q k v] per head, Falcon puts each kv group's query
// heads before its k and v; llama.cpp wants all q, then all k, then all v. fromGgufRows undoes it.
TEST(GgufLayouts, FusedQkvRowsMoveAsConvertMovesThem) {
  const int64_t heads = 4, d = 2, in = 3;
  const at::Tensor bloom = at::arange(heads * 3 * d * in, at::kFloat).view({heads * 3 * d, in});
  const at::Tensor g = toGgufRows("bloom", "blk.0.attn_qkv.weight", bloom, heads, heads);
  // q of head 1 is HF rows [6, 8) (head 1's [q k v] starts at 6), GGUF rows [2, 4).
  EXPECT_TRUE(at::equal(g.narrow(0, 2, 2), bloom.narrow(0, 6, 2)));
  // v of head 0: HF rows [4, 6) -> GGUF rows [16, 18) (after 8 q and 8 k rows).
  EXPECT_TRUE(at::equal(g.narrow(0, 16, 2), bloom.narrow(0, 4, 2)));
  EXPECT_TRUE(at::equal(fromGgufRows("bloom", "blk.0.attn_qkv.weight", g, heads, heads), bloom));
  const at::Tensor bias = at::arange(heads * 3 * d, at::kFloat);
  EXPECT_TRUE(at::equal(fromGgufRows("gptneox", "blk.0.attn_qkv.bias",
                                     toGgufRows("gptneox", "blk.0.attn_qkv.bias", bias, heads, heads), heads, heads),
                        bias));
  // Falcon-40B style: 8 heads in 2 kv groups -> group rows [q q q q k v] x 2.
  const int64_t fh = 8, kv = 2;
  const at::Tensor falcon = at::arange((fh + 2 * kv) * d * in, at::kFloat).view({(fh + 2 * kv) * d, in});
  const at::Tensor fg = toGgufRows("falcon", "blk.0.attn_qkv.weight", falcon, fh, kv);
  EXPECT_TRUE(at::equal(fg.narrow(0, 8, 8), falcon.narrow(0, 12, 8))) << "group 1's queries follow group 0's";
  EXPECT_TRUE(at::equal(fg.narrow(0, 16, 2), falcon.narrow(0, 8, 2))) << "k of group 0";
  EXPECT_TRUE(at::equal(fg.narrow(0, 22, 2), falcon.narrow(0, 22, 2))) << "v of group 1 ends both";
  EXPECT_TRUE(at::equal(fromGgufRows("falcon", "blk.0.attn_qkv.weight", fg, fh, kv), falcon));
  const at::Tensor other = at::randn({6, 3});
  EXPECT_TRUE(at::equal(toGgufRows("gpt2", "blk.0.attn_qkv.weight", other, 1, 1), other)) << "GPT-2: already q|k|v";
}

}  // namespace
}  // namespace qs::io
