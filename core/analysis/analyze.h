// The analysis job: one streaming pass of calibration samples through a model, collecting
// channel statistics at every selected quantization site input (hook-based) and block output,
// plus weight statistics of every selected Linear. Runs block by block (DESIGN.md seam 5):
// all samples' hidden states go through block i, then block i is released, so peak memory is
// one block plus the hidden states, and a block's statistics are final (onBlock) as soon as
// it is done. Torch-free header: the GUI includes it.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/analysis/analysis_types.h"
#include "core/analysis/calibration.h"
#include "core/jobs/progress.h"

namespace qs::model {
class Model;
}
namespace qs::io {
class Tokenizer;
}

namespace qs::analysis {

struct AnalysisOptions {
  std::string sites = "*";       // comma-separated globs (* ?) over site names; see siteMatches()
  bool blockOutputs = true;      // statistics of each block output (site "block_out", kind residual)
  bool weights = true;           // weight statistics of each selected Linear
  bool matmulInputs = false;     // also the attention matmul operands (q/k/v_matmul, kind matmul)
  // Also the softmax input (softmax_in, kind softmax): the attention scores after scaling and
  // the mask, before the (clipped) softmax. A channel is a head; its values are every unmasked
  // (query, key) score of that head; a token is a query (its absmax: over heads and visible keys).
  bool softmaxInputs = false;
  int topTokens = 10;            // outlier tokens kept per site
  int batchSize = 4;             // samples per forward
  OutlierOptions outliers;       // outlier-channel rule of the summaries
  // Called with a block's results once they are final (in block order); the CLI writes them to
  // the run store so a long analysis shows up layer by layer.
  std::function<void(const std::vector<SiteResult>&)> onBlock;

  AnalysisOptions& withSites(std::string v) { sites = std::move(v); return *this; }
  AnalysisOptions& withBlockOutputs(bool v) { blockOutputs = v; return *this; }
  AnalysisOptions& withWeights(bool v) { weights = v; return *this; }
  AnalysisOptions& withMatmulInputs(bool v) { matmulInputs = v; return *this; }
  AnalysisOptions& withSoftmaxInputs(bool v) { softmaxInputs = v; return *this; }
  AnalysisOptions& withTopTokens(int v) { topTokens = v; return *this; }
  AnalysisOptions& withBatchSize(int v) { batchSize = v; return *this; }
  AnalysisOptions& withOutliers(OutlierOptions v) { outliers = v; return *this; }
  AnalysisOptions& withOnBlock(std::function<void(const std::vector<SiteResult>&)> f) { onBlock = std::move(f); return *this; }
};

// Whether a site is selected by `patterns` (comma-separated globs). Each glob is tried against
// the full name ("layers.3.self_attn.q_proj"), the block-local name ("self_attn.q_proj") and
// the last component ("q_proj"), so "q_proj", "mlp.*", "layers.0.*" and "*" all do what they
// say. Block outputs are named "layers.N.block_out".
bool siteMatches(const std::string& patterns, const std::string& fullName);

// The pass. Progress reports per block and batch; cancellation (Progress::cancelRequested)
// throws qs::Cancelled between batches. Throws qs::Error when no site matches options.sites or
// the samples do not fit the model (seqlen over its positions, ids outside its vocabulary).
AnalysisResult analyzeModel(model::Model& model, const CalibrationSet& samples, const AnalysisOptions& options = {},
                            jobs::Progress& progress = jobs::Progress::none());

// Sets TopToken::text from the tokenizer's display text of each id.
void fillTokenText(std::vector<SiteResult>& sites, const io::Tokenizer& tokenizer);

}  // namespace qs::analysis
