// The pre-flight estimate of a quantize job (issue 15): before anything long starts, what the job
// will hold in memory (weights per block, Hessians, calibration and evaluation activations, the
// peak), whether that fits the memory budget and what to change when it does not, and how long it
// will take, from a short measured probe (one block loaded, one short batch through it, the
// quantizer on a crop of one weight) scaled by each stage's cost. `qscope quantize --dry-run`
// prints it; every quantize job logs it first and stops before its run is created when it cannot
// fit; the GUI's Tuning panel shows the memory part as the config changes. Torch-free header.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/jobs/progress.h"
#include "core/workflow/project_jobs.h"

namespace qs::workflow {

struct PreflightItem {
  std::string what;    // "largest block (float32)", "Hessians of the widest input (float64)", ...
  int64_t bytes = 0;
};

struct QuantizePreflight {
  std::string model, label;      // model path, config label ("gptq w4 g128")
  int blocks = 0;
  int64_t parameters = 0;
  bool streaming = false;        // the model runs block by block
  std::string execution;         // the path and why (ExecPlan::describe)
  int64_t budgetBytes = 0;
  std::string budgetSource;
  std::vector<PreflightItem> items;  // what is held at the peak, largest phase
  int64_t peakBytes = 0;         // estimated peak of the whole job
  std::string peakPhase;         // "quantizing a block", "evaluation", ...
  bool fits = true;
  std::vector<std::string> advice;  // what to change when it does not fit
  // Time (probe only; 0 = not probed).
  bool probed = false;
  double probeSeconds = 0;       // the probe itself
  double loadSecondsPerBlock = 0;  // materialising one block from the checkpoint
  double calibrationSeconds = 0, quantizerSeconds = 0, evaluationSeconds = 0, totalSeconds = 0;
  double migrationSeconds = 0;   // OS+/SmoothQuant: capture and (OS+) the threshold search's candidates
  int migrationEvaluations = 0;  // OS+: objective evaluations per pair in that estimate (before, shifted, candidates)
  std::string timeBasis;         // what was measured
};

// Resolves the job's inputs as runQuantize does (errors likewise), opens the model (headers only)
// and estimates; with probe, also times one block (a few seconds on a 7B model). Nothing is
// written. Throws qs::Error for bad options.
QuantizePreflight preflightQuantize(const QuantizeJobOptions& options, bool probe,
                                    jobs::Progress& progress = jobs::Progress::none());

// Multi-line text for the CLI and the GUI log ("memory: peak 2.3 GiB of 19.6 GiB ...").
std::string describePreflight(const QuantizePreflight& p);
// One line for status bars and the Tuning panel.
std::string preflightSummary(const QuantizePreflight& p);

}  // namespace qs::workflow
