#include "app/qscope/plot_pareto.h"

#include <cstdio>

#include "core/runs/project.h"
#include "core/util/error.h"
#ifdef QS_HAVE_PLOT
#include "ui/plots/pareto_data.h"
#endif

namespace qs::cli {
namespace {

class ParetoPlotCommand : public Command {
 public:
  CLI::App* setup(CLI::App& plot) override {
    auto* cmd = plot.add_subcommand("pareto", "Pareto plot of a mixed-precision search (bits per weight vs perplexity)");
    cmd->add_option("id", id_, "the search's summary run or one of its trial runs (qscope runs list --kind search)")
        ->required();
    cmd->add_option("--project,-p", project_, "project folder")->capture_default_str();
    cmd->add_option("--width", width_, "image width in pixels")->capture_default_str();
    cmd->add_option("--height", height_, "image height in pixels")->capture_default_str();
    cmd->add_option("--scale", scale_, "PNG pixel ratio (2 for HiDPI)")->capture_default_str()->check(CLI::Range(0.5, 4.0));
    cmd->add_flag("--log-y", logY_, "logarithmic perplexity axis");
    cmd->add_flag("--no-labels", noLabels_, "no trial numbers next to the front's points");
    cmd->add_flag("--dark", dark_, "dark background");
    cmd->add_option("-o,--output", output_, "output file: .png, .svg or .pdf")->required();
    return cmd;
  }

  int run() override {
#ifndef QS_HAVE_PLOT
    throw Error("this qscope was built without Qt (QS_BUILD_UI=OFF); plots need the Qt build");
#else
    const auto project = runs::Project::open(project_);
    const plot::SearchPareto s = plot::loadSearchPareto(project.runsPath(), id_);
    plot::ParetoFileRequest req;
    // A search with an accuracy objective (acc:TASK) plots its accuracy: the front was chosen
    // on it, not on perplexity (loadSearchPareto puts the objective's value in ParetoPoint::ppl).
    req.points = s.points;
    const bool acc = !s.accTask.empty();
    req.title = "Pareto front · search " + s.searchId + " (" + s.algo + ")";
    req.subtitle = std::to_string(req.points.size()) + " trials, " + std::to_string(s.frontCount()) +
                   " on the front; " +
                   (acc ? s.accTask + " acc on " + std::to_string(s.accN) + " examples" : "perplexity on " + s.dataset) +
                   "; model " + s.model;
    req.yLabel = acc ? s.accTask + " acc (" + std::to_string(s.accN) + " examples)" : "perplexity (" + s.dataset + ")";
    req.output = output_;
    req.width = width_;
    req.height = height_;
    req.scale = scale_;
    req.logY = logY_;
    req.labels = !noLabels_;
    req.dark = dark_;
    const auto result = plot::renderParetoFile(req);
    std::printf("wrote %s (%dx%d): search %s, %s\n", output_.c_str(), width_, height_, s.searchId.c_str(),
                result.description.c_str());
    return 0;
#endif
  }

 private:
  int64_t id_ = 0;
  std::string project_ = ".";
  int width_ = 1000, height_ = 640;
  double scale_ = 1.0;
  bool logY_ = false, noLabels_ = false, dark_ = false;
  std::string output_;
};

}  // namespace

std::unique_ptr<Command> makeParetoPlotCommand() { return std::make_unique<ParetoPlotCommand>(); }

}  // namespace qs::cli
