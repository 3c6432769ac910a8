// What the GUI's Pareto view shows of a mixed-precision search, without widgets: the summary run
// of a search (from the summary itself or from any of its trial runs), its pareto.json read into
// plot points (y = the accuracy objective's acc when the search had one, else perplexity), the
// mapping from a point to its trial run, the point nearest a click, and a trial's per-layer
// precision config written as a file `qscope eval --precision` reads back. Qt-free.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ui/plots/pareto_file.h"

namespace qs::plot {

struct SearchPareto {
  int64_t summaryRunId = 0;
  std::string searchId, algo, dataset, model;
  std::string accTask;                  // "" = no accuracy objective
  int64_t accN = 0;                     // examples behind each trial's acc (the largest acc_n)
  std::string file;                     // the pareto.json read
  std::vector<std::string> objectives;  // as searched ("acc:piqa", "bits")
  std::vector<ParetoPoint> points;      // one per trial, in trial order; ParetoPoint::ppl holds y
  std::vector<std::string> configs;     // per point: the trial's `precision:` YAML
  std::vector<double> ppl, acc;         // per point (NaN when not measured)

  std::string yLabel() const;           // "perplexity (wikitext2)" or "piqa acc"
  int frontCount() const;
  std::vector<int64_t> frontRunIds() const;  // front points' trial runs, by bits ascending
  int indexOfRun(int64_t runId) const;       // -1 when no point is that run
  // "trial 3 (run 17): 6.50 bits/weight, ppl 12.3456, acc 0.6125; on the front"
  std::string describe(int index) const;
};

// search.id and search.role ("trial", "pareto") of a run's config; {"", ""} for other runs.
std::pair<std::string, std::string> searchRunRole(const std::string& configYaml);

// The search of run `runId` (its summary or one of its trials) in the store at runsPath.
// Throws qs::Error for a run that is not a search run, a search with no finished summary yet,
// or a missing / malformed pareto.json (naming the file).
SearchPareto loadSearchPareto(const std::string& runsPath, int64_t runId);

// The point within maxDistance (in the units of the scales: pixels when xScale/yScale are
// pixels per unit) of (x, y) that is nearest, or -1. Points with non-finite coordinates never
// match.
int nearestPoint(const SearchPareto& s, double x, double y, double xScale, double yScale, double maxDistance);

// Writes point `index`'s precision config to `path` atomically, with a comment header naming the
// search, trial and run. Throws qs::Error for an index out of range or an unwritable path.
void exportTrialConfig(const SearchPareto& s, int index, const std::string& path);

}  // namespace qs::plot
