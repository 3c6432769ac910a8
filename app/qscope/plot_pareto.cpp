#include "app/qscope/plot_pareto.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/runs/project.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#ifdef QS_HAVE_PLOT
#include "ui/plots/pareto_file.h"
#endif

namespace qs::cli {
namespace {

// search.id and search.role of a run's config ("", "" when it is not a search run).
std::pair<std::string, std::string> searchRole(const runs::RunInfo& run) {
  try {
    const YAML::Node s = YAML::Load(run.configYaml)["search"];
    if (!s || !s["id"]) return {"", ""};
    return {s["id"].Scalar(), s["role"] ? s["role"].Scalar() : std::string("trial")};
  } catch (const YAML::Exception&) {
    return {"", ""};
  }
}

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
    auto project = runs::Project::open(project_);
    auto store = project.openStore();
    auto run = store.getRun(id_);
    auto [searchId, role] = searchRole(run);
    if (searchId.empty())
      throw Error("run " + std::to_string(id_) + " is not a search run (qscope runs list --kind search)");
    if (role != "pareto") {  // a trial: the newest finished summary of its search
      runs::RunFilter f;
      f.kind = "search";
      f.status = "finished";
      bool found = false;
      for (const auto& r : store.listRuns(f)) {
        auto [id, rl] = searchRole(r);
        if (id == searchId && rl == "pareto") {
          run = r;
          found = true;
          break;
        }
      }
      if (!found)
        throw Error("search " + searchId + " has no finished summary run yet (run `qscope search` to the end)");
    }
    const auto record = store.loadRun(run.id, false);
    std::string file;
    for (const auto& a : record.artifacts)
      if (a.kind == "pareto") file = store.artifactPath(a);
    if (file.empty()) throw Error("run " + std::to_string(run.id) + " has no pareto.json artifact");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(fs::readText(file));
    } catch (const nlohmann::json::exception& e) {
      throw fileError(file, std::string("is not valid JSON: ") + e.what());
    }
    plot::ParetoFileRequest req;
    int front = 0;
    // A search with an accuracy objective (acc:TASK) plots its accuracy: the front was chosen
    // on it, not on perplexity.
    const std::string accTask = j.contains("acc_task") && j["acc_task"].is_string() ? j["acc_task"].get<std::string>() : "";
    const char* yKey = accTask.empty() ? "ppl" : "acc";
    int64_t accN = 0;
    for (const auto& t : j.at("trials")) {
      plot::ParetoPoint p;
      p.bits = t.at("bits").is_number() ? t.at("bits").get<double>() : NAN;
      p.ppl = t.contains(yKey) && t.at(yKey).is_number() ? t.at(yKey).get<double>() : NAN;
      if (!accTask.empty() && t.contains("acc_n") && t["acc_n"].is_number()) accN = std::max(accN, t["acc_n"].get<int64_t>());
      p.front = t.at("front").get<bool>();
      p.feasible = t.at("feasible").get<bool>();
      p.trial = t.at("trial").get<int>();
      p.runId = t.at("run_id").get<int64_t>();
      front += p.front;
      req.points.push_back(p);
    }
    const std::string dataset = j.value("dataset", std::string("?"));
    req.title = "Pareto front · search " + searchId + " (" + j.value("algo", std::string("?")) + ")";
    req.subtitle = std::to_string(req.points.size()) + " trials, " + std::to_string(front) + " on the front; " +
                   (accTask.empty() ? "perplexity on " + dataset : accTask + " acc on " + std::to_string(accN) + " examples") +
                   "; model " + record.info.modelPath;
    req.yLabel = accTask.empty() ? "perplexity (" + dataset + ")" : accTask + " acc (" + std::to_string(accN) + " examples)";
    req.output = output_;
    req.width = width_;
    req.height = height_;
    req.scale = scale_;
    req.logY = logY_;
    req.labels = !noLabels_;
    req.dark = dark_;
    const auto result = plot::renderParetoFile(req);
    std::printf("wrote %s (%dx%d): search %s, %s\n", output_.c_str(), width_, height_, searchId.c_str(),
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
