// Analysis overhead: analyzeModel (statistics at every Linear input and block output, weight
// statistics, top tokens) against a plain forward over the same samples, the ratio
// docs/BENCHMARKS.md records (target <= 1.3x).
//   *Forward       model.forward per batch (embed, blocks, head): what evaluation runs
//   *Layerwise     the same block-major traversal analyzeModel makes, without statistics
//   *Analyze       analyzeModel, weights on / off (arg 1 / 0); arg 2: on, plus the softmax input
// Models: stories260K (../shared, the real TinyStories LLaMA, hidden 64) and a generated
// OPT-125M-shaped model cut to 4 blocks (hidden 768, FFN 3072, random weights), where the
// matrix products dominate as in real models.
// Run: build/tests/bench/bench_analysis --threads 1 --benchmark_enable_random_interleaving=true
//      --benchmark_repetitions=7 (the command docs/BENCHMARKS.md records; --threads sets LibTorch's
//      intra-op threads, default all cores; random interleaving spreads the repetitions of the
//      plain and analysis passes over the run, so load on a shared machine hits both alike).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/analysis/analyze.h"
#include "core/analysis/channel_stats.h"
#include "tests/support/tiny_models.h"
#include "core/model/model.h"

namespace {

std::string sharedData() {
  const char* env = std::getenv("QS_SHARED_DIR");
  return (env && *env ? std::string(env) : std::string("../shared")) + "/data";
}

// OPT-125M shapes, 4 blocks, N(0, 0.02) weights (tests/support/tiny_models.h), written once per process.
std::string syntheticOpt() {
  static std::string dir;
  if (!dir.empty()) return dir;
  dir = (std::filesystem::temp_directory_path() / ("qs-bench-ana-opt-" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(dir);
  qs::test::writeTinyOpt(dir, qs::test::TinyModelOptions::opt125mShape(4));
  return dir;
}

struct Setup {
  std::unique_ptr<qs::model::Model> model;
  qs::analysis::CalibrationSet samples;
  int batch = 4;
};

// Random token windows (the statistics do not care where tokens come from; the cost does not either).
Setup makeSetup(const std::string& path, int64_t vocab, int n, int L) {
  Setup s;
  s.model = qs::model::openModel(path);
  std::mt19937_64 rng(0);
  s.samples.samples = n;
  s.samples.seqlen = L;
  for (int64_t i = 0; i < int64_t(n) * L; ++i) s.samples.ids.push_back(static_cast<int32_t>(rng() % vocab));
  return s;
}

Setup& stories() {
  static Setup s = makeSetup(sharedData() + "/models/stories260K/hf", 512, 32, 256);
  return s;
}
Setup& opt() {
  static Setup s = makeSetup(syntheticOpt(), 50272, 8, 256);
  return s;
}

at::Tensor idsOf(const Setup& s) {
  return at::from_blob(const_cast<int32_t*>(s.samples.ids.data()), {s.samples.samples, s.samples.seqlen}, at::kInt)
      .to(at::kLong);
}

void counters(benchmark::State& state, const Setup& s) {
  int64_t tokens = s.samples.samples * s.samples.seqlen;
  state.SetItemsProcessed(state.iterations() * tokens);
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(tokens) * state.iterations(),
                                               benchmark::Counter::kIsRate);
  state.counters["threads"] = at::get_num_threads();
}

void forward(benchmark::State& state, Setup& s) {
  c10::InferenceMode guard;
  at::Tensor ids = idsOf(s);
  for (auto _ : state)
    for (int64_t b = 0; b < s.samples.samples; b += s.batch)
      benchmark::DoNotOptimize(s.model->forward(ids.narrow(0, b, std::min<int64_t>(s.batch, s.samples.samples - b))));
  counters(state, s);
}

void layerwise(benchmark::State& state, Setup& s) {
  c10::InferenceMode guard;
  at::Tensor ids = idsOf(s);
  for (auto _ : state) {
    std::vector<qs::model::BatchState> st;
    std::vector<at::Tensor> h;
    for (int64_t b = 0; b < s.samples.samples; b += s.batch) {
      st.push_back(s.model->prepare(ids.narrow(0, b, std::min<int64_t>(s.batch, s.samples.samples - b)), {}));
      h.push_back(s.model->embed(st.back()));
    }
    for (int i = 0; i < s.model->numBlocks(); ++i) {
      for (size_t b = 0; b < h.size(); ++b) h[b] = s.model->runBlock(i, h[b], st[b]);
      s.model->release(i);
    }
    benchmark::DoNotOptimize(h.back());
  }
  counters(state, s);
}

void analyze(benchmark::State& state, Setup& s) {
  // Arg 0: no weight statistics; 1: with them (the default); 2: with them and --softmax-inputs.
  auto o = qs::analysis::AnalysisOptions().withBatchSize(s.batch).withWeights(state.range(0) != 0)
               .withSoftmaxInputs(state.range(0) == 2);
  for (auto _ : state) benchmark::DoNotOptimize(qs::analysis::analyzeModel(*s.model, s.samples, o));
  counters(state, s);
}

// One ChannelStats::update on a [2048 tokens, 3072 channels] batch (an fc2 input of 4 x 512
// tokens), next to the GEMM that consumes the same input (fc2: 3072 -> 768).
void BM_ChannelStatsUpdate(benchmark::State& state) {
  c10::InferenceMode guard;
  at::Tensor x = at::randn({4, 512, 3072});
  at::Tensor ids = at::randint(0, 50000, {4, 512}, at::kLong);
  for (auto _ : state) {
    qs::analysis::ChannelStats s;
    s.update(x, ids);
    benchmark::DoNotOptimize(s.m4());
  }
}
// Weight statistics of one OPT-125M-shaped block (q/k/v/o 768 x 768, fc1 3072 x 768, fc2
// 768 x 3072): per input column and per output row, what analyzeModel adds per block with weights
// on. Arg 1: weightStats (column_moments.h loops); arg 0: the two streaming ChannelStats updates
// it used before, for comparison.
void BM_WeightStatsOptBlock(benchmark::State& state) {
  c10::InferenceMode guard;
  at::manual_seed(0);
  std::vector<at::Tensor> ws;
  for (int i = 0; i < 4; ++i) ws.push_back(at::randn({768, 768}) * 0.02);
  ws.push_back(at::randn({3072, 768}) * 0.02);
  ws.push_back(at::randn({768, 3072}) * 0.02);
  for (auto _ : state)
    for (const auto& w : ws) {
      qs::analysis::SiteResult r;
      if (state.range(0) != 0) {
        qs::analysis::weightStats(w, r);
      } else {
        auto opts = qs::analysis::ChannelStatsOptions().withTopTokens(0).withPositions(false);
        qs::analysis::ChannelStats perIn(opts), perOut(opts);
        perIn.update(w);
        perOut.update(w.t());
        r.channel = perIn.arrays();
        r.outChannel = perOut.arrays();
      }
      benchmark::DoNotOptimize(r.channel.kurtosis.data());
    }
}
void BM_Fc2Gemm(benchmark::State& state) {
  c10::InferenceMode guard;
  at::Tensor x = at::randn({4, 512, 3072}), w = at::randn({768, 3072}) * 0.02;
  for (auto _ : state) benchmark::DoNotOptimize(at::linear(x, w));
}

bool haveStories() { return std::filesystem::exists(sharedData() + "/models/stories260K/hf/config.json"); }

void BM_Stories260K_Forward(benchmark::State& st) {
  if (!haveStories()) return st.SkipWithError("stories260K not found (set QS_SHARED_DIR)");
  forward(st, stories());
}
void BM_Stories260K_Layerwise(benchmark::State& st) {
  if (!haveStories()) return st.SkipWithError("stories260K not found (set QS_SHARED_DIR)");
  layerwise(st, stories());
}
void BM_Stories260K_Analyze(benchmark::State& st) {
  if (!haveStories()) return st.SkipWithError("stories260K not found (set QS_SHARED_DIR)");
  analyze(st, stories());
}
void BM_Opt125mShape4L_Forward(benchmark::State& st) { forward(st, opt()); }
void BM_Opt125mShape4L_Layerwise(benchmark::State& st) { layerwise(st, opt()); }
void BM_Opt125mShape4L_Analyze(benchmark::State& st) { analyze(st, opt()); }

}  // namespace

BENCHMARK(BM_ChannelStatsUpdate)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_WeightStatsOptBlock)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Fc2Gemm)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Stories260K_Forward)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_Stories260K_Layerwise)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_Stories260K_Analyze)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_Opt125mShape4L_Forward)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_Opt125mShape4L_Layerwise)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_Opt125mShape4L_Analyze)->Arg(1)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(3.0);
// BENCHMARK_MAIN plus --threads N (LibTorch intra-op threads), taken out before Google Benchmark
// parses the rest.
int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--threads" || a.rfind("--threads=", 0) == 0)) {
      const std::string v = a == "--threads" ? (i + 1 < argc ? argv[++i] : "") : a.substr(10);
      const int n = std::atoi(v.c_str());
      if (n <= 0) {
        std::fprintf(stderr, "bench_analysis: --threads needs a positive number, got '%s'\n", v.c_str());
        return 1;
      }
      at::set_num_threads(n);
      continue;
    }
    args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
