#include "core/analysis/analyze.h"

#include <ATen/ATen.h>

#include <chrono>
#include <map>
#include <set>
#include <sstream>

#include "core/analysis/channel_stats.h"
#include "core/analysis/stat_names.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/attention.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/oom_guard.h"
#include "core/util/strings.h"

namespace qs::analysis {
namespace {

bool glob(const char* p, const char* s) {
  // Iterative wildcard match with backtracking to the last '*'.
  const char *star = nullptr, *resume = nullptr;
  while (*s) {
    if (*p == '?' || *p == *s) {
      ++p, ++s;
    } else if (*p == '*') {
      star = p++;
      resume = s;
    } else if (star) {
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (*p == '*') ++p;
  return *p == 0;
}

// "layers.3.self_attn.q_proj" -> "self_attn.q_proj"
std::string localName(const std::string& full) {
  if (full.rfind("layers.", 0) != 0) return full;
  size_t dot = full.find('.', 7);
  return dot == std::string::npos ? full : full.substr(dot + 1);
}

std::string lastName(const std::string& full) {
  size_t dot = full.rfind('.');
  return dot == std::string::npos ? full : full.substr(dot + 1);
}

// Names sites are stored under: the last component ("q_proj", "fc1"), as the run store and the
// plots expect, unless two Linears of a block share it (GPT-2's attn.c_proj and mlp.c_proj),
// which keep their block-local names.
std::map<std::string, std::string> storedNames(const std::vector<model::SiteInfo>& sites) {
  std::map<std::pair<int, std::string>, int> uses;
  for (const auto& s : sites) ++uses[{s.block, lastName(s.name)}];
  std::map<std::string, std::string> out;
  for (const auto& s : sites) out[s.name] = uses[{s.block, lastName(s.name)}] > 1 ? localName(s.name) : lastName(s.name);
  return out;
}

// Restores the model's hook however the pass ends (cancelled, failed).
struct HookGuard {
  model::Model& m;
  bool matmul = false, softmax = false;
  ~HookGuard() {
    m.setInputHook(nullptr);
    if (matmul) m.setMatmulHook(nullptr);
    if (softmax) m.setSoftmaxHook(nullptr);
  }
};

// Block index of "layers.N.…" (-1 for other names).
int blockOf(const std::string& name) {
  if (name.rfind("layers.", 0) != 0) return -1;
  try {
    return std::stoi(name.substr(7));
  } catch (const std::exception&) {
    return -1;
  }
}

// The softmax input of one attention module, a channel per head. `scores` takes the moments
// over every unmasked (query, key) score. `queries` takes, per query token, each head's max
// |score| over its visible keys ([B, T, H], gathered for the current batch by the chunk hook and
// fed once the batch is through the block): its token absmax is the max over heads and keys, its
// top tokens name the head; its own moments are not used.
struct SoftmaxAcc {
  ChannelStats scores, queries;
  at::Tensor perHead;  // [B, T, H] float32 for the current batch; undefined between batches
};

struct Batch {
  at::Tensor ids, mask, keep;    // [B, T] on the model's device; mask/keep undefined without padding
  model::BatchState state;
  at::Tensor hidden;
  int64_t offset = 0;            // first sample index
};

SiteResult finalize(const ChannelStats& a, int layer, const std::string& fullName, const std::string& site,
                    const std::string& kind, const OutlierOptions& outliers) {
  SiteResult r;
  r.layer = layer;
  r.fullName = fullName;
  r.site = site;
  r.kind = kind;
  r.channels = a.channels();
  r.count = a.count();
  r.channel = a.arrays();
  r.tokenAbsmax = a.positionAbsmax();
  r.topTokens = a.topTokens();
  r.summary = summarize(r.channel, r.count, outliers);
  return r;
}

}  // namespace

bool siteMatches(const std::string& patterns, const std::string& fullName) {
  const std::string local = localName(fullName);
  const std::string last = lastName(fullName);
  std::stringstream in(patterns);
  for (std::string p; std::getline(in, p, ',');) {
    p = str::trim(p, " \t");
    if (p.empty()) continue;
    if (glob(p.c_str(), fullName.c_str()) || glob(p.c_str(), local.c_str()) || glob(p.c_str(), last.c_str()))
      return true;
  }
  return false;
}

namespace {

AnalysisResult analyzeModelImpl(model::Model& m, const CalibrationSet& cal, const AnalysisOptions& o,
                                jobs::Progress& progress) {
  c10::InferenceMode guard;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t N = cal.samples, L = cal.seqlen;
  if (N <= 0 || L <= 0 || static_cast<int64_t>(cal.ids.size()) != N * L)
    throw Error("analysis: the calibration set is empty or inconsistent (" + std::to_string(cal.ids.size()) +
                " ids for " + std::to_string(N) + " x " + std::to_string(L) + ")");
  if (o.batchSize <= 0) throw Error("analysis: batch size must be positive, got " + std::to_string(o.batchSize));
  const auto& cfg = m.config();
  if (cfg.maxPositions > 0 && L > cfg.maxPositions)
    throw Error("analysis: --seqlen " + std::to_string(L) + " exceeds the model's " + std::to_string(cfg.maxPositions) +
                " positions (max_position_embeddings)");

  // Which sites, per block.
  const int nBlocks = m.numBlocks();
  const auto stored = storedNames(m.sites());
  std::vector<std::vector<const model::SiteInfo*>> blockSites(static_cast<size_t>(nBlocks));
  std::set<std::string> selected;
  for (const auto& s : m.sites())
    if (s.block >= 0 && s.block < nBlocks && siteMatches(o.sites, s.name)) {
      blockSites[static_cast<size_t>(s.block)].push_back(&s);
      selected.insert(s.name);
    }
  // Attention matmul operands (optional): selected by the same patterns ("q_matmul", "*").
  std::vector<std::vector<std::string>> blockMatmul(static_cast<size_t>(nBlocks));
  std::set<std::string> selectedMatmul;
  if (o.matmulInputs)
    for (const auto& name : m.matmulSites()) {
      const int b = blockOf(name);
      if (b >= 0 && b < nBlocks && siteMatches(o.sites, name)) {
        blockMatmul[static_cast<size_t>(b)].push_back(name);
        selectedMatmul.insert(name);
      }
    }
  // The softmax input (optional): the same patterns ("softmax_in", "self_attn.*", "*").
  std::vector<std::string> blockSoftmax(static_cast<size_t>(nBlocks));
  if (o.softmaxInputs)
    for (const auto& name : m.softmaxSites()) {
      const int b = blockOf(name);
      if (b >= 0 && b < nBlocks && siteMatches(o.sites, name)) blockSoftmax[static_cast<size_t>(b)] = name;
    }
  std::vector<bool> blockOut(static_cast<size_t>(nBlocks), false);
  bool any = !selected.empty() || !selectedMatmul.empty();
  for (const auto& name : blockSoftmax) any = any || !name.empty();
  for (int i = 0; i < nBlocks; ++i) {
    blockOut[static_cast<size_t>(i)] =
        o.blockOutputs && siteMatches(o.sites, "layers." + std::to_string(i) + "." + names::kBlockOut);
    any = any || blockOut[static_cast<size_t>(i)];
  }
  if (!any) throw Error("analysis: --sites '" + o.sites + "' matches no site (try q_proj, 'mlp.*', block_out or '*')");

  const auto dev = m.device();
  at::Tensor ids = at::from_blob(const_cast<int32_t*>(cal.ids.data()), {N, L}, at::kInt).to(at::kLong);
  at::Tensor mask;
  if (!cal.mask.empty())
    mask = at::from_blob(const_cast<uint8_t*>(cal.mask.data()), {N, L}, at::kByte).to(at::kLong);

  // Embeddings of every batch (the hidden states live for the whole pass, GPTQ-style).
  std::vector<Batch> batches;
  for (int64_t b0 = 0; b0 < N; b0 += o.batchSize) {
    const int64_t nb = std::min<int64_t>(o.batchSize, N - b0);
    Batch b;
    b.offset = b0;
    b.ids = ids.narrow(0, b0, nb).to(dev);
    if (mask.defined()) {
      b.mask = mask.narrow(0, b0, nb).to(dev);
      if (cal.removePadding) b.keep = b.mask;
    }
    b.state = m.prepare(b.ids, b.mask);
    b.hidden = m.embed(b.state);
    batches.push_back(std::move(b));
  }

  // The hook: statistics of each selected site's input. q/k/v (and gate/up) receive the same
  // tensor; its statistics are computed once and shared (SiteResult::sharedWith).
  std::map<std::string, ChannelStats> acc;
  std::map<std::string, std::string> leaderOf;
  at::Tensor lastX;
  std::string lastLeader;
  const Batch* current = nullptr;
  const auto statsOptions = ChannelStatsOptions().withTopTokens(o.topTokens);
  HookGuard hookGuard{m};
  m.setInputHook([&](const std::string& site, const at::Tensor& x) {
    if (!selected.count(site)) return;
    std::string leader = site;
    if (lastX.defined() && x.is_same(lastX)) {
      leader = lastLeader;
    } else {
      acc.try_emplace(site, statsOptions).first->second.update(x, current->ids, current->keep, current->offset);
      lastX = x;
      lastLeader = site;
    }
    auto [it, fresh] = leaderOf.emplace(site, leader);
    if (!fresh && it->second != leader)
      throw std::logic_error("analysis: site " + site + " changed the tensor it shares with other sites");
  });
  std::map<std::string, ChannelStats> accMatmul;
  if (!selectedMatmul.empty()) {
    hookGuard.matmul = true;
    m.setMatmulHook([&](const std::string& site, const at::Tensor& x) {
      if (selectedMatmul.count(site))
        accMatmul.try_emplace(site, statsOptions).first->second.update(x, current->ids, current->keep, current->offset);
    });
  }

  std::map<std::string, SoftmaxAcc> accSoftmax;
  if (o.softmaxInputs) {
    hookGuard.softmax = true;
    m.setSoftmaxHook([&](const std::string& site, const at::Tensor& scores, int64_t row, int64_t q0) {
      auto it = accSoftmax.find(site);
      if (it == accSoftmax.end()) return;
      SoftmaxAcc& a = it->second;
      const int64_t H = scores.size(0), C = scores.size(1), S = scores.size(2);
      // Masking (causal, padding, window) is the same for every head; ALiBi only shifts.
      at::Tensor valid = scores.select(0, 0) > model::kMaskedScoreBelow;  // [C, S]
      if (current->keep.defined())  // removed padding: its query rows do not count either
        valid.logical_and_(current->keep[row].narrow(0, q0, C).to(at::kBool).view({C, 1}));
      at::Tensor keep = valid.reshape({C * S}).nonzero().squeeze(1);
      a.scores.update(scores.reshape({H, C * S}).index_select(1, keep).t());  // [unmasked, H]
      if (!a.perHead.defined()) a.perHead = at::zeros({current->ids.size(0), L, H}, scores.options());
      at::Tensor headMax = scores.abs().masked_fill(valid.logical_not().unsqueeze(0), 0).amax(2);  // [H, C]
      a.perHead[row].narrow(0, q0, C).copy_(headMax.t());
    });
  }

  AnalysisResult result;
  result.samples = N;
  result.seqlen = L;
  const double steps = static_cast<double>(nBlocks) * static_cast<double>(batches.size());
  for (int i = 0; i < nBlocks; ++i) {
    ChannelStats residual(statsOptions);
    const std::string& softmaxSite = blockSoftmax[static_cast<size_t>(i)];
    if (!softmaxSite.empty())
      accSoftmax.try_emplace(softmaxSite,
                             SoftmaxAcc{ChannelStats(ChannelStatsOptions().withTopTokens(0).withPositions(false)),
                                        ChannelStats(statsOptions), {}});
    for (size_t bi = 0; bi < batches.size(); ++bi) {
      progress.checkCancel();
      Batch& b = batches[bi];
      current = &b;
      lastX = at::Tensor();
      b.hidden = m.runBlock(i, b.hidden, b.state);
      if (blockOut[static_cast<size_t>(i)]) residual.update(b.hidden, b.ids, b.keep, b.offset);
      if (!softmaxSite.empty()) {
        SoftmaxAcc& a = accSoftmax.at(softmaxSite);
        if (a.perHead.defined()) a.queries.update(a.perHead, b.ids, b.keep, b.offset);
        a.perHead = at::Tensor();
      }
      const int64_t done = b.offset + b.ids.size(0);
      progress.update((static_cast<double>(i) * static_cast<double>(batches.size()) + static_cast<double>(bi + 1)) / steps,
                      "block " + std::to_string(i + 1) + "/" + std::to_string(nBlocks) + ", sample " +
                          std::to_string(done) + "/" + std::to_string(N));
    }
    lastX = at::Tensor();
    current = nullptr;

    std::vector<SiteResult> block;
    // Matmul operands and the softmax input are listed where they run: before the attention's
    // output projection (the last Linear of the attention module), else after the block's Linears.
    std::vector<SiteResult> matmulRows;
    std::string outProj;
    auto attentionRow = [&](SiteResult r) {
      const std::string attn = r.fullName.substr(0, r.fullName.rfind('.') + 1);
      for (const auto& si : m.sites())
        if (si.block == i && si.name.rfind(attn, 0) == 0) outProj = si.name;
      matmulRows.push_back(std::move(r));
    };
    for (const auto& name : blockMatmul[static_cast<size_t>(i)]) {
      auto it = accMatmul.find(name);
      if (it == accMatmul.end()) continue;
      attentionRow(finalize(it->second, i, name, lastName(name), names::kMatmul, o.outliers));
      accMatmul.erase(it);
    }
    if (!softmaxSite.empty()) {
      auto it = accSoftmax.find(softmaxSite);
      if (it->second.scores.count() > 0) {
        SiteResult r = finalize(it->second.scores, i, softmaxSite, names::kSoftmaxIn, names::kSoftmax, o.outliers);
        r.tokenAbsmax = it->second.queries.positionAbsmax();
        r.topTokens = it->second.queries.topTokens();
        attentionRow(std::move(r));
      }
      accSoftmax.erase(it);
    }
    auto emitMatmul = [&] {
      for (auto& r : matmulRows) block.push_back(std::move(r));
      matmulRows.clear();
    };
    for (const auto* s : blockSites[static_cast<size_t>(i)]) {
      if (s->name == outProj) emitMatmul();
      auto leader = leaderOf.find(s->name);
      if (leader != leaderOf.end()) {
        SiteResult r = finalize(acc.at(leader->second), i, s->name, stored.at(s->name), names::kInput, o.outliers);
        if (leader->second != s->name) r.sharedWith = stored.at(leader->second);
        block.push_back(std::move(r));
      }
      if (o.weights) {
        SiteResult w;
        w.layer = i;
        w.fullName = s->name;
        w.site = stored.at(s->name);
        w.kind = names::kWeight;
        weightStats(m.siteWeight(s->name).to(at::kFloat), w, o.outliers);
        block.push_back(std::move(w));
      }
    }
    emitMatmul();
    if (blockOut[static_cast<size_t>(i)]) {
      std::string full = "layers." + std::to_string(i) + "." + names::kBlockOut;
      block.push_back(finalize(residual, i, full, names::kBlockOut, names::kResidual, o.outliers));
    }
    for (const auto* s : blockSites[static_cast<size_t>(i)]) {
      auto it = leaderOf.find(s->name);
      if (it != leaderOf.end()) acc.erase(it->second);
    }
    m.release(i);
    if (o.onBlock) o.onBlock(block);
    for (auto& r : block) result.sites.push_back(std::move(r));
  }
  for (const auto& r : result.sites)
    if (r.kind != names::kWeight && r.kind != names::kSoftmax)
      result.tokens = r.count;  // every activation site sees the same tokens (softmax_in counts scores)
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  progress.update(1.0, "done");
  return result;
}

}  // namespace

AnalysisResult analyzeModel(model::Model& m, const CalibrationSet& cal, const AnalysisOptions& o,
                            jobs::Progress& progress) {
  // Device out-of-memory stops the analysis with what to lower; nothing is stored before it returns.
  OomContext oom{"analysis", m.device().str(), {}, ""};
  oom.add("calibration samples", "--samples", cal.samples)
      .add("sequence length", "--seqlen", cal.seqlen)
      .add("batch size", "--batch-size", o.batchSize);
  return withOomMessage(oom, [&] { return analyzeModelImpl(m, cal, o, progress); });
}

void fillTokenText(std::vector<SiteResult>& sites, const io::Tokenizer& tokenizer) {
  for (auto& s : sites)
    for (auto& t : s.topTokens)
      if (t.id >= 0 && t.id < tokenizer.vocabSize()) t.text = tokenizer.tokenText(t.id);
}

}  // namespace qs::analysis
