#include "core/workflow/preflight.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>

#include "core/algo/act_calibration.h"
#include "core/algo/layer_quant.h"
#include "core/algo/migration_run.h"
#include "core/algo/os_plus.h"
#include "core/eval/datasets.h"
#include "core/eval/perplexity.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/model/model_summary.h"
#include "core/util/error.h"
#include "core/util/memory.h"
#include "core/workflow/quantize_inputs.h"

namespace qs::workflow {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Relative cost of the weight method on an [out, in] site (only ratios are used).
double methodCost(const algo::QuantizeConfig& c, double out, double in) {
  switch (c.layer.method) {
    case algo::Method::Rtn: return out * in;
    case algo::Method::Gptq: return out * in * in + in * in * in / 3;
    case algo::Method::QuantEase: return c.layer.numIter * out * in * in + in * in * in / 3;
    case algo::Method::GptqQuantEase: return (c.layer.numIter + 1) * out * in * in + in * in * in / 3;
  }
  return out * in;
}

// Memory the weight method needs for one site beyond its Hessian (float32 copies of the weight and
// the method's own matrices), bytes.
int64_t methodBytes(const algo::QuantizeConfig& c, int64_t out, int64_t in) {
  const int64_t w = out * in * 4, h = in * in * 8;
  switch (c.layer.method) {
    case algo::Method::Rtn: return 3 * w;
    case algo::Method::Gptq: return 4 * w + 2 * h;              // H copy, its Cholesky inverse
    case algo::Method::QuantEase:
    case algo::Method::GptqQuantEase: return 4 * w + 2 * h;     // float32 H and its scaled copy
  }
  return 3 * w;
}

// The migration's working set beyond the weights (algo::runMigration: one block-major pass that
// captures a block's pair inputs, then searches and folds its pairs before the next block runs):
// the calibration hidden states, one batch inside a block, the captures of the block with the
// most pairs (the search tokens and the statistics subsample), the widest pair's search (float32
// consumer weights, their scaled and fake-quantized copies of the largest, the unmigrated and
// candidate outputs of the search tokens) and, streaming, the block's migrated weights, held in
// memory until the block is finished and they spill to disk (Model::spillOverrides).
std::vector<PreflightItem> migrationItems(const model::Model& m, const algo::QuantizeConfig& cfg, bool streaming) {
  std::map<std::string, const model::SiteInfo*> site;
  for (const auto& s : m.sites()) site[s.name] = &s;
  std::map<int, int64_t> captureByBlock, consumersByBlock;
  int64_t search = 0;
  const int64_t tokens = std::min<int64_t>(cfg.osplusSearchTokens, static_cast<int64_t>(cfg.nsamples) * cfg.seqlen);
  const int64_t rows = cfg.migrate == algo::Migration::OsPlus ? tokens + algo::kMigrationStatTokens : algo::kMigrationStatTokens;
  for (const auto& pair : m.migrationPairs()) {
    if (pair.kind == model::MigrationPair::Kind::ValueOut && !(cfg.migrate == algo::Migration::OsPlus && cfg.osplusValueOut))
      continue;
    const model::SiteInfo* first = site.at(pair.consumers.front());
    captureByBlock[pair.block] += rows * first->inFeatures * 4;
    int64_t all = 0, largest = 0, outs = 0, widestOut = 0;
    for (const auto& c : pair.consumers) {
      const model::SiteInfo* si = site.at(c);
      all += si->outFeatures * si->inFeatures * 4;
      largest = std::max(largest, si->outFeatures * si->inFeatures * 4);
      outs += si->outFeatures;
      widestOut = std::max(widestOut, si->outFeatures);
    }
    consumersByBlock[pair.block] += all;
    if (cfg.migrate == algo::Migration::OsPlus) search = std::max(search, all + 3 * largest + tokens * (outs + 2 * widestOut) * 4);
    else search = std::max(search, all);
  }
  auto largestBlock = [](const std::map<int, int64_t>& byBlock) {
    int64_t most = 0;
    for (const auto& [b, bytes] : byBlock) most = std::max(most, bytes);
    return most;
  };
  const int64_t capture = largestBlock(captureByBlock), consumers = largestBlock(consumersByBlock);
  const int64_t rowsPerBatch = std::min<int64_t>(algo::kCalibrationBatch, cfg.nsamples);
  std::vector<PreflightItem> items = {
      {"calibration hidden states, " + std::to_string(cfg.nsamples) + " x " + std::to_string(cfg.seqlen) + " tokens",
       model::hiddenBytes(m, cfg.nsamples, cfg.seqlen)},
      {"activations of one calibration batch inside the block", model::blockActivationBytes(m, rowsPerBatch, cfg.seqlen)},
      {"one block's captured pair inputs (search tokens and statistics rows)", capture},
      {cfg.migrate == algo::Migration::OsPlus ? "the threshold search of the widest pair (float32 weights and outputs)"
                                               : "the consumer weights of the widest pair (float32)",
       search}};
  if (streaming) {
    const int64_t dtypeBytes = consumers / 4 * static_cast<int64_t>(c10::elementSize(m.dtype()));
    items.push_back({"one block's migrated weights, held until the block spills to disk", dtypeBytes});
  }
  return items;
}

std::string fmtSeconds(double s) {
  char b[64];
  if (s < 90) std::snprintf(b, sizeof b, "%.0f s", s);
  else if (s < 5400) std::snprintf(b, sizeof b, "%.0f min", s / 60);
  else std::snprintf(b, sizeof b, "%.1f h", s / 3600);
  return b;
}

}  // namespace

QuantizePreflight preflightQuantize(const QuantizeJobOptions& o, bool probe, jobs::Progress& progress) {
  const QuantizeInputs in = resolveQuantizeInputs(o);
  const algo::QuantizeConfig& cfg = in.config;
  progress.update(0, "opening " + in.modelPath);
  auto model = model::openModel(in.modelPath, in.load);
  model->setExecOptions(o.exec);
  QuantizePreflight p;
  p.model = in.modelPath;
  p.label = cfg.label();
  p.blocks = model->numBlocks();
  p.parameters = model::summarizeModel(in.modelPath).totalParams;

  const model::Model::Footprint f = model->footprint();
  const int64_t evalSeqlen = eval::resolveSeqlen(*model, cfg.evalSeqlen);
  const int64_t rows = std::max(1, std::min(cfg.batchSize, cfg.nsamples));
  const bool dataFree = cfg.layer.method == algo::Method::Rtn && !cfg.calibrateRtn && cfg.layer.spec.enabled();
  const model::ExecPlan plan = model::planExecution(*model, quantizeWorkload(*model, cfg), o.exec);
  p.streaming = plan.streaming;
  p.execution = plan.describe();
  p.budgetBytes = plan.budgetBytes;
  p.budgetSource = plan.budgetSource;

  const std::string dt = in.dtypeName;
  const int64_t calHidden = dataFree ? 0 : 2 * model::hiddenBytes(*model, cfg.nsamples, cfg.seqlen);
  const int64_t blockAct = model::blockActivationBytes(*model, rows, cfg.seqlen);
  // The widest site sets the Hessian and the method's working set.
  int64_t widestIn = 0, widestOut = 0;
  for (const auto& s : model->sites())
    if (s.inFeatures > widestIn || (s.inFeatures == widestIn && s.outFeatures > widestOut)) {
      widestIn = s.inFeatures;
      widestOut = s.outFeatures;
    }
  const bool hessianMethod = !dataFree && cfg.layer.spec.enabled();
  const int64_t h64 = widestIn * widestIn * 8;
  const int64_t method = cfg.layer.spec.enabled() ? methodBytes(cfg, widestOut, widestIn) : 0;
  // Streaming holds the block being quantized (its quantized weights replace the loaded ones in
  // place); the whole path holds every block.
  const int64_t weightsHeld = p.streaming ? f.maxBlockBytes() : f.totalBytes();

  // Phases: quantizing a block (accumulating a Hessian while the block runs, then the method on
  // it), evaluation, migration; the peak is the largest.
  const int64_t accumulate = hessianMethod ? 2 * h64 + blockAct : 0;  // float64 sum + the copy made of it
  const int64_t solve = (hessianMethod ? h64 : 0) + method;
  std::vector<PreflightItem> quantItems = {
      {p.streaming ? "the block being quantized (" + dt + ")" : "the model's weights (" + dt + ")", weightsHeld},
      {"calibration hidden states, " + std::to_string(cfg.nsamples) + " x " + std::to_string(cfg.seqlen) +
           " tokens (in + out)",
       calHidden}};
  if (accumulate >= solve && hessianMethod) {
    quantItems.push_back({"Hessian of the widest input (" + std::to_string(widestIn) +
                              " columns, float64 accumulator + copy)",
                          2 * h64});
    quantItems.push_back({"activations of one calibration batch inside the block", blockAct});
  } else {
    if (hessianMethod)
      quantItems.push_back({"Hessian of the widest input (" + std::to_string(widestIn) + " columns, float64)", h64});
    quantItems.push_back({std::string(algo::methodName(cfg.layer.method)) + " on the widest site (" +
                              std::to_string(widestOut) + " x " + std::to_string(widestIn) + ")",
                          method});
  }
  int64_t quantPeak = 0;
  for (const auto& it : quantItems) quantPeak += it.bytes;
  const bool evaluates = !cfg.eval.empty() || !cfg.evalTasks.empty();
  const int64_t evalPeak = evaluates ? (p.streaming ? plan.streamingBytes : plan.wholeBytes) : 0;
  int64_t migrationPeak = 0;
  std::vector<PreflightItem> migrationParts;
  if (cfg.migrate != algo::Migration::None) {
    migrationParts = migrationItems(*model, cfg, p.streaming);
    migrationPeak = weightsHeld;
    for (const auto& it : migrationParts) migrationPeak += it.bytes;
  }
  p.peakBytes = std::max({quantPeak, evalPeak, migrationPeak});
  if (p.peakBytes == quantPeak) {
    p.peakPhase = "quantizing a block";
    p.items = quantItems;
  } else if (p.peakBytes == evalPeak) {
    p.peakPhase = "evaluation";
    p.items = {{p.streaming ? "one block + the embedding or head (" + dt + ")" : "the model's weights (" + dt + ")",
                p.streaming ? f.maxBlockBytes() + std::max(f.embeddingBytes, f.headBytes) : f.totalBytes()},
               {"hidden states and activations of the windows in flight",
                evalPeak - (p.streaming ? f.maxBlockBytes() + std::max(f.embeddingBytes, f.headBytes) : f.totalBytes())}};
  } else {
    p.peakPhase = "migration (" + std::string(algo::migrationName(cfg.migrate)) + ")";
    p.items = {{p.streaming ? "the block being migrated (" + dt + ")" : "the model's weights (" + dt + ")", weightsHeld}};
    p.items.insert(p.items.end(), migrationParts.begin(), migrationParts.end());
  }
  std::vector<PreflightItem> kept;
  for (auto& it : p.items)
    if (it.bytes > 0) kept.push_back(it);
  p.items = kept;
  p.fits = p.budgetBytes <= 0 || p.peakBytes <= p.budgetBytes;
  if (!p.fits) {
    if (!p.streaming)
      p.advice.push_back("stream the model block by block (--exec stream): " + formatMemory(f.maxBlockBytes()) +
                         " per block instead of " + formatMemory(f.totalBytes()));
    if (calHidden > p.budgetBytes / 4)
      p.advice.push_back("lower nsamples (now " + std::to_string(cfg.nsamples) + ") or seqlen (now " +
                         std::to_string(cfg.seqlen) + "): the calibration hidden states take " + formatMemory(calHidden));
    if (blockAct > p.budgetBytes / 4)
      p.advice.push_back("lower batch_size (now " + std::to_string(cfg.batchSize) + "): one batch takes " +
                         formatMemory(blockAct) + " inside a block");
    if (in.dtypeName == "float32")
      p.advice.push_back("--dtype bfloat16 halves the weights and activations");
    p.advice.push_back("raise --max-memory (now " + formatMemory(p.budgetBytes) + ", " + p.budgetSource +
                       ") if the machine has more");
  }

  if (!probe) return p;
  // The probe: one block loaded, one short batch through it, the method on a crop of one weight.
  const auto t0 = Clock::now();
  c10::InferenceMode guard;
  progress.update(0.2, "loading block 1");
  auto tl = Clock::now();
  model->materialize(0);
  p.loadSecondsPerBlock = since(tl);
  const int64_t probeTokens = std::max<int64_t>(2, std::min<int64_t>(cfg.seqlen, 256));
  const at::Tensor ids = at::arange(probeTokens, at::kLong).remainder(model->config().vocabSize).unsqueeze(0);
  progress.update(0.5, "one batch through block 1");
  const model::BatchState s = model->prepare(ids, {});
  // Synthetic hidden states, not model->embed: a block's time does not depend on the values, and
  // the embedding table in the compute dtype (500 MiB for a 32000-token 7B in float32) would set
  // the job's peak memory for a data-free method that never embeds anything.
  const at::Tensor h =
      at::randn({1, probeTokens, model->config().hiddenSize}, at::TensorOptions().dtype(model->dtype()).device(model->device()));
  (void)model->runBlock(0, h, s);  // warm-up: first-call allocations and thread start-up
  auto tf = Clock::now();
  (void)model->runBlock(0, h, s);
  const double perToken = since(tf) / static_cast<double>(probeTokens);  // one block, one token
  // The method's time on a site is a * cost(out, in) + b * out * in (the per-column work), fitted
  // from two crops of the first site (512 and 1024 wide; RTN: the whole site, b only).
  // The block is released before the method is timed: the crops read their site from the
  // checkpoint, so the probe holds one block or one method's working set, never both.
  model->release(0);
  double a = 0, b = 0;
  std::string cropText = "-";
  if (cfg.layer.spec.enabled()) {
    progress.update(0.8, "the weight method on crops of one site");
    const model::SiteInfo& site = model->sites().front();
    const at::Tensor full = model->siteWeight(site.name).to(at::kFloat);
    auto timeOn = [&](int64_t n) {
      const int64_t co = std::min<int64_t>(site.outFeatures, n), ci = std::min<int64_t>(site.inFeatures, n);
      const at::Tensor w = full.narrow(0, 0, co).narrow(1, 0, ci).contiguous();
      const at::Tensor x = at::randn({2 * ci, ci}, at::kDouble);
      const at::Tensor H = at::matmul(x.t(), x) / static_cast<double>(ci);
      algo::LayerQuantOptions lo = cfg.layer;
      if (lo.spec.groupSize > 0) lo.spec.groupSize = std::min<int>(lo.spec.groupSize, static_cast<int>(ci));
      auto tq = Clock::now();
      (void)algo::quantizeLayer(w, dataFree ? at::Tensor() : H, lo);  // data-free RTN reports no H error
      return std::make_tuple(since(tq), static_cast<double>(co), static_cast<double>(ci));
    };
    if (cfg.layer.method == algo::Method::Rtn) {
      const auto [t, co, ci] = timeOn(int64_t{1} << 40);
      b = t / (co * ci);
      cropText = std::to_string(static_cast<int64_t>(co)) + "x" + std::to_string(static_cast<int64_t>(ci));
    } else {
      const auto [t1, o1, i1] = timeOn(512);
      const auto [t2, o2, i2] = timeOn(1024);
      const double c1 = methodCost(cfg, o1, i1), c2 = methodCost(cfg, o2, i2), e1 = o1 * i1, e2 = o2 * i2;
      const double det = c2 * e1 - c1 * e2;
      if (det != 0) {
        a = (t2 * e1 - t1 * e2) / det;
        b = (t1 * c2 - t2 * c1) / det;
      }
      if (a < 0 || b < 0) {  // noise: one term explains it
        a = t2 / c2;
        b = 0;
      }
      cropText = "512- and 1024-wide crops";
    }
  }
  // Migration: the pairs' inputs captured (every calibration token through every block, once),
  // then for each OS+ pair the errors before and after shifting and its threshold candidates
  // (thresholdEvaluations: about 20 refined, search_steps + 1 on the grid): each runs the search
  // tokens through the pair's consumers and fake-quantizes their weights; timed on the block's
  // share of consumer weights and an RTN pass over a crop.
  if (cfg.migrate != algo::Migration::None) {
    double blockElements = 0, consumerElements = 0;
    std::set<std::string> consumers;
    for (const auto& pair : model->migrationPairs())
      if (pair.block == 0) consumers.insert(pair.consumers.begin(), pair.consumers.end());
    const model::SiteInfo* first = nullptr;
    for (const auto& site : model->sites()) {
      if (site.block != 0) continue;
      if (!first) first = &site;
      const double e = static_cast<double>(site.outFeatures) * static_cast<double>(site.inFeatures);
      blockElements += e;
      if (consumers.count(site.name)) consumerElements += e;
    }
    double perElement = 0;  // fake-quantizing a weight, per element
    if (first && cfg.layer.spec.enabled()) {
      const at::Tensor w = model->siteWeight(first->name).to(at::kFloat)
                               .narrow(0, 0, std::min<int64_t>(first->outFeatures, 1024))
                               .narrow(1, 0, std::min<int64_t>(first->inFeatures, 1024)).contiguous();
      algo::LayerQuantOptions lo = cfg.layer;
      lo.method = algo::Method::Rtn;
      lo.outlierFraction = 0;
      if (lo.spec.groupSize > 0) lo.spec.groupSize = std::min<int>(lo.spec.groupSize, static_cast<int>(w.size(1)));
      auto tq = Clock::now();
      (void)algo::quantizeLayer(w, at::Tensor(), lo);
      perElement = since(tq) / static_cast<double>(w.numel());
    }
    const double tokens = static_cast<double>(std::min<int64_t>(cfg.osplusSearchTokens, cfg.nsamples * cfg.seqlen));
    algo::OsPlusOptions search;
    search.withSearchSteps(cfg.osplusSearchSteps).withSearch(cfg.osplusSearch);
    // Per OS+ pair: the error before and after shifting, then the threshold's candidates.
    const double evaluations = cfg.migrate == algo::Migration::SmoothQuant ? 0.0
                               : !cfg.osplusScale                         ? 2.0
                               : cfg.osplusThreshold > 0                  ? 3.0
                                                                          : algo::thresholdEvaluations(search) + 2.0;
    p.migrationEvaluations = static_cast<int>(evaluations);
    const double share = blockElements > 0 ? consumerElements / blockElements : 1.0;
    // One pass of every calibration token through every block captures the pairs' inputs.
    const double capture = static_cast<double>(cfg.nsamples) * static_cast<double>(cfg.seqlen) * perToken;
    p.migrationSeconds = p.blocks * (capture + evaluations * (tokens * perToken * share + perElement * consumerElements));
  }
  for (const auto& site : model->sites()) {
    const double out = static_cast<double>(site.outFeatures), in = static_cast<double>(site.inFeatures);
    p.quantizerSeconds += a * methodCost(cfg, out, in) + b * out * in;
  }
  // Calibration: every token through every block, about three times with true-sequential (one
  // partial pass per input group, stopped at the group, and the outputs), twice without.
  if (!dataFree && cfg.layer.spec.enabled())
    p.calibrationSeconds = static_cast<double>(cfg.nsamples) * static_cast<double>(cfg.seqlen) * perToken *
                           p.blocks * (cfg.trueSequential ? 3.0 : 2.0);
  // Evaluation: the FP and the quantized model over the windows scored.
  if (!cfg.eval.empty()) {
    auto tokenizer = io::loadTokenizer(in.modelPath);
    double windows = 0;
    for (const auto& name : cfg.eval) {
      const auto text = eval::loadDataset(name, in.dataDir);
      const double total = static_cast<double>(tokenizer->encode(text.text, true).size()) / static_cast<double>(evalSeqlen);
      windows += cfg.evalLimitWindows > 0 ? std::min<double>(static_cast<double>(cfg.evalLimitWindows), std::floor(total))
                                          : std::floor(total);
    }
    p.evaluationSeconds = 2 * windows * static_cast<double>(evalSeqlen) * perToken * p.blocks;
  }
  // Loading: once whole; streaming re-reads every block per pass (pipeline, the two evaluations).
  const double passes = p.streaming ? 1.0 + (cfg.migrate == algo::Migration::None ? 0.0 : 1.0) +
                                          (cfg.eval.empty() ? 0.0 : 2.0 * static_cast<double>(plan.groups))
                                    : 1.0;
  const double loadSeconds = passes * p.blocks * p.loadSecondsPerBlock;
  p.totalSeconds = loadSeconds + p.migrationSeconds + p.calibrationSeconds + p.quantizerSeconds + p.evaluationSeconds;
  p.probed = true;
  p.probeSeconds = since(t0);
  char basis[320];
  std::snprintf(basis, sizeof basis,
                "measured: block 1 loaded in %.2f s, %lld tokens through it in %.2f s, %s timed on %s; "
                "loading %s, %scalibration %s, weight method %s, evaluation %s%s",
                p.loadSecondsPerBlock, static_cast<long long>(probeTokens), perToken * probeTokens,
                algo::methodName(cfg.layer.method), cropText.c_str(), fmtSeconds(loadSeconds).c_str(),
                cfg.migrate == algo::Migration::None
                    ? ""
                    : (std::string(algo::migrationName(cfg.migrate)) + " " + fmtSeconds(p.migrationSeconds) + ", ").c_str(),
                fmtSeconds(p.calibrationSeconds).c_str(), fmtSeconds(p.quantizerSeconds).c_str(),
                fmtSeconds(p.evaluationSeconds).c_str(), cfg.evalTasks.empty() ? "" : " (zero-shot tasks not included)");
  p.timeBasis = basis;
  progress.update(1, "done");
  return p;
}

std::string describePreflight(const QuantizePreflight& p) {
  std::string s = "pre-flight: " + p.label + " on " + p.model + " (" + std::to_string(p.blocks) + " blocks, " +
                  model::formatCount(p.parameters) + " parameters)\n";
  s += "  runs " + p.execution + "\n";
  s += "  memory: peak about " + formatMemory(p.peakBytes) + " while " + p.peakPhase + ", budget " +
       (p.budgetBytes > 0 ? formatMemory(p.budgetBytes) + " (" + p.budgetSource + ")" : std::string("unknown")) +
       (p.fits ? "" : " -- does NOT fit") + "\n";
  for (const auto& it : p.items) s += "    " + formatMemory(it.bytes) + "  " + it.what + "\n";
  for (const auto& a : p.advice) s += "  to fit: " + a + "\n";
  if (p.probed) s += "  time: about " + fmtSeconds(p.totalSeconds) + " (" + p.timeBasis + ")\n";
  return s;
}

std::string preflightSummary(const QuantizePreflight& p) {
  std::string s = "peak ~" + formatMemory(p.peakBytes) + " of " +
                  (p.budgetBytes > 0 ? formatMemory(p.budgetBytes) : std::string("?")) +
                  (p.streaming ? ", block by block" : ", whole model");
  if (!p.fits) s += " -- does not fit";
  if (p.probed) s += ", ~" + fmtSeconds(p.totalSeconds);
  return s;
}

}  // namespace qs::workflow
