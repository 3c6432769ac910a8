// Zero-shot task results on the terminal and in --json, shared by `qscope eval --tasks` and
// `qscope quantize --eval-tasks`: the harness-style table, the --limit / truncation notes and
// the requests-per-second line.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/eval/task_metrics.h"

namespace qs::cli {

// One object per task: task, version, protocol, file, n, total_docs, metrics {name: {value,
// stderr, higher_is_better}}, requests, rows, forwards, tokens, padded_tokens, truncated,
// scoring_seconds, seconds, requests_per_second.
nlohmann::json tasksJson(const std::vector<eval::TaskResult>& results);

// The table (eval::formatResultsTable), then the notes and the speed line; `where` names the
// dtype and device ("float32 on cpu"); rss < 0 leaves the peak RSS out.
void printTasks(const std::vector<eval::TaskResult>& results, const std::string& where, long long rss = -1);

}  // namespace qs::cli
