// Live per-layer preview for the Tuning panel (torch-free header): one migration pair of one
// block — the input its consumers read (e.g. layers.2.ln1 -> q/k/v) — with the channel ranges
// before and after OS+ shifting/scaling and the quantized-output error before and after, under the
// activation and weight quantizers of a quantize config. It is the OS+ objective of
// core/algo/os_plus.h (migrationError, searchThreshold) on the same captured calibration inputs,
// so what the preview says is what `migrate: osplus` would do to that pair.
//
// The model and every pair's captured inputs are kept between requests (capture is the slow
// part); a request that only changes quantizer/OS+ settings recomputes one pair in milliseconds
// on stories260K-sized layers. Use from one thread at a time.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/jobs/progress.h"

namespace qs::workflow {

struct LayerPreviewOptions {
  std::string modelPath;          // model folder or .gguf
  std::string dataset = "wikitext2";  // calibration text (name or file)
  std::string dataDir;            // folder holding text/ for named datasets ("" = default search)
  int samples = 8;                // calibration windows for the capture
  int seqlen = 128;               // tokens per window
  int64_t tokens = 1024;          // tokens per pair kept for the objective
  int layer = 0;                  // block
  int pairIndex = 0;              // which of the block's pairs (pairNames() order)
  std::string site;               // instead of pairIndex: the pair whose consumers include this site
                                  // ("q_proj" or "layers.3.self_attn.q_proj"); "" = use pairIndex
  bool shift = true;              // OS+ channel shift z = (max + min) / 2
  bool scale = true;              // OS+ channel scale s = max(1, r / t)
  int searchSteps = 100;          // threshold candidates - 1 (when threshold == 0)
  std::string search = "refine";  // how the candidates are searched: refine (coarse to fine) or grid
  double threshold = 0;           // fixed clipping threshold t; 0 = search it
  std::string configYaml;         // quantize section: wbits/groupsize/sym and a_* give the quantizers
};

struct LayerPreviewResult {
  std::string pair;                       // "layers.2.ln1"
  std::vector<std::string> consumers;     // sites reading it
  std::vector<float> minBefore, maxBefore, minAfter, maxAfter;  // per input channel
  double errorBefore = 0, errorAfter = 0;  // sum of squared quantized-output errors (OS+ objective)
  double threshold = 0;                    // t used (searched or given); 0 when not scaling
  double maxAbsBefore = 0, maxAbsAfter = 0;
  int64_t tokens = 0;                      // calibration tokens behind the objective
  double seconds = 0;                      // this request
  bool recaptured = false;                 // the model/inputs were (re)loaded for this request
};

class LayerPreviewer {
 public:
  LayerPreviewer();
  ~LayerPreviewer();
  LayerPreviewer(const LayerPreviewer&) = delete;
  LayerPreviewer& operator=(const LayerPreviewer&) = delete;

  // Throws qs::Error (bad model, dataset, config, layer) or qs::Cancelled.
  LayerPreviewResult preview(const LayerPreviewOptions& options, jobs::Progress& progress = jobs::Progress::none());
  // Names of the migration pairs of a block, after the first preview of the model ("" when unknown).
  std::vector<std::string> pairNames(int layer) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace qs::workflow
