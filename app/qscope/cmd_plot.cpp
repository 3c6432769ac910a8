// qscope plot RUN_ID --layer L --site S [--kind channels|layers|tokens] -o file.png|svg|pdf:
// renders the Outlier Explorer's plots of an analysis run to a file without a display (Qt's
// offscreen platform + QCustomPlot, ui/plots). Built without Qt (QS_BUILD_UI=OFF), the command
// still exists and says why it cannot draw.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "app/qscope/commands.h"
#include "app/qscope/plot_pareto.h"
#include "core/runs/project.h"
#include "core/util/error.h"
#ifdef QS_HAVE_PLOT
#include "ui/plots/plot_file.h"
#endif

namespace qs::cli {
namespace {

#ifdef QS_HAVE_PLOT
std::string joinNames(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}
#endif

class PlotCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("plot", "Render an outlier plot of an analysis run to PNG/SVG/PDF (no display needed)");
    // `qscope plot pareto RUN ...` (plot_pareto.cpp) is a sub-command; the run id is then its own.
    pareto_ = makeParetoPlotCommand();
    paretoCmd_ = pareto_->setup(*cmd);
    idOpt_ = cmd->add_option("id", id_, "run id (see `qscope runs list`)");
    cmd->add_option("--project,-p", project_, "project folder")->capture_default_str();
    cmd->add_option("--kind,-k", kind_,
                    "channels: per-channel min/max bars of one site; layers: max |x|, kurtosis, variance and "
                    "outlier channels per layer; tokens: top outlier tokens of one site")
        ->capture_default_str()
        ->check(CLI::IsMember({"channels", "layers", "tokens"}));
    cmd->add_option("--layer,-l", layer_, "layer index (channels, tokens; layers: marks it)");
    cmd->add_option("--site,-s", site_, "site name, e.g. q_proj, fc1, block_out (layers: comma-separated filter)");
    cmd->add_option("--sort", sort_, "channel order: index, range, center or absmax")
        ->capture_default_str()
        ->check(CLI::IsMember({"index", "range", "center", "absmax"}));
    cmd->add_option("--threshold", threshold_, "outlier threshold on |x| (default: the run's, else 6 x median)");
    cmd->add_option("--top", top_, "tokens: how many")->capture_default_str()->check(CLI::Range(1, 200));
    cmd->add_option("--width", width_, "image width in pixels")->capture_default_str();
    cmd->add_option("--height", height_, "image height in pixels")->capture_default_str();
    cmd->add_option("--scale", scale_, "PNG pixel ratio (2 for HiDPI)")->capture_default_str()->check(CLI::Range(0.5, 4.0));
    cmd->add_flag("--dark", dark_, "dark background");
    outputOpt_ = cmd->add_option("-o,--output", output_, "output file: .png, .svg or .pdf");
    return cmd;
  }

  int run() override {
    if (paretoCmd_->parsed()) return pareto_->run();
    if (!idOpt_->count()) throw Error("plot: a run id is required (or `qscope plot pareto RUN` for a search)");
    if (!outputOpt_->count()) throw Error("plot: --output is required");
#ifndef QS_HAVE_PLOT
    throw Error("this qscope was built without Qt (QS_BUILD_UI=OFF); plots need the Qt build");
#else
    auto project = runs::Project::open(project_);
    auto store = project.openStore();
    const auto info = store.getRun(id_);
    plot::PlotFileRequest req;
    req.kind = plot::parsePlotKind(kind_);
    req.output = output_;
    req.width = width_;
    req.height = height_;
    req.scale = scale_;
    req.sort = sort_;
    req.threshold = threshold_;
    req.top = top_;
    req.dark = dark_;
    if (req.kind == plot::PlotKind::Layers) {
      req.stats = store.loadSiteStats(id_, -1, "", true);
      if (req.stats.empty()) throw Error("run " + std::to_string(id_) + " has no site statistics (is it an analysis run?)");
      std::set<std::string> known;
      for (const auto& s : req.stats) known.insert(s.site);
      std::stringstream list(site_);
      for (std::string s; std::getline(list, s, ',');) {
        if (s.empty()) continue;
        if (!known.count(s)) throw Error("--site " + s + ": run " + std::to_string(id_) + " has no such site (sites: " + joinNames(known) + ")");
        req.sites.push_back(s);
      }
      req.highlightLayer = layer_;
      req.runLabel = "run " + std::to_string(id_) + (info.name.empty() ? "" : " · " + info.name);
    } else {
      if (layer_ < 0 || site_.empty()) throw Error("--kind " + kind_ + " needs --layer and --site");
      req.stats = store.loadSiteStats(id_, layer_, site_, true);
      if (req.stats.empty()) {
        auto all = store.loadSiteStats(id_, -1, "", false);
        std::set<std::string> sites;
        int maxLayer = -1;
        for (const auto& s : all) {
          if (s.layer == layer_) sites.insert(s.site);
          maxLayer = std::max(maxLayer, s.layer);
        }
        if (all.empty()) throw Error("run " + std::to_string(id_) + " has no site statistics (is it an analysis run?)");
        if (sites.empty())
          throw Error("--layer " + std::to_string(layer_) + ": run " + std::to_string(id_) + " has layers 0.." +
                      std::to_string(maxLayer));
        throw Error("--site " + site_ + ": layer " + std::to_string(layer_) + " of run " + std::to_string(id_) +
                    " has no such site (sites: " + joinNames(sites) + ")");
      }
      // An activation and a weight may share a site name: prefer the activation, as the GUI does.
      std::stable_partition(req.stats.begin(), req.stats.end(), [](const runs::SiteStat& s) { return s.kind != "weight"; });
    }
    auto result = plot::renderPlotFile(req);
    std::printf("wrote %s (%dx%d): %s\n", output_.c_str(), width_, height_, result.description.c_str());
    return 0;
#endif
  }

 private:
  std::unique_ptr<Command> pareto_;
  CLI::App* paretoCmd_ = nullptr;
  CLI::Option *idOpt_ = nullptr, *outputOpt_ = nullptr;
  int64_t id_ = 0;
  std::string project_ = ".";
  std::string kind_ = "channels";
  int layer_ = -1;
  std::string site_;
  std::string sort_ = "index";
  double threshold_ = NAN;
  int top_ = 20;
  int width_ = 1400, height_ = 720;
  double scale_ = 1.0;
  bool dark_ = false;
  std::string output_;
};

}  // namespace

std::unique_ptr<Command> makePlotCommand() { return std::make_unique<PlotCommand>(); }

}  // namespace qs::cli
