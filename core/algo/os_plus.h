// Outlier Suppression+ (Wei et al., 2023): channel-wise shifting and scaling of the inputs of the
// Linears that read a norm's output (and of the output projection, which reads the values),
// migrated exactly into the neighbouring layers so the FP model is unchanged while its
// activations become symmetric (shift z = (max + min) / 2) and concentrated (scale
// s = max(1, r / t), r = (max - min) / 2). The clipping threshold t is chosen on a linear grid
// of searchSteps + 1 candidates from the smallest to the largest channel range r, minimising
// the L2 error of the consuming Linears' quantized outputs (all consumers of the pair together),
// unless a fixed threshold is given (OsPlusOptions::threshold; shift and scale can each be off).
// The grid is searched coarse to fine by default (every ceil(steps / 10)-th candidate, then
// halving steps around the best: about 20 evaluations for 100 steps; OsPlusSearch::Refine) or
// candidate by candidate (OsPlusSearch::Grid, the paper's search). The objective:
//   sum_c || Qa((X - z) / s) Qw(W_c diag(s))^T + b_c + W_c z - (X W_c^T + b_c) ||^2
// Folding (model/migration.h): norm weight /= s, norm bias = (bias - z) / s (an RMSNorm
// gets this bias; the family has none), consumer bias += W z (a bias is added where the Linear
// has none), consumer columns *= s. Value->output: value rows /= s, value bias = (bias - z) / s.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "core/algo/osplus_search.h"
#include "core/jobs/progress.h"
#include "core/quant/act_quant.h"
#include "core/quant/quant_spec.h"

namespace qs::model {
class Model;
struct MigrationPair;
}  // namespace qs::model

namespace qs::algo {

struct OsPlusOptions {
  bool shift = true;             // channel-wise shifting (asymmetry)
  bool scale = true;             // channel-wise scaling (concentration) with the threshold search
  bool valueOut = true;          // also migrate value -> output projection pairs
  double threshold = 0;          // fixed clipping threshold t > 0 instead of the search; 0 = search
  int searchSteps = 100;         // grid intervals between the smallest and largest channel range (>= 100 advised)
  int64_t searchTokens = 1024;   // calibration tokens per pair the search evaluates
  OsPlusSearch search = OsPlusSearch::Refine;
  quant::ActQuantOptions act;    // activation quantizer the search assumes (range = min/max of the tokens)
  quant::QuantSpec weight = quant::QuantSpec().withBits(8).withSymmetric(true);  // weight quantizer the search assumes

  OsPlusOptions& withShift(bool v) { shift = v; return *this; }
  OsPlusOptions& withScale(bool v) { scale = v; return *this; }
  OsPlusOptions& withValueOut(bool v) { valueOut = v; return *this; }
  OsPlusOptions& withThreshold(double v) { threshold = v; return *this; }
  OsPlusOptions& withSearchSteps(int v) { searchSteps = v; return *this; }
  OsPlusOptions& withSearchTokens(int64_t v) { searchTokens = v; return *this; }
  OsPlusOptions& withSearch(OsPlusSearch v) { search = v; return *this; }
  OsPlusOptions& withAct(const quant::ActQuantOptions& v) { act = v; return *this; }
  OsPlusOptions& withWeight(const quant::QuantSpec& v) { weight = v; return *this; }
};

// A consumer Linear as the search sees it.
struct LinearRef {
  at::Tensor w;  // [out, in] float32
  at::Tensor b;  // [out] or undefined
};

struct ThresholdSearch {
  double threshold = 0;             // chosen t
  at::Tensor scale;                 // [in] max(1, r / t)
  double error = 0;                 // objective at t
  std::vector<double> candidates;   // every t evaluated (ascending)
  std::vector<double> errors;       // objective per candidate
};

// The most candidates a search of `options` evaluates (Grid: searchSteps + 1).
int thresholdEvaluations(const OsPlusOptions& options);

// s = max(1, r / t) per channel for half-ranges r [in] and threshold t > 0 (float32).
at::Tensor thresholdScale(const at::Tensor& range, double threshold);

// Objective above for given shift z [in] and scale s [in] on tokens x [n, in].
double migrationError(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale,
                      const std::vector<LinearRef>& consumers, const OsPlusOptions& options);
// The threshold search; range r [in] = half the channel range after shifting. The consumers'
// unmigrated outputs are computed once; progress is checked for a cancel between candidates.
// Ties go to the larger threshold (less scaling).
ThresholdSearch searchThreshold(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& range,
                                const std::vector<LinearRef>& consumers, const OsPlusOptions& options,
                                jobs::Progress& progress = jobs::Progress::none());

struct PairReport {
  std::string name;                    // "layers.3.ln1"
  std::vector<std::string> consumers;
  at::Tensor shift, scale;             // [in] float32 (undefined when off)
  double threshold = 0;
  double errorBefore = 0;              // objective without migration (z = 0, s = 1)
  double errorShift = 0;               // shift only
  double errorAfter = 0;               // shift + searched scale
  double maxAbsBefore = 0, maxAbsAfter = 0;  // largest |x| over channels, before / after
};

struct OsPlusReport {
  std::vector<PairReport> pairs;
  int64_t calibrationTokens = 0;
};

// What a migration saw at one pair: its captured input (SiteInputStats, act_calibration.h) and
// the shift/scale folded into it (undefined = not applied); called right after the fold.
struct SiteInputStats;
using PairObserver = std::function<void(const model::MigrationPair& pair, const SiteInputStats& input,
                                        const at::Tensor& shift, const at::Tensor& scale)>;

// The migration pairs of `model` (value -> output pairs only when valueOut), their inputs (the
// first consumer's) captured block by block in one pass (captureBlockwise with maxTokens and
// statTokens): fn(block, pair, input) runs for each pair, in execution order, with its block still
// loaded, and may fold it. No pass at all when the model has no such pair.
using PairFn = std::function<void(int block, const model::MigrationPair& pair, const SiteInputStats& input)>;
void forEachPairBlockwise(model::Model& model, const at::Tensor& samples, bool valueOut, int64_t maxTokens,
                          int64_t statTokens, const PairFn& fn, jobs::Progress& progress, const std::string& what);

// Calibrates on samples [N, T] int64 and folds shift/scale into every migration pair, block by
// block in one pass (captureBlockwise): a block's pairs are captured, searched and folded before
// the next block runs, so a streamed model holds one block and one block's captures. The hidden
// states passed on are the unmigrated block's (migration is exact), so every pair's statistics
// are those of the original model. statTokens > 0: `observe` also gets a subsample of that many
// input rows (SiteInputStats::statTokens).
OsPlusReport applyOsPlus(model::Model& model, const at::Tensor& samples, const OsPlusOptions& options,
                         jobs::Progress& progress = jobs::Progress::none(), const PairObserver& observe = {},
                         int64_t statTokens = 0);

}  // namespace qs::algo
