#include "app/qscope/task_output.h"

#include <cmath>
#include <cstdio>

#include "app/qscope/cli_support.h"

namespace qs::cli {

nlohmann::json tasksJson(const std::vector<eval::TaskResult>& results) {
  auto j = nlohmann::json::array();
  for (auto& t : results) {
    nlohmann::json metrics = nlohmann::json::object();
    for (auto& m : t.metrics) {
      metrics[m.name] = {{"value", m.value},
                         {"stderr", std::isnan(m.stdError) ? nlohmann::json() : nlohmann::json(m.stdError)},
                         {"higher_is_better", m.higherIsBetter}};
    }
    j.push_back({{"task", t.task},
                 {"version", t.version},
                 {"protocol", eval::taskProtocol(t.task)},
                 {"file", t.path},
                 {"n", t.n},
                 {"total_docs", t.totalDocs},
                 {"metrics", metrics},
                 {"requests", t.stats.requests},
                 {"rows", t.stats.rows},
                 {"forwards", t.stats.forwards},
                 {"tokens", t.stats.tokens},
                 {"padded_tokens", t.stats.paddedTokens},
                 {"truncated", t.stats.truncated},
                 {"scoring_seconds", t.stats.seconds},
                 {"seconds", t.seconds},
                 {"requests_per_second", t.stats.requestsPerSecond()}});
  }
  return j;
}

void printTasks(const std::vector<eval::TaskResult>& results, const std::string& where, long long rss) {
  std::printf("%s", eval::formatResultsTable(results).c_str());
  eval::LoglikelihoodStats total;
  double seconds = 0;
  for (auto& t : results) {
    total += t.stats;
    seconds += t.seconds;
    if (t.n < t.totalDocs)
      std::printf("  %s: first %s of %s examples (--limit)\n", t.task.c_str(), formatThousands(t.n).c_str(),
                  formatThousands(t.totalDocs).c_str());
    if (t.stats.truncated > 0)
      std::printf("  %s: %s requests left-truncated to the model's context\n", t.task.c_str(),
                  formatThousands(t.stats.truncated).c_str());
  }
  std::printf("  %s requests in %.1f s scoring (%.0f requests/s), %.1f s in all; %s", formatThousands(total.requests).c_str(),
              total.seconds, total.requestsPerSecond(), seconds, where.c_str());
  if (rss >= 0) std::printf(", peak RSS %.0f MiB", static_cast<double>(rss) / 1048576.0);
  std::printf("\n");
}

}  // namespace qs::cli
