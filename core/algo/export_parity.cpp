#include "core/algo/export_parity.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/algo/export.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::algo {
namespace {

constexpr int64_t kWindows = 4;
constexpr int64_t kSeqlen = 128;
constexpr size_t kTextBytes = 256 * 1024;  // more than enough text for 4 x 128 tokens

// Log-probabilities [W, T, V] of ids [W, T] through `model` (whole or streamed, by the budget).
at::Tensor logProbs(model::Model& model, const at::Tensor& ids, jobs::Progress& progress) {
  c10::InferenceMode guard;
  model::Workload work;
  work.rows = ids.size(0);
  work.tokens = ids.size(1);
  const model::ExecPlan plan = model::planExecution(model, work, model::ExecOptions{});
  at::Tensor out;
  model::LayerwiseCallbacks cb;
  cb.input = [&](int64_t) { return model::BatchInput{ids, at::Tensor()}; };
  cb.output = [&](int64_t, const model::BatchState&, const at::Tensor& hidden) {
    out = at::log_softmax(model.head(hidden).to(at::kFloat), -1).to(at::kCPU);
  };
  model::runLayerwise(model, plan, 1, cb, progress, "window");
  return out;
}

}  // namespace

std::string ExportParity::describe() const {
  if (!measured) return "load-back parity not measured: " + note;
  char buf[256];
  std::snprintf(buf, sizeof buf, "KL mean %.3g / max %.3g nats per token, top-1 agreement %.1f%%", klMean, klMax,
                100.0 * top1);
  return "load-back parity vs " + reference + " (" + std::to_string(windows) + " x " + std::to_string(seqlen) +
         " tokens of " + std::filesystem::path(text).filename().string() + "): " + buf;
}

ExportParity measureExportParity(const QuantArtifact& a, const ExportOptions& o, const ExportReport& rep,
                                 jobs::Progress& progress) {
  ExportParity p;
  p.text = o.parityText;
  if (o.format == ExportFormat::ScaleShift) {
    p.note = "scale-shift holds no model";
    return p;
  }
  if (o.parityText.empty() || !fs::exists(o.parityText)) {
    p.note = o.parityText.empty() ? "no text to run" : "the run's calibration text " + o.parityText + " is gone";
    return p;
  }
  std::string text(kTextBytes, '\0');
  {
    std::ifstream f(o.parityText, std::ios::binary);
    f.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(f.gcount()));
  }
  const std::vector<int32_t> tokens = io::loadTokenizer(a.modelPath)->encode(text);
  const bool quantized = o.format != ExportFormat::HfFp16;
  p.reference = quantized ? "the run's quantized model" : "the run's FP model (migrations folded)";
  fs::ScopedDir spill;
  if (!a.migrations.empty()) spill = fs::ScopedDir(fs::makeJobTempDir(".qscope-parity-spill"));
  auto ref = rebuildQuantizedModel(a, quantized, c10::kCPU, spill.path());
  const int64_t maxPos = ref->config().maxPositions;
  p.seqlen = maxPos > 0 ? std::min(kSeqlen, maxPos) : kSeqlen;
  p.windows = std::min<int64_t>(kWindows, static_cast<int64_t>(tokens.size()) / p.seqlen);
  if (p.windows == 0) {
    p.note = "the calibration text has fewer than " + std::to_string(p.seqlen) + " tokens";
    return p;
  }
  at::Tensor ids = at::empty({p.windows, p.seqlen}, at::kLong);
  auto acc = ids.accessor<int64_t, 2>();
  for (int64_t w = 0; w < p.windows; ++w)
    for (int64_t t = 0; t < p.seqlen; ++t) acc[w][t] = tokens[static_cast<size_t>(w * p.seqlen + t)];
  progress.update(0.0, "parity: the run's model");
  const at::Tensor want = logProbs(*ref, ids, progress);
  ref.reset();
  progress.update(0.5, "parity: the export reloaded");
  auto exported = model::openModel(rep.dir);
  const at::Tensor got = logProbs(*exported, ids, progress);
  // [W, T]; KL is never negative: a token whose two distributions agree to float rounding can sum to
  // -1e-9, which is 0.
  const at::Tensor kl = (want.exp() * (want - got)).sum(-1).clamp_min(0.0);
  p.klMean = kl.mean().item<double>();
  p.klMax = kl.max().item<double>();
  p.top1 = (want.argmax(-1) == got.argmax(-1)).to(at::kDouble).mean().item<double>();
  p.measured = true;
  return p;
}

}  // namespace qs::algo
