// `qscope export --format gguf` checked by llama.cpp itself (tests/support/llamacpp.h) on the real
// stories260K model (HF folder in ../shared): a project run (RTN w4 g32) exported as F32, F16,
// Q8_0 and Q4_0 GGUF files.
// - llama-quantize (llama_model_quantize, no importance matrix) of QuantScope's F32 file gives
//   exactly QuantScope's Q8_0/Q4_0 files: the same tensor types (output layer, F16 fallback of
//   the 172-column ffn_down) and byte-identical blocks.
// - llama.cpp loads every file and tokenizes text as QuantScope does; its logits (CPU backend,
//   F32 KV cache) agree with QuantScope's evaluation of the same file, to the tolerances below.
// - The F32 file holds exactly the run's weights: QuantScope evaluates it to the run's perplexity.
// - A GPTQ run on Q4_0's grid (quantize --target gguf:Q4_0) is written exactly: QuantScope
//   evaluates the file to the run's perplexity, llama.cpp agrees within its activation rounding.
// - K-quants and llama-quantize's mixes (Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K) on a LLaMA written by the test
//   with widths of 256 (8 layers, so the _M mixes' layer pattern shows): byte-identical to
//   llama_model_quantize's files, and llama.cpp's logits agree with QuantScope's.
// Skips without ../shared data or llama.cpp (tests/llamacpp/install.sh).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "core/io/gguf.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/workflow/export_job.h"
#include "tests/support/cli_runner.h"
#include "tests/support/gguf_checks.h"
#include "tests/support/llamacpp.h"
#include "tests/support/tensor_checks.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace qs {
namespace {

using test::Agreement;
using test::compareWithLlamaCpp;
using test::expectSameTensors;
using test::llamaLogits;
using test::perplexity;
using test::quote;

struct Exported {
  std::string root, proj;
  bool ok = false;
};

// One project run and its exports for the whole suite.
const Exported& exported() {
  static Exported e = [] {
    Exported x;
    x.root = test::tempDir("gguf-e2e");
    x.proj = x.root + "/p";
    const std::string data = " --data-dir " + quote(test::sharedDataDir());
    auto init = test::runQscope("project init " + quote(x.proj) + " --model " +
                                quote(test::sharedPath("models/stories260K/hf")));
    EXPECT_EQ(init.code, 0) << init.err;
    auto q = test::runQscope("quantize " + quote(x.proj) + " --method rtn --wbits 4 --groupsize 32 --nsamples 4 "
                             "--seqlen 64 --eval none --no-progress" + data);
    EXPECT_EQ(q.code, 0) << q.err;
    x.ok = init.code == 0 && q.code == 0;
    for (const char* t : {"F32", "F16", "Q8_0", "Q4_0"}) {
      auto r = test::runQscope("export 1 -p " + quote(x.proj) + " --format gguf --gguf-type " + t + " -o " +
                               quote(x.root + "/qs-" + t + ".gguf") + " --no-progress");
      EXPECT_EQ(r.code, 0) << r.err;
      x.ok = x.ok && r.code == 0;
    }
    return x;
  }();
  return e;
}

// [4, 64] windows of WikiText-2 test as QuantScope tokenizes it.
at::Tensor evalWindows(const io::Tokenizer& tok) {
  const std::string text = fs::readText(test::sharedPath("text/wikitext-2-raw-test.txt")).substr(0, 20000);
  const std::vector<int32_t> ids = tok.encode(text);
  EXPECT_GE(ids.size(), 256u);
  at::Tensor t = at::empty({4, 64}, at::kLong);
  for (int64_t i = 0; i < 256; ++i) t.view(-1)[i] = ids[static_cast<size_t>(i)];
  return t;
}

TEST(GgufLlamaCpp, LlamaQuantizeOfTheF32FileGivesQuantScopesFiles) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  QS_REQUIRE_LLAMACPP();
  const Exported& e = exported();
  ASSERT_TRUE(e.ok);
  for (const auto& [type, ftype] : std::vector<std::pair<std::string, int>>{{"Q8_0", 7}, {"Q4_0", 2}}) {
    const std::string theirsPath = e.root + "/llama-" + type + ".gguf";
    std::string err;
    ASSERT_EQ(test::runLlamaTool("llama_logits", "quantize " + quote(e.root + "/qs-F32.gguf") + " " + quote(theirsPath) +
                                                     " " + std::to_string(ftype), &err),
              0) << err;
    expectSameTensors(e.root + "/qs-" + type + ".gguf", theirsPath, type);
    EXPECT_EQ(io::GgufFile::open(theirsPath)->find("blk.0.ffn_down.weight")->ggmlType, 1u) << "172 columns: F16 fallback";
  }
}

// A LLaMA with widths of 256 (K-quant super-blocks fit every row): hidden 256, 4/2 heads, FFN 512,
// untied output, N(0, 0.05) weights, stories260K's 512-piece vocabulary; root/model.
std::string wideLlama(const std::string& root, int64_t layers, uint64_t seed) {
  const std::string model = root + "/model";
  std::filesystem::create_directories(model);
  test::writeTinyLlama(model, test::TinyModelOptions().setVocab(512).setHidden(256).setHeads(4, 2).setFfn(512)
                                  .setLayers(layers).setSeed(seed).setTied(false).setWeightStd(0.05));
  std::filesystem::copy_file(test::sharedPath("models/stories260K/hf/tok512_vocab.json"), model + "/tok512_vocab.json");
  return model;
}

TEST(GgufLlamaCpp, KQuantMixesEqualLlamaQuantizesOnWidthsOf256) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  QS_REQUIRE_LLAMACPP();
  const std::string root = test::tempDir("gguf-k");
  const std::string model = wideLlama(root, 8, 7);
  const std::string proj = root + "/p";
  ASSERT_EQ(test::runQscope("project init " + quote(proj) + " --model " + quote(model)).code, 0);
  auto q = test::runQscope("quantize " + quote(proj) + " --method rtn --wbits 8 --groupsize 128 --nsamples 2 --seqlen 64 "
                           "--eval none --no-progress --data-dir " + quote(test::sharedDataDir()));
  ASSERT_EQ(q.code, 0) << q.err;
  auto f32 = test::runQscope("export 1 -p " + quote(proj) + " --format gguf --gguf-type F32 -o " + quote(root + "/f32.gguf"));
  ASSERT_EQ(f32.code, 0) << f32.err;
  const auto hfTok = io::loadTokenizer(model);
  const at::Tensor ids = evalWindows(*hfTok);
  const Agreement f = compareWithLlamaCpp(root + "/f32.gguf", ids);  // the control: float32 throughout
  std::printf("F32: perplexity QuantScope %.6f llama.cpp %.6f, max |logit diff| %.3g\n", f.pOurs, f.pTheirs, f.maxAbs);
  EXPECT_NEAR(f.pTheirs, f.pOurs, 1e-5 * f.pOurs);
  for (const auto& [type, ftype] : std::vector<std::pair<std::string, int>>{
           {"Q4_K_M", 15}, {"Q5_K_M", 17}, {"Q4_K_S", 14}, {"Q5_K_S", 16}, {"Q6_K", 18}, {"Q3_K_L", 13},
           {"Q3_K_M", 12}, {"Q3_K_S", 11}, {"Q2_K", 10}}) {
    const std::string ours = root + "/qs-" + type + ".gguf", theirs = root + "/llama-" + type + ".gguf";
    auto r = test::runQscope("export 1 -p " + quote(proj) + " --format gguf --gguf-type " + type + " -o " + quote(ours));
    ASSERT_EQ(r.code, 0) << r.err;
    std::string err;
    ASSERT_EQ(test::runLlamaTool("llama_logits", "quantize " + quote(root + "/f32.gguf") + " " + quote(theirs) + " " +
                                                     std::to_string(ftype), &err),
              0) << err;
    const std::map<std::string, int> types = expectSameTensors(ours, theirs, type);
    std::string mix;
    for (const auto& [n, c] : types) mix += n + " " + std::to_string(c) + " ";
    const Agreement g = compareWithLlamaCpp(ours, ids);
    std::printf("%s (%s): perplexity QuantScope %.6f llama.cpp %.6f, max |logit diff| %.3g, top-1 %.4f\n", type.c_str(),
                mix.c_str(), g.pOurs, g.pTheirs, g.maxAbs, g.top1);
    // llama.cpp multiplies K-quant weights with activations rounded to Q8_K blocks (the F32 control
    // above agrees to 5e-6). The random model's next-token logits lie close together (perplexity
    // about 600 over 512 tokens: near uniform), so top-1 flips on small differences: 0.9 is its bound.
    EXPECT_LT(g.maxAbs, 0.5) << type;
    EXPECT_NEAR(g.pTheirs, g.pOurs, 1e-2 * g.pOurs) << type;
    EXPECT_GE(g.top1, 0.9) << type;
  }
}

// `qscope quantize --target gguf:Q4_0` (GPTQ choosing the codes on Q4_0's grid: blocks of 32,
// fp16 scale d = the largest-magnitude value / -8, zero 8): the GGUF export writes those codes and
// scales as they are, so QuantScope evaluates the file to exactly the run's perplexity (no second
// rounding); the matrices the run did not quantize stay in their float type; llama.cpp loads it.
TEST(GgufLlamaCpp, AGptqRunOnTheQ4_0GridIsWrittenExactly) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  QS_REQUIRE_LLAMACPP();
  const std::string root = test::tempDir("gguf-target");
  const std::string proj = root + "/p";
  const std::string data = " --data-dir " + quote(test::sharedDataDir());
  ASSERT_EQ(test::runQscope("project init " + quote(proj) + " --model " + quote(test::sharedPath("models/stories260K/hf"))).code, 0);
  auto q = test::runQscope("quantize " + quote(proj) + " --method gptq --target gguf:Q4_0 --nsamples 8 --seqlen 128 "
                           "--eval none --no-progress" + data);
  ASSERT_EQ(q.code, 0) << q.err;
  auto bad = test::runQscope("quantize " + quote(proj) + " --method gptq --target gguf:IQ3_S --eval none" + data);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--target"), std::string::npos) << bad.err;
  const std::string file = root + "/t.gguf";
  auto x = test::runQscope("export 1 -p " + quote(proj) + " --format gguf -o " + quote(file) + " --no-progress");
  ASSERT_EQ(x.code, 0) << x.err;
  EXPECT_NE(x.out.find("written from the run's own Q4_0 codes"), std::string::npos) << x.out;
  EXPECT_NE(x.out.find("KL mean 0 / max 0"), std::string::npos) << "the load-back check: exact\n" << x.out;
  const auto f = io::GgufFile::open(file);
  EXPECT_EQ(f->find("blk.0.attn_q.weight")->ggmlType, 2u) << "Q4_0";
  EXPECT_EQ(f->find("blk.0.ffn_down.weight")->ggmlType, 0u) << "172 columns: F32, exact";
  EXPECT_EQ(f->find("token_embd.weight")->ggmlType, 0u) << "not quantized by the run: its float32";

  const std::string opts = " --dataset wikitext2 --seqlen 64 --limit-windows 8 --no-progress --json" + data;
  auto run = test::runQscope("eval 1 -p " + quote(proj) + opts);
  auto fromFile = test::runQscope("eval " + quote(file) + opts);
  ASSERT_EQ(run.code, 0) << run.err;
  ASSERT_EQ(fromFile.code, 0) << fromFile.err;
  EXPECT_EQ(nlohmann::json::parse(fromFile.out)["perplexity"].get<double>(),
            nlohmann::json::parse(run.out)["perplexity"].get<double>())
      << "the file holds exactly the weights the run evaluated";

  const Agreement g = compareWithLlamaCpp(file, evalWindows(*io::loadTokenizer(file)));
  std::printf("gptq on Q4_0's grid: perplexity QuantScope %.6f llama.cpp %.6f, max |logit diff| %.3g, top-1 %.4f\n",
              g.pOurs, g.pTheirs, g.maxAbs, g.top1);
  EXPECT_NEAR(g.pTheirs, g.pOurs, 1e-2 * g.pOurs) << "llama.cpp rounds activations to Q8_0 blocks";
}

// `--target gguf:Q4_K|Q5_K|Q6_K` (observer ggml_k): GPTQ, QuantEase and RTN choose codes on the
// sub-block scales and minimums llama.cpp's quantizer gives each super-block (static groups); the
// export writes those codes, scales and minimums as Q4_K/Q5_K/Q6_K blocks. QuantScope's evaluation of the file
// equals the run's to float rounding (llama.cpp computes scale * q - minimum where the run's grid
// computes (q - minimum / scale) * scale), llama.cpp runs it, and the GPTQ layout, which stores
// integer zero points, is refused. LLaMA with widths of 256 (K super-blocks).
TEST(GgufLlamaCpp, MethodsOnKQuantGridsAreWrittenAsTheyChose) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  QS_REQUIRE_LLAMACPP();
  const std::string root = test::tempDir("gguf-ktarget");
  const std::string model = wideLlama(root, 2, 9);
  const std::string proj = root + "/p";
  const std::string data = " --data-dir " + quote(test::sharedDataDir());
  ASSERT_EQ(test::runQscope("project init " + quote(proj) + " --model " + quote(model)).code, 0);
  const at::Tensor ids = evalWindows(*io::loadTokenizer(model));
  for (const auto& [method, type] : std::vector<std::pair<std::string, std::string>>{
           {"gptq", "Q4_K"}, {"quantease --num-iter 3", "Q5_K"}, {"rtn", "Q6_K"}, {"rtn", "Q3_K"},
           {"quantease --num-iter 3", "Q2_K"}, {"gptq", "Q3_K"}}) {
    SCOPED_TRACE(method);
    auto q = test::runQscope("quantize " + quote(proj) + " --method " + method + " --target gguf:" + type +
                             " --nsamples 8 --seqlen 64 --eval none --no-progress" + data);
    ASSERT_EQ(q.code, 0) << q.err;
    const size_t at = (q.out + q.err).find("stored as run ");
    ASSERT_NE(at, std::string::npos) << q.out << q.err;
    const int run = std::atoi((q.out + q.err).c_str() + at + 14);
    const std::string file = root + "/" + method.substr(0, 4) + "-" + type + ".gguf";
    auto x = test::runQscope("export " + std::to_string(run) + " -p " + quote(proj) + " --format gguf -o " + quote(file) +
                             " --no-progress");
    ASSERT_EQ(x.code, 0) << x.err;
    EXPECT_NE(x.out.find("14 quantized layers written from the run's own " + type + " codes"), std::string::npos)
        << x.out;
    const auto f = io::GgufFile::open(file);
    EXPECT_EQ(io::ggmlTypeName(f->find("blk.1.ffn_down.weight")->ggmlType), type);
    EXPECT_EQ(io::ggmlTypeName(f->find("blk.0.attn_k.weight")->ggmlType), type);
    const std::string opts = " --dataset wikitext2 --seqlen 64 --limit-windows 8 --no-progress --json" + data;
    auto ran = test::runQscope("eval " + std::to_string(run) + " -p " + quote(proj) + opts);
    auto fromFile = test::runQscope("eval " + quote(file) + opts);
    ASSERT_EQ(ran.code, 0) << ran.err;
    ASSERT_EQ(fromFile.code, 0) << fromFile.err;
    const double pRun = nlohmann::json::parse(ran.out)["perplexity"].get<double>();
    EXPECT_NEAR(nlohmann::json::parse(fromFile.out)["perplexity"].get<double>(), pRun, 1e-6 * pRun)
        << "the file holds the run's codes, scales and minimums";
    const Agreement g = compareWithLlamaCpp(file, ids);
    std::printf("%s on %s's grid: perplexity QuantScope %.6f llama.cpp %.6f, max |logit diff| %.3g, top-1 %.4f\n",
                method.c_str(), type.c_str(), g.pOurs, g.pTheirs, g.maxAbs, g.top1);
    EXPECT_NEAR(g.pTheirs, g.pOurs, 1e-2 * g.pOurs) << "llama.cpp rounds activations to Q8_K blocks";
  }
  auto gptq = test::runQscope("export 1 -p " + quote(proj) + " --format gptq -o " + quote(root + "/g"));
  EXPECT_EQ(gptq.code, 1);
  EXPECT_NE(gptq.err.find("not integers"), std::string::npos) << gptq.err;

  // Q6_K's and Q3_K's zero points are integers (32, 4): round to nearest on their grids is ggml's
  // own rounding, so the RTN runs' blocks are llama-quantize's Q6_K and Q3_K_S (Q3_K throughout
  // but the output layer) of the FP model, byte for byte.
  auto fp = test::runQscope("quantize " + quote(proj) + " --method rtn --wbits 16 --nsamples 2 --seqlen 64 --eval none "
                            "--no-progress" + data);
  ASSERT_EQ(fp.code, 0) << fp.err;
  const size_t at = (fp.out + fp.err).find("stored as run ");
  ASSERT_NE(at, std::string::npos);
  const std::string fpRun = std::to_string(std::atoi((fp.out + fp.err).c_str() + at + 14));
  ASSERT_EQ(test::runQscope("export " + fpRun + " -p " + quote(proj) + " --format gguf --gguf-type F32 -o " +
                            quote(root + "/fp.gguf") + " --no-parity").code, 0);
  for (const auto& [type, ftype, ggmlType] : std::vector<std::tuple<std::string, int, uint32_t>>{
           {"Q6_K", 18, 14u}, {"Q3_K", 11, 11u}}) {  // ggml type ids
    SCOPED_TRACE(type);
    std::string err;
    const std::string theirsPath = root + "/llama-" + type + ".gguf";
    ASSERT_EQ(test::runLlamaTool("llama_logits", "quantize " + quote(root + "/fp.gguf") + " " + quote(theirsPath) + " " +
                                                     std::to_string(ftype), &err), 0) << err;
    const auto ours = io::GgufFile::open(root + "/rtn-" + type + ".gguf"), theirs = io::GgufFile::open(theirsPath);
    int compared = 0;
    for (const auto& t : theirs->tensors()) {
      if (t.name.rfind("blk.", 0) != 0 || t.ggmlType != ggmlType) continue;
      const io::GgufTensorInfo* o = ours->find(t.name);
      ASSERT_NE(o, nullptr) << t.name;
      ASSERT_EQ(o->nbytes, t.nbytes) << t.name;
      EXPECT_EQ(std::memcmp(ours->data(*o), theirs->data(t), t.nbytes), 0) << t.name;
      ++compared;
    }
    EXPECT_EQ(compared, 14);
  }
}

// A mix target: `--target gguf:Q4_K_M` puts each layer on the grid of the type llama-quantize's
// Q4_K_M gives its matrix (attn_v and ffn_down of the last of 2 layers Q6_K, the rest Q4_K); the
// export writes every one of them from the run's codes, and its tensor types are those of
// llama-quantize's own Q4_K_M of the FP model, tensor by tensor (the reference).
TEST(GgufLlamaCpp, AMixTargetRunHasLlamaQuantizesTypesAndIsWrittenExactly) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  QS_REQUIRE_LLAMACPP();
  const std::string root = test::tempDir("gguf-mixtarget");
  const std::string model = wideLlama(root, 2, 11);
  const std::string proj = root + "/p";
  const std::string data = " --data-dir " + quote(test::sharedDataDir());
  ASSERT_EQ(test::runQscope("project init " + quote(proj) + " --model " + quote(model)).code, 0);
  auto fp = test::runQscope("quantize " + quote(proj) + " --method rtn --wbits 16 --nsamples 2 --seqlen 64 --eval none "
                            "--no-progress" + data);
  ASSERT_EQ(fp.code, 0) << fp.err;
  ASSERT_EQ(test::runQscope("export 1 -p " + quote(proj) + " --format gguf --gguf-type F32 -o " + quote(root + "/fp.gguf") +
                            " --no-parity").code, 0);
  std::string err;
  ASSERT_EQ(test::runLlamaTool("llama_logits", "quantize " + quote(root + "/fp.gguf") + " " + quote(root + "/llama.gguf") +
                                                   " 15", &err), 0) << err;  // LLAMA_FTYPE_MOSTLY_Q4_K_M

  auto q = test::runQscope("quantize " + quote(proj) + " --method gptq --target gguf:Q4_K_M --nsamples 8 --seqlen 64 "
                           "--eval none --no-progress" + data);
  ASSERT_EQ(q.code, 0) << q.err;
  const std::string file = root + "/mix.gguf";
  auto x = test::runQscope("export 2 -p " + quote(proj) + " --format gguf -o " + quote(file) + " --no-progress");
  ASSERT_EQ(x.code, 0) << x.err;
  EXPECT_NE(x.out.find("14 quantized layers written from the run's own Q4_K_M codes"), std::string::npos) << x.out;
  const auto ours = io::GgufFile::open(file), theirs = io::GgufFile::open(root + "/llama.gguf");
  int q6 = 0, compared = 0;
  for (const auto& t : theirs->tensors()) {
    if (t.name.rfind("blk.", 0) != 0 || t.shape.size() < 2) continue;
    const io::GgufTensorInfo* o = ours->find(t.name);
    ASSERT_NE(o, nullptr) << t.name;
    EXPECT_EQ(io::ggmlTypeName(o->ggmlType), io::ggmlTypeName(t.ggmlType)) << t.name;
    q6 += io::ggmlTypeName(o->ggmlType) == "Q6_K";
    ++compared;
  }
  EXPECT_EQ(compared, 14);
  EXPECT_EQ(q6, 2) << "attn_v and ffn_down of layer 1";
  const std::string opts = " --dataset wikitext2 --seqlen 64 --limit-windows 8 --no-progress --json" + data;
  auto ran = test::runQscope("eval 2 -p " + quote(proj) + opts);
  auto fromFile = test::runQscope("eval " + quote(file) + opts);
  ASSERT_EQ(ran.code, 0) << ran.err;
  ASSERT_EQ(fromFile.code, 0) << fromFile.err;
  const double pRun = nlohmann::json::parse(ran.out)["perplexity"].get<double>();
  EXPECT_NEAR(nlohmann::json::parse(fromFile.out)["perplexity"].get<double>(), pRun, 1e-6 * pRun)
      << "the file holds the run's codes on both grids";
  const Agreement g = compareWithLlamaCpp(file, evalWindows(*io::loadTokenizer(model)));
  std::printf("gptq on Q4_K_M's grids: perplexity QuantScope %.6f llama.cpp %.6f, top-1 %.4f\n", g.pOurs, g.pTheirs,
              g.top1);
  EXPECT_NEAR(g.pTheirs, g.pOurs, 1e-2 * g.pOurs) << "llama.cpp rounds activations to Q8_K blocks";
  // A mix the config cannot have is refused naming the key.
  auto bad = test::runQscope("quantize " + quote(proj) + " --method gptq --target gguf:Q4_K_X --eval none" + data);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("K mix"), std::string::npos) << bad.err;
}

TEST(GgufLlamaCpp, LlamaCppLoadsEachFileAndAgreesWithQuantScope) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  QS_REQUIRE_LLAMACPP();
  const Exported& e = exported();
  ASSERT_TRUE(e.ok);
  // Tokenization: llama.cpp's of the GGUF vocabulary = QuantScope's of the HF folder's.
  const auto hfTok = io::loadTokenizer(test::sharedPath("models/stories260K/hf"));
  const std::string text = fs::readText(test::sharedPath("text/wikitext-2-raw-test.txt")).substr(0, 3000);
  const std::string dir = test::tempDir("gguf-tok");
  fs::writeAtomic(dir + "/t.txt", text);
  std::string err;
  ASSERT_EQ(test::runLlamaTool("llama_logits", "tokenize " + quote(e.root + "/qs-F32.gguf") + " " + quote(dir + "/t.txt") +
                                                   " " + quote(dir + "/t.i32"), &err),
            0) << err;
  const std::string b = fs::readText(dir + "/t.i32");
  std::vector<int32_t> llamaIds(b.size() / 4);
  std::memcpy(llamaIds.data(), b.data(), b.size());
  EXPECT_EQ(llamaIds, hfTok->encode(text));

  const at::Tensor ids = evalWindows(*hfTok);
  for (const char* type : {"F32", "F16", "Q8_0", "Q4_0"}) {
    const std::string file = e.root + "/qs-" + type + ".gguf";
    auto m = model::openModel(file);
    const at::Tensor ours = test::inferenceLogits(*m, ids);
    const at::Tensor theirs = llamaLogits(file, ids, ours.size(-1));
    const double pOurs = perplexity(ours, ids), pTheirs = perplexity(theirs, ids);
    const double maxAbs = (ours - theirs).abs().max().item<double>();
    const double top1 = (ours.argmax(-1) == theirs.argmax(-1)).to(at::kDouble).mean().item<double>();
    std::printf("%s: perplexity QuantScope %.6f llama.cpp %.6f, max |logit diff| %.3g, top-1 agreement %.4f\n", type,
                pOurs, pTheirs, maxAbs, top1);
    const std::string t = type;
    if (t == "F32") {
      // Both in float32 (weights, activations, KV cache): only summation order differs.
      EXPECT_LT(maxAbs, 1e-3);
      EXPECT_NEAR(pTheirs, pOurs, 1e-5 * pOurs) << "4 significant digits and more";
      EXPECT_EQ(top1, 1.0);
    } else {
      // llama.cpp's CPU backend multiplies F16 weights with activations rounded to F16, and block
      // weights (Q8_0, Q4_0) with activations rounded to Q8_0 blocks (ggml's vec_dot_type);
      // QuantScope keeps activations in float32. The weights are the same (bytes above, and
      // GgmlReference: QuantScope dequantizes them bit-identically to ggml).
      EXPECT_LT(maxAbs, t == "F16" ? 0.05 : 1.0) << t;
      EXPECT_NEAR(pTheirs, pOurs, (t == "F16" ? 1e-3 : 1e-2) * pOurs) << t;
      EXPECT_GE(top1, t == "F16" ? 0.99 : 0.95) << t;
    }
  }
}

// The Export dialog's plan (workflow::planExportJob) names the file and its exact size before
// anything is written, with the type notes; the run offers gguf (an HF LLaMA source, no shift).
TEST(GgufLlamaCpp, ThePlanIsTheWrittenFile) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  const Exported& e = exported();
  ASSERT_TRUE(e.ok);
  const auto runs = workflow::exportableRuns(e.proj);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_NE(std::find(runs[0].formats.begin(), runs[0].formats.end(), "gguf"), runs[0].formats.end());
  workflow::ExportJobOptions o;
  o.projectDir = e.proj;
  o.runId = 1;
  o.format = "gguf";
  o.ggufType = "Q4_0";
  o.outDir = e.root + "/planned.gguf";
  const auto plan = workflow::planExportJob(o);
  EXPECT_FALSE(fs::exists(o.outDir));
  ASSERT_EQ(plan.files.size(), 1u);
  EXPECT_EQ(plan.files[0].name, "planned.gguf");
  bool fallbackNoted = false;
  for (const auto& n : plan.notes) fallbackNoted = fallbackNoted || n.find("blk.0.ffn_down.weight") != std::string::npos;
  EXPECT_TRUE(fallbackNoted) << "the plan shows the F16 fallback";
  const auto done = workflow::runExportJob(o, jobs::Progress::none());
  EXPECT_EQ(plan.files[0].bytes, static_cast<int64_t>(std::filesystem::file_size(o.outDir)));
  EXPECT_EQ(plan.tensorBytes, done.tensorBytes);
  EXPECT_TRUE(workflow::planExportJob(o).dirExists);
  EXPECT_THROW(workflow::runExportJob(o, jobs::Progress::none()), Error) << "exists, no force";
}

TEST(GgufLlamaCpp, TheF32FileHoldsExactlyTheRunsWeights) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  const Exported& e = exported();
  ASSERT_TRUE(e.ok);
  const std::string opts = " --dataset wikitext2 --seqlen 64 --limit-windows 8 --no-progress --json --data-dir " +
                           quote(test::sharedDataDir());
  auto run = test::runQscope("eval 1 -p " + quote(e.proj) + opts);
  ASSERT_EQ(run.code, 0) << run.err;
  auto file = test::runQscope("eval " + quote(e.root + "/qs-F32.gguf") + opts);
  ASSERT_EQ(file.code, 0) << file.err;
  const double a = nlohmann::json::parse(run.out)["perplexity"].get<double>();
  const double b = nlohmann::json::parse(file.out)["perplexity"].get<double>();
  EXPECT_NEAR(b, a, 1e-9 * a) << "the GGUF F32 export reloads to the run's quantized model";
}

}  // namespace
}  // namespace qs
