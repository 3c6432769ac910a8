// Activation quantization of a whole model (W8A8/W6A6/W4A4 emulation): one ActQuantizer per
// group of sites that read the same input (SiteInfo::inputGroup), installed as the model's input
// transform, with static ranges calibrated on N samples; plus the pieces OS+ and SmoothQuant
// calibrate from: per-channel min/max of site inputs and a token subsample for the search.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/jobs/progress.h"
#include "core/quant/act_quant.h"
#include "core/quant/quant_spec.h"

namespace qs::model {
class Model;
}

namespace qs::algo {

// Samples [N, T] int64 are run in batches of this many rows by every pass below.
inline constexpr int64_t kCalibrationBatch = 8;

// Activation fake-quantization installed on a model for as long as the session lives.
class ActQuantSession {
 public:
  // except: sites whose input stays floating point (quant::siteExcluded suffix match).
  // matmulOperands: also quantize the attention matmul operands (Model::matmulSites(): q after
  // RoPE and scaling, k after RoPE, v), each with its own quantizer; `except` applies to them too
  // ("k_matmul" keeps every key in floating point).
  ActQuantSession(model::Model& model, const quant::ActQuantOptions& options,
                  const std::vector<std::string>& except = {}, bool matmulOperands = false);
  ~ActQuantSession();
  ActQuantSession(const ActQuantSession&) = delete;
  ActQuantSession& operator=(const ActQuantSession&) = delete;

  // Observes every site input on samples [N, T] (activations unquantized during the pass, as in
  // OS+'s calibration), then fixes the static ranges. A no-op for dynamic quantizers.
  void calibrate(const at::Tensor& samples, jobs::Progress& progress = jobs::Progress::none());
  // The quantizer of a site (nullptr when excluded).
  const quant::ActQuantizer* quantizer(const std::string& site) const;
  int numQuantizers() const;

 private:
  struct State;
  model::Model& model_;
  std::shared_ptr<State> state_;
  bool matmul_ = false;
};

// Fake-quantizes every site weight in place by spec's grid and observer (round to nearest):
// per output channel (ch_axis 0), per group of input columns (group_size) or per tensor
// (ch_axis -1). bits 16 = unchanged. Returns the number of sites quantized.
int quantizeWeightsRtn(model::Model& model, const quant::QuantSpec& spec,
                       const std::vector<std::string>& except = {},
                       jobs::Progress& progress = jobs::Progress::none());
// The fake-quantized weight alone (w [out, in]).
at::Tensor fakeQuantWeight(const at::Tensor& w, const quant::QuantSpec& spec);

// Per-channel statistics of one site's input over calibration, plus up to maxTokens token rows
// (evenly spread over the batches) for searches that evaluate quantized outputs.
struct SiteInputStats {
  at::Tensor min, max, absMax;  // float32 [in]
  at::Tensor tokens;            // float32 [n <= maxTokens, in]
  at::Tensor statTokens;        // float32 [n <= statTokens, in] (captureBlockwise with statTokens > 0)
  int64_t tokensSeen = 0;
};
std::map<std::string, SiteInputStats> captureSiteInputs(model::Model& model, const at::Tensor& samples,
                                                        const std::vector<std::string>& sites,
                                                        int64_t maxTokens,
                                                        jobs::Progress& progress = jobs::Progress::none());

// The same captures in one block-major pass that hands each block's over as soon as its batches
// have run: samples [N, T] are embedded in batches of kCalibrationBatch, then per block (loaded
// from the checkpoint and released again when the model streams) every batch runs through it with
// the inputs of `sites` in that block captured, and onBlock(block, captures) is called with the
// block still loaded. onBlock may change the block's weights (a migration folds here): the hidden
// states handed on are the ones the block computed before, so every capture is of the model as it
// was, and the memory held is one block, the calibration hidden states and one block's captures.
// statTokens > 0 also keeps a second, independent subsample of that many rows (SiteInputStats::
// statTokens) with the quota captureSiteInputs(…, statTokens) would use.
using BlockCaptureFn = std::function<void(int block, std::map<std::string, SiteInputStats>& captured)>;
void captureBlockwise(model::Model& model, const at::Tensor& samples, const std::vector<std::string>& sites,
                      int64_t maxTokens, int64_t statTokens, const BlockCaptureFn& onBlock,
                      jobs::Progress& progress = jobs::Progress::none(), const std::string& what = "capture");

// N windows of T tokens from a token stream, evenly spaced (deterministic), as [N, T] int64.
// Throws qs::Error when the text has fewer than T tokens.
at::Tensor calibrationWindows(const std::vector<int32_t>& tokens, int n, int seqlen);

}  // namespace qs::algo
