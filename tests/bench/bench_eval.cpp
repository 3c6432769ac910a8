// Evaluation throughput (tokens/s) under the GPTQ perplexity protocol, the number
// docs/BENCHMARKS.md records:
//   * stories260K (../shared, the real TinyStories LLaMA) on WikiText-2, seqlen 512
//   * a generated OPT-125M-shaped model (random weights, the real shape: 12 layers, hidden 768,
//     12 heads, FFN 3072, vocab 50272), seqlen 512, float32 and bfloat16
// Run: build/tests/bench/bench_eval --benchmark_counters_tabular=true
//      build/tests/bench/bench_eval --write-opt125m DIR   (folder for qscope eval / time -v)
// Peak RSS is reported as a counter (VmHWM of the process at the end of each benchmark).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>

#include "core/eval/datasets.h"
#include "core/eval/perplexity.h"
#include "core/eval/system_info.h"
#include "tests/support/tiny_models.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/model.h"

namespace {

std::string sharedData() {
  const char* env = std::getenv("QS_SHARED_DIR");
  return (env && *env ? std::string(env) : std::string("../shared")) + "/data";
}

// Writes an OPT-125M-shaped folder (N(0, 0.02) weights, fixed seed; tests/support/tiny_models.h)
// into dir, with GPT-2's vocab.json/merges.txt copied from ../shared when present (OPT uses
// GPT-2's BPE).
void writeOpt125m(const std::string& dir) {
  std::filesystem::create_directories(dir);
  qs::test::writeTinyOpt(dir, qs::test::TinyModelOptions::opt125mShape(12));
  for (const char* f : {"vocab.json", "merges.txt"}) {
    std::string src = sharedData() + "/tokenizers/" + f;
    if (std::filesystem::exists(src))
      std::filesystem::copy_file(src, dir + "/" + f, std::filesystem::copy_options::overwrite_existing);
  }
}

std::string syntheticOpt125m() {
  static std::string dir;
  if (!dir.empty()) return dir;
  dir = (std::filesystem::temp_directory_path() / ("qs-bench-opt125m-" + std::to_string(::getpid()))).string();
  writeOpt125m(dir);
  return dir;
}

void reportCommon(benchmark::State& state, const qs::eval::PerplexityResult& last, int64_t tokens) {
  state.SetItemsProcessed(tokens);
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.counters["ppl"] = last.perplexity;
  state.counters["peakRSS_MiB"] = qs::eval::peakRssBytes() / 1048576.0;
  state.counters["threads"] = at::get_num_threads();
}

void BM_EvalStories260K(benchmark::State& state) {
  std::string model = sharedData() + "/models/stories260K/stories260K.gguf";
  if (!std::filesystem::exists(model)) {
    state.SkipWithError(("stories260K not found at " + model + " (set QS_SHARED_DIR)").c_str());
    return;
  }
  auto text = qs::eval::loadDataset("wikitext2", sharedData());
  auto tokens = qs::io::loadTokenizer(model)->encode(text.text, true);
  auto m = qs::model::openModel(model);
  qs::eval::PerplexityResult r;
  int64_t evaluated = 0;
  for (auto _ : state) {
    r = qs::eval::evaluatePerplexity(*m, tokens, qs::eval::PerplexityOptions().setSeqlen(512));
    evaluated += r.tokensEvaluated;
  }
  reportCommon(state, r, evaluated);
}
BENCHMARK(BM_EvalStories260K)->Unit(benchmark::kSecond)->Iterations(1);

void BM_EvalOpt125mShape(benchmark::State& state) {
  auto dtype = state.range(0) == 0 ? at::kFloat : at::kBFloat16;
  state.SetLabel(state.range(0) == 0 ? "float32" : "bfloat16");
  qs::model::LoadOptions lo;
  lo.dtype = dtype;
  auto m = qs::model::openModel(syntheticOpt125m(), lo);
  at::manual_seed(1);
  const int windows = 4;
  auto ids = at::randint(0, 50257, {windows * 512}, at::kInt);
  std::vector<int32_t> tokens(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel());
  // Warm-up window: loads the lazily read weights and primes the allocator.
  qs::eval::evaluatePerplexity(*m, tokens, qs::eval::PerplexityOptions().setSeqlen(512).setLimitWindows(1));
  qs::eval::PerplexityResult r;
  int64_t evaluated = 0;
  for (auto _ : state) {
    r = qs::eval::evaluatePerplexity(*m, tokens, qs::eval::PerplexityOptions().setSeqlen(512));
    evaluated += r.tokensEvaluated;
  }
  reportCommon(state, r, evaluated);
}
BENCHMARK(BM_EvalOpt125mShape)->Arg(0)->Arg(1)->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace

int main(int argc, char** argv) {
  // bench_eval --write-opt125m DIR: only write the model folder (for `qscope eval` and
  // `/usr/bin/time -v` measurements in a separate process), then exit.
  if (argc == 3 && std::string(argv[1]) == "--write-opt125m") {
    writeOpt125m(argv[2]);
    std::printf("wrote %s\n", argv[2]);
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  auto s = qs::eval::systemInfo();
  benchmark::AddCustomContext("libtorch", s.torchVersion);
  benchmark::AddCustomContext("blas", s.blas);
  benchmark::AddCustomContext("torch_threads", std::to_string(s.intraOpThreads));
  benchmark::RunSpecifiedBenchmarks();
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), ec))
    if (e.path().filename().string().rfind("qs-bench-opt125m-" + std::to_string(::getpid()), 0) == 0)
      std::filesystem::remove_all(e.path(), ec);
  benchmark::Shutdown();
  return 0;
}
