// `qscope plot pareto RUN -p PROJECT -o pareto.png`: the Pareto plot of a mixed-precision search
// (qscope search), a sub-command of `qscope plot` (cmd_plot.cpp adds it). RUN is the search's
// summary run or any of its trial runs; the points come from the summary's pareto.json.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>

#include "app/qscope/commands.h"

namespace qs::cli {

// Adds "pareto" under `plot`; the returned command runs when it was parsed.
std::unique_ptr<Command> makeParetoPlotCommand();

}  // namespace qs::cli
