// The search job with its full result, for `qscope search`'s tables and JSON (LibTorch types
// inside; the GUI uses search_job.h).
#pragma once
#include <functional>
#include <string>

#include "core/algo/precision_search.h"
#include "core/algo/search_store.h"
#include "core/workflow/search_job.h"

namespace qs::workflow {

struct SearchRun {
  algo::SearchRunInfo info;
  algo::SearchOptions options;
  algo::SearchResult result;
  std::string runsPath, projectDir;
  int storedBefore = 0;            // trials of this model/eval in the store when it began
  int64_t summaryId = 0;           // the summary run (0 for a --trial task)
  // A --trial task: the trial it stored.
  int trialIndex = -1;
  double trialPpl = NAN;
  int64_t trialRunId = 0;
};

// `note` receives the lines a front end shows as the job goes ("search s-…: round 2, 5 new
// trial(s) as Slurm job array 12"). Throws qs::Cancelled (finished trials stay stored).
SearchRun runSearchFull(const SearchJobOptions& options, jobs::Progress& progress,
                        const std::function<void(const std::string&)>& note = {});

}  // namespace qs::workflow
