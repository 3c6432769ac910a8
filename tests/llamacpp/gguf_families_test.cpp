// `qscope export --format gguf` for the families besides LLaMA — GPT-2, BLOOM, Falcon (7B and 40B
// layouts) and GPT-NeoX — checked by llama.cpp itself (tests/support/llamacpp.h):
// - The golden checkpoints of ../shared/data/golden (random weights; reference logits computed by
//   Hugging Face transformers 4.36.2's own modeling code): the F32 GGUF of each, run by llama.cpp,
//   gives the reference logits (to llama.cpp's fp16 GELU table), and QuantScope reading the file
//   back gives them to float32 rounding. So the tensor names, the fused q|k|v row orders, GPT-2's
//   transposed Conv1D matrices and the hyper-parameters are what llama.cpp's graphs expect.
// - The same families at widths of 256 (so K-quants apply): every --gguf-type, including the
//   _S/_M/_L mixes (with Falcon's own rules and attn_qkv counted as attn_v), is tensor for tensor
//   and byte for byte the file llama_model_quantize makes of QuantScope's F32 export.
// - A GPT-2 byte-level BPE vocabulary (the real GPT-2 tokenizer from ../shared/data/tokenizers):
//   llama.cpp tokenizes text from the GGUF file as QuantScope does from tokenizer.json, and
//   QuantScope reads the file's "gpt2" vocabulary back to the same tokenizer.
// - OPT (no llama.cpp architecture) and a Falcon run with OS+ shifting (biases llama.cpp's Falcon
//   has no place for) are refused before anything is written.
// Skips without ../shared data or llama.cpp (tests/llamacpp/install.sh).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/io/gguf.h"
#include "core/io/safetensors.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/io/weight_source.h"
#include "core/model/model.h"
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

using test::quote;

const std::vector<std::string>& goldenFamilies() {
  static const std::vector<std::string> f = {"gpt2", "bloom", "bloom_6heads", "falcon", "falcon_new_arch", "gpt_neox"};
  return f;
}

nlohmann::json readJson(const std::string& path) { return nlohmann::json::parse(fs::readText(path)); }

// Whether the Export dialog (workflow::exportableRuns) offers GGUF for the project's run.
bool offersGguf(const std::string& proj) {
  const auto runs = workflow::exportableRuns(proj);
  return !runs.empty() && std::find(runs[0].formats.begin(), runs[0].formats.end(), "gguf") != runs[0].formats.end();
}

// A project of `model` (a folder) with one run: `quantize` arguments, eval off.
std::string projectWithRun(const std::string& root, const std::string& model, const std::string& quantize) {
  const std::string proj = root + "/p";
  auto init = test::runQscope("project init " + quote(proj) + " --model " + quote(model));
  EXPECT_EQ(init.code, 0) << init.err;
  auto q = test::runQscope("quantize " + quote(proj) + " " + quantize + " --nsamples 2 --seqlen 32 --eval none "
                           "--no-progress --data-dir " + quote(test::sharedDataDir()));
  EXPECT_EQ(q.code, 0) << q.err;
  return proj;
}

std::string exportGguf(const std::string& proj, const std::string& type, const std::string& file) {
  auto r = test::runQscope("export 1 -p " + quote(proj) + " --format gguf --gguf-type " + type + " -o " + quote(file) +
                           " --no-progress");
  EXPECT_EQ(r.code, 0) << type << ": " << r.err;
  return r.out;
}

// The golden checkpoint of `family` with a byte-level tokenizer beside it (256 byte tokens = its vocab).
std::string goldenFolder(const std::string& family, const std::string& root) {
  const std::string dir = root + "/model";
  std::filesystem::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::copy_file(test::sharedPath("golden/" + family + "/" + f), dir + "/" + f);
  test::writeByteTokenizer(dir);
  return dir;
}

// The golden checkpoint's layout at 4x its width (hidden 64 -> 256, the same heads, so head dims
// and FFN grow 4x too), `vocab` tokens, seeded random weights: N(0, 0.05) matrices, gains near 1,
// biases N(0, 0.1).
std::string widenedFolder(const std::string& family, const std::string& dir, int64_t vocab) {
  std::filesystem::create_directories(dir);
  const std::string golden = test::sharedPath("golden/" + family);
  auto src = io::openWeights(golden);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(11);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& m : src->tensors()) {
    const std::string& n = m.name;
    const bool embedding = n.find("wte.") != std::string::npos || n.find("word_embeddings.weight") != std::string::npos ||
                           n.find("embed_in.") != std::string::npos || n.find("embed_out.") != std::string::npos ||
                           n.find("lm_head.") != std::string::npos;
    const bool positions = n.find("wpe.") != std::string::npos;
    std::vector<int64_t> shape = m.shape;
    for (size_t d = 0; d < shape.size(); ++d)
      shape[d] = d == 0 && embedding ? vocab : d == 0 && positions ? shape[d] : 4 * shape[d];
    at::Tensor t;
    if (shape.size() >= 2) t = at::normal(0.0, 0.05, shape, gen);
    else if (n.find("bias") != std::string::npos) t = at::normal(0.0, 0.1, shape, gen);
    else t = 1.0 + 0.1 * at::randn(shape, gen);
    out.emplace_back(n, t);
  }
  io::writeSafetensors(dir + "/model.safetensors", out);
  nlohmann::json c = readJson(golden + "/config.json");
  for (const char* k : {"n_embd", "hidden_size", "intermediate_size"})
    if (c.contains(k) && c[k].is_number_integer()) c[k] = 4 * c[k].get<int64_t>();
  c["vocab_size"] = vocab;
  std::ofstream(dir + "/config.json") << c.dump(2);
  return dir;
}

// The golden reference's windows [2, 17] and its logits [2, 17, vocab] (Hugging Face's).
std::pair<at::Tensor, at::Tensor> goldenReference(const std::string& family) {
  const nlohmann::json r = readJson(test::sharedPath("golden/" + family + "/reference.json"));
  std::vector<int64_t> flat;
  for (const auto& row : r["input_ids"])
    for (const auto& id : row) flat.push_back(id.get<int64_t>());
  const auto shape = r["logits_shape"].get<std::vector<int64_t>>();
  const at::Tensor ids = at::tensor(flat, at::kLong).view({shape[0], shape[1]});
  const std::string bytes = fs::readText(test::sharedPath("golden/" + family + "/logits.bin"));
  at::Tensor logits = at::empty(shape, at::kFloat);
  EXPECT_EQ(bytes.size(), static_cast<size_t>(logits.numel() * 4));
  std::memcpy(logits.data_ptr<float>(), bytes.data(), std::min(bytes.size(), static_cast<size_t>(logits.numel() * 4)));
  return {ids, logits};
}

TEST(GgufFamilies, F32FilesRunInLlamaCppAsTransformersDoes) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  QS_REQUIRE_LLAMACPP();
  for (const std::string& family : goldenFamilies()) {
    SCOPED_TRACE(family);
    const std::string root = test::tempDir("gguf-fam-" + family);
    const std::string model = goldenFolder(family, root);
    const std::string proj = projectWithRun(root, model, "--method rtn --wbits 16");
    EXPECT_TRUE(offersGguf(proj));
    const std::string file = root + "/f32.gguf";
    const std::string out = exportGguf(proj, "F32", file);
    EXPECT_NE(out.find("KL mean 0 / max 0"), std::string::npos) << "QuantScope reads the file back exactly\n" << out;
    const auto [ids, reference] = goldenReference(family);

    // llama.cpp runs the file; its CPU GELU reads a table of fp16 values (ggml's GGML_GELU_FP16),
    // so activations after the MLP's GELU carry fp16 rounding (and, for Falcon and NeoX, the tanh
    // form where transformers uses erf): logits within 1e-2, every argmax the same.
    const at::Tensor theirs = test::llamaLogits(file, ids, reference.size(-1));
    const double llamaDiff = (theirs - reference).abs().max().item<double>();
    EXPECT_LT(llamaDiff, 1e-2);
    EXPECT_TRUE(at::equal(theirs.argmax(-1), reference.argmax(-1)));

    // QuantScope reads the GGUF file as the Hugging Face model it holds: float32 throughout.
    auto m = model::openModel(file);
    const at::Tensor ours = test::inferenceLogits(*m, ids);
    const double oursDiff = (ours - reference).abs().max().item<double>();
    EXPECT_LT(oursDiff, 1e-4);
    std::printf("%s: max |logit - transformers| llama.cpp %.3g, QuantScope reading the GGUF %.3g\n", family.c_str(),
                llamaDiff, oursDiff);

    // The "gpt2" vocabulary comes back as the tokenizer the folder has.
    const auto fromFile = io::loadTokenizer(file);
    EXPECT_NE(fromFile->kind().find("gpt2"), std::string::npos) << fromFile->kind();
    EXPECT_EQ(fromFile->encode("Hello, GGUF world\n"), io::loadTokenizer(model)->encode("Hello, GGUF world\n"));
  }
}

TEST(GgufFamilies, EveryTypeAndMixEqualsLlamaQuantizeOnWidthsOf256) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  QS_REQUIRE_LLAMACPP();
  const std::vector<std::pair<std::string, int>> types = {
      {"Q8_0", 7},   {"Q4_0", 2},   {"Q4_1", 3},   {"Q5_0", 8},   {"Q5_1", 9},   {"Q6_K", 18},  {"Q5_K_M", 17},
      {"Q5_K_S", 16}, {"Q4_K_M", 15}, {"Q4_K_S", 14}, {"Q3_K_L", 13}, {"Q3_K_M", 12}, {"Q3_K_S", 11}, {"Q2_K", 10}};
  for (const std::string family : {"gpt2", "bloom", "falcon", "falcon_new_arch", "gpt_neox"}) {
    SCOPED_TRACE(family);
    const std::string root = test::tempDir("gguf-wide-" + family);
    const std::string model = widenedFolder(family, root + "/model", 256);
    test::writeByteTokenizer(model);
    const std::string proj = projectWithRun(root, model, "--method rtn --wbits 8 --groupsize 128");
    const std::string f32 = root + "/f32.gguf";
    exportGguf(proj, "F32", f32);
    const at::Tensor ids = at::randint(0, 256, {4, 64}, at::make_generator<at::CPUGeneratorImpl>(5), at::kLong);
    const test::Agreement control = test::compareWithLlamaCpp(f32, ids);
    for (const auto& [type, ftype] : types) {
      const std::string ours = root + "/qs-" + type + ".gguf", theirs = root + "/llama-" + type + ".gguf";
      exportGguf(proj, type, ours);
      std::string err;
      ASSERT_EQ(test::runLlamaTool("llama_logits", "quantize " + quote(f32) + " " + quote(theirs) + " " +
                                                       std::to_string(ftype), &err),
                0) << err;
      const auto counts = test::expectSameTensors(ours, theirs, family + " " + type);
      if (type == "Q4_K_M" || type == "Q2_K") {
        std::string mix;
        for (const auto& [n, c] : counts) mix += n + " " + std::to_string(c) + " ";
        const test::Agreement g = test::compareWithLlamaCpp(ours, ids);
        std::printf("%s %s (%s): perplexity QuantScope %.4f llama.cpp %.4f (F32 %.4f / %.4f), top-1 %.3f\n",
                    family.c_str(), type.c_str(), mix.c_str(), g.pOurs, g.pTheirs, control.pOurs, control.pTheirs,
                    g.top1);
        // llama.cpp rounds activations to Q8_K blocks for K-quant matmuls, on top of its fp16 GELU.
        EXPECT_NEAR(g.pTheirs, g.pOurs, 2e-2 * g.pOurs) << type;
      }
    }
    const auto q4km = io::GgufFile::open(root + "/qs-Q4_K_M.gguf");
    const bool falcon = family.rfind("falcon", 0) == 0;
    const io::GgufTensorInfo* head = q4km->find("output.weight") ? q4km->find("output.weight")
                                                                 : q4km->find("token_embd.weight");  // tied
    ASSERT_NE(head, nullptr);
    EXPECT_EQ(head->ggmlType, falcon ? 8u : 14u) << "the output layer: Q8_0 for Falcon, Q6_K otherwise";
    if (family == "gpt_neox") EXPECT_NE(q4km->find("blk.0.attn_qkv.bias"), nullptr);
  }
}

TEST(GgufFamilies, Gpt2VocabularyTokenizesAsLlamaCppDoes) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  QS_REQUIRE_LLAMACPP();
  const std::string root = test::tempDir("gguf-gpt2-tok");
  const std::string model = widenedFolder("gpt2", root + "/model", 50257);
  std::filesystem::copy_file(test::sharedPath("tokenizers/gpt2_tokenizer.json"), model + "/tokenizer.json");
  const std::string proj = projectWithRun(root, model, "--method rtn --wbits 16");
  const std::string file = root + "/gpt2.gguf";
  const std::string out = exportGguf(proj, "F16", file);
  EXPECT_NE(out.find("pre-tokenizer gpt-2"), std::string::npos) << out;
  const auto f = io::GgufFile::open(file);
  EXPECT_EQ(f->metadata()["tokenizer.ggml.merges"].size(), 50000u);
  EXPECT_EQ(f->metadata()["tokenizer.ggml.token_type"][50256], 3) << "<|endoftext|> is a control token";

  const std::string text = fs::readText(test::sharedPath("text/wikitext-2-raw-test.txt")).substr(0, 6000);
  fs::writeAtomic(root + "/t.txt", text);
  std::string err;
  ASSERT_EQ(test::runLlamaTool("llama_logits", "tokenize " + quote(file) + " " + quote(root + "/t.txt") + " " +
                                                   quote(root + "/t.i32"), &err),
            0) << err;
  const std::string b = fs::readText(root + "/t.i32");
  std::vector<int32_t> llamaIds(b.size() / 4);
  std::memcpy(llamaIds.data(), b.data(), b.size());
  const std::vector<int32_t> hf = io::loadTokenizer(model)->encode(text);
  EXPECT_GT(hf.size(), 1000u);
  EXPECT_EQ(llamaIds, hf) << "llama.cpp's tokenization of the GGUF vocabulary = QuantScope's of tokenizer.json";
  EXPECT_EQ(io::loadTokenizer(file)->encode(text), hf) << "QuantScope reading the GGUF vocabulary";
}

TEST(GgufFamilies, WhatLlamaCppCannotRunIsRefusedBeforeWriting) {
  QS_REQUIRE_QSCOPE();
  QS_REQUIRE_SHARED();
  {
    const std::string root = test::tempDir("gguf-opt");
    const std::string proj = projectWithRun(root, goldenFolder("opt", root), "--method rtn --wbits 8");
    EXPECT_FALSE(offersGguf(proj));
    auto r = test::runQscope("export 1 -p " + quote(proj) + " --format gguf -o " + quote(root + "/o.gguf"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("llama.cpp has no OPT architecture"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(root + "/o.gguf"));
  }
  {
    const std::string root = test::tempDir("gguf-falcon-shift");
    const std::string proj = projectWithRun(root, goldenFolder("falcon", root), "--method rtn --wbits 8 --migrate osplus");
    EXPECT_FALSE(offersGguf(proj));
    auto r = test::runQscope("export 1 -p " + quote(proj) + " --format gguf -o " + quote(root + "/f.gguf"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("--no-shift"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(root + "/f.gguf"));
  }
}

}  // namespace
}  // namespace qs
