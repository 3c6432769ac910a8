// qscope runs list|show|compare|delete: the project's run store from the terminal (the GUI's
// run browser and compare view read the same queries: core/runs/run_store.h).
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/runs/project.h"
#include "core/util/error.h"
#include "core/workflow/cluster_jobs.h"

namespace qs::cli {
namespace {

using nlohmann::json;

// Left-aligned text columns, right-aligned numeric ones, two spaces between.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> rightAligned = {})
      : right_(std::move(rightAligned)) {
    rows_.push_back(std::move(header));
  }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.size() <= 1; }
  void print(const std::string& indent = "  ") const {
    std::vector<size_t> w;
    for (const auto& r : rows_)
      for (size_t i = 0; i < r.size(); ++i) {
        if (w.size() <= i) w.push_back(0);
        w[i] = std::max(w[i], r[i].size());
      }
    for (const auto& r : rows_) {
      std::string line = indent;
      for (size_t i = 0; i < r.size(); ++i) {
        bool right = i < right_.size() && right_[i];
        std::string pad(w[i] - r[i].size(), ' ');
        line += right ? pad + r[i] : r[i] + (i + 1 < r.size() ? pad : "");
        if (i + 1 < r.size()) line += "  ";
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::printf("%s\n", line.c_str());
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

std::string num(double v, int digits = 5) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string duration(double s) {
  if (std::isnan(s)) return "-";
  char buf[64];
  if (s < 120) std::snprintf(buf, sizeof buf, "%.1f s", s);
  else if (s < 7200) std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  else std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  return buf;
}

std::string shortTime(const std::string& iso) {
  // "2024-05-01T12:00:00Z" -> "2024-05-01 12:00"
  if (iso.size() < 16) return iso.empty() ? "-" : iso;
  return iso.substr(0, 10) + " " + iso.substr(11, 5);
}

json infoJson(const runs::RunInfo& r) {
  return {{"id", r.id},
          {"name", r.name},
          {"kind", runs::toString(r.kind)},
          {"status", runs::toString(r.status)},
          {"status_message", r.statusMessage},
          {"created", r.created},
          {"finished", r.finished},
          {"duration_s", std::isnan(r.durationS) ? json(nullptr) : json(r.durationS)},
          {"model_path", r.modelPath},
          {"model_fingerprint", r.modelFingerprint},
          {"tool_version", r.toolVersion},
          {"device", r.device},
          {"notes", r.notes}};
}

json metricJson(const runs::Metric& m) {
  return {{"key", m.key}, {"value", m.value},   {"protocol", m.protocol},
          {"unit", m.unit}, {"n", m.n},         {"stderr", std::isnan(m.stdError) ? json(nullptr) : json(m.stdError)}};
}

// Options shared by show/compare/delete: which project.
struct ProjectOption {
  std::string dir = ".";
  void add(CLI::App* cmd) { cmd->add_option("--project,-p", dir, "project folder")->capture_default_str(); }
};

runs::RunStore openStore(const std::string& dir) { return runs::Project::open(dir).openStore(); }

class RunsCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("runs", "List, show, compare and delete the runs of a project");
    cmd->require_subcommand(1);

    list_ = cmd->add_subcommand("list", "List runs, newest first");
    auto* positional = list_->add_option("project", listProject_, "project folder")->capture_default_str();
    // -p/--project as in every other command; the positional form stays for `runs list DIR`.
    list_->add_option("-p,--project", listProject_, "project folder (same as the positional)")
        ->excludes(positional);
    list_->add_option("--kind", filter_.kind, "analysis, quantize, eval, search or train");
    list_->add_option("--status", filter_.status, "running, finished, failed or cancelled");
    list_->add_option("--name", filter_.nameContains, "only runs whose name contains this text");
    list_->add_option("--limit", filter_.limit, "newest N runs (0 = all)");
    list_->add_flag("--json", json_, "print as JSON on stdout");

    show_ = cmd->add_subcommand("show", "Everything stored for one run");
    show_->add_option("id", showId_, "run id (see `qscope runs list`)")->required();
    showProject_.add(show_);
    show_->add_flag("--arrays", arrays_, "with --json: include the per-channel arrays");
    show_->add_flag("--json", json_, "print as JSON on stdout");

    compare_ = cmd->add_subcommand("compare", "Compare runs: config differences, metrics, per-layer series");
    compare_->add_option("ids", compareIds_, "two or more run ids")->required()->expected(2, 64);
    compareProject_.add(compare_);
    compare_->add_flag("--no-series", noSeries_, "leave out the per-layer series tables");
    compare_->add_flag("--json", json_, "print as JSON on stdout");

    import_ = cmd->add_subcommand("import", "Import the runs of remote (Slurm) jobs that have ended, each exactly once "
                                            "(same as `qscope jobs sync`)");
    importProject_.add(import_);
    delete_ = cmd->add_subcommand("delete", "Delete a run, its rows and its files under exports/");
    delete_->add_option("id", deleteId_, "run id")->required();
    deleteProject_.add(delete_);
    delete_->add_flag("--json", json_, "print what was deleted as JSON on stdout");
    return cmd;
  }

  int run() override {
    if (list_->parsed()) return list();
    if (show_->parsed()) return show();
    if (compare_->parsed()) return compare();
    if (import_->parsed()) return importJobs();
    return remove();
  }

 private:
  int importJobs() {
    workflow::ClusterOptions o;
    o.backend = "slurm";
    const auto s = workflow::syncJobs(importProject_.dir, o);
    std::printf("%s\n", workflow::describeSync(s.imported, s.failed, s.active).c_str());
    return 0;
  }

  int list() {
    auto project = runs::Project::open(listProject_);
    auto store = project.openStore();
    auto rows = store.listRuns(filter_);
    if (json_) {
      json out = json::array();
      for (const auto& r : rows) out.push_back(infoJson(r));
      printJson({{"project", project.name()}, {"dir", project.dir()}, {"runs", out}});
      return 0;
    }
    if (rows.empty()) {
      std::printf("no runs in project '%s'%s\n", project.name().c_str(),
                  filter_.kind.empty() && filter_.status.empty() && filter_.nameContains.empty() ? ""
                                                                                                 : " match the filter");
      return 0;
    }
    Table t({"id", "kind", "status", "name", "created", "duration", "device"}, {true});
    for (const auto& r : rows)
      t.add({std::to_string(r.id), runs::toString(r.kind), runs::toString(r.status), r.name, shortTime(r.created),
             duration(r.durationS), r.device.empty() ? "-" : r.device});
    t.print("");
    return 0;
  }

  int show() {
    auto store = openStore(showProject_.dir);
    auto rec = store.loadRun(showId_, json_ && arrays_);
    if (json_) {
      json out = infoJson(rec.info);
      out["config_yaml"] = rec.info.configYaml;
      out["metrics"] = json::array();
      for (const auto& m : rec.metrics) out["metrics"].push_back(metricJson(m));
      out["site_stats"] = json::array();
      for (const auto& s : rec.siteStats) {
        json j = {{"layer", s.layer},
                  {"site", s.site},
                  {"kind", s.kind},
                  {"channels", s.channels},
                  {"max_abs", s.maxAbs},
                  {"kurtosis_mean", s.kurtosisMean},
                  {"kurtosis_max", s.kurtosisMax},
                  {"outlier_channels", s.outlierChannels}};
        if (!s.extraJson.empty()) j["extra"] = json::parse(s.extraJson, nullptr, false);
        if (arrays_)
          for (const auto& [name, v] : s.arrays) j["arrays"][name] = v;
        out["site_stats"].push_back(j);
      }
      out["layer_results"] = json::array();
      for (const auto& r : rec.layerResults) {
        json j = {{"layer", r.layer}, {"site", r.site}, {"rel_error", r.relError}, {"seconds", r.seconds},
                  {"bits", r.bits}};
        if (!r.extraJson.empty()) j["extra"] = json::parse(r.extraJson, nullptr, false);
        out["layer_results"].push_back(j);
      }
      out["artifacts"] = json::array();
      for (const auto& a : rec.artifacts)
        out["artifacts"].push_back({{"kind", a.kind}, {"path", a.path}, {"bytes", a.bytes}, {"checksum", a.checksum}});
      printJson(out);
      return 0;
    }
    const auto& i = rec.info;
    std::printf("run %lld  %s  %s  \"%s\"\n", static_cast<long long>(i.id), runs::toString(i.kind).c_str(),
                runs::toString(i.status).c_str(), i.name.c_str());
    if (!i.statusMessage.empty()) std::printf("  message   %s\n", i.statusMessage.c_str());
    std::printf("  created   %s   finished %s   duration %s\n", shortTime(i.created).c_str(),
                shortTime(i.finished).c_str(), duration(i.durationS).c_str());
    std::printf("  model     %s%s\n", i.modelPath.empty() ? "-" : i.modelPath.c_str(),
                i.modelFingerprint.empty() ? "" : ("  (" + i.modelFingerprint + ")").c_str());
    std::printf("  device    %s   qscope %s\n", i.device.empty() ? "-" : i.device.c_str(),
                i.toolVersion.empty() ? "-" : i.toolVersion.c_str());
    if (!i.notes.empty()) std::printf("  notes     %s\n", i.notes.c_str());
    if (!rec.metrics.empty()) {
      std::printf("\nmetrics\n");
      Table t({"key", "value", "stderr", "unit", "n", "protocol"}, {false, true, true, false, true});
      for (const auto& m : rec.metrics)
        t.add({m.key, num(m.value, 6), num(m.stdError, 3), m.unit, m.n ? std::to_string(m.n) : "-", m.protocol});
      t.print();
    }
    if (!rec.siteStats.empty()) {
      std::printf("\nsite statistics (%zu sites)\n", rec.siteStats.size());
      Table t({"layer", "site", "kind", "channels", "max|x|", "kurt mean", "kurt max", "outliers"},
              {true, false, false, true, true, true, true, true});
      for (const auto& s : rec.siteStats)
        t.add({std::to_string(s.layer), s.site, s.kind, std::to_string(s.channels), num(s.maxAbs), num(s.kurtosisMean),
               num(s.kurtosisMax), std::to_string(s.outlierChannels)});
      t.print();
    }
    if (!rec.layerResults.empty()) {
      std::printf("\nlayer results\n");
      Table t({"layer", "site", "rel error", "bits", "seconds"}, {true, false, true, true, true});
      for (const auto& r : rec.layerResults)
        t.add({std::to_string(r.layer), r.site, num(r.relError, 4), num(r.bits, 4), num(r.seconds, 3)});
      t.print();
    }
    if (!rec.artifacts.empty()) {
      std::printf("\nartifacts\n");
      Table t({"kind", "path", "bytes", "checksum"}, {false, false, true});
      for (const auto& a : rec.artifacts) t.add({a.kind, a.path, formatThousands(a.bytes), a.checksum});
      t.print();
    }
    if (!i.configYaml.empty()) {
      std::printf("\nconfig\n");
      std::istringstream in(i.configYaml);
      for (std::string line; std::getline(in, line);) std::printf("  %s\n", line.c_str());
    }
    return 0;
  }

  int compare() {
    auto store = openStore(compareProject_.dir);
    auto c = store.compareRuns(compareIds_);
    if (json_) {
      json out;
      out["runs"] = json::array();
      for (const auto& r : c.runs) out["runs"].push_back(infoJson(r));
      out["config_diff"] = json::array();
      for (const auto& d : c.configDiff) {
        json v = json::array();
        for (const auto& x : d.values) v.push_back(x ? json(*x) : json(nullptr));
        out["config_diff"].push_back({{"key", d.key}, {"values", v}});
      }
      out["metrics"] = json::array();
      for (const auto& m : c.metrics) {
        json v = json::array();
        for (const auto& x : m.values) v.push_back(x ? metricJson(*x) : json(nullptr));
        out["metrics"].push_back({{"key", m.key}, {"values", v}});
      }
      out["series"] = json::array();
      for (const auto& s : c.series) {
        json rows = json::array();
        for (const auto& r : s.rows) {
          json v = json::array();
          for (const auto& x : r.values) v.push_back(x ? json(*x) : json(nullptr));
          rows.push_back({{"layer", r.layer}, {"site", r.site}, {"values", v}});
        }
        out["series"].push_back({{"name", s.name}, {"rows", rows}});
      }
      printJson(out);
      return 0;
    }
    size_t n = c.runs.size();
    std::vector<std::string> header = {""};
    std::vector<bool> right = {false};
    for (const auto& r : c.runs) {
      header.push_back("#" + std::to_string(r.id));
      right.push_back(true);
    }
    auto row = [&](const std::string& label, auto&& cell) {
      std::vector<std::string> r = {label};
      for (size_t i = 0; i < n; ++i) r.push_back(cell(i));
      return r;
    };
    Table runsTable(header, right);
    runsTable.add(row("name", [&](size_t i) { return c.runs[i].name; }));
    runsTable.add(row("kind", [&](size_t i) { return runs::toString(c.runs[i].kind); }));
    runsTable.add(row("status", [&](size_t i) { return runs::toString(c.runs[i].status); }));
    runsTable.add(row("created", [&](size_t i) { return shortTime(c.runs[i].created); }));
    runsTable.add(row("duration", [&](size_t i) { return duration(c.runs[i].durationS); }));
    runsTable.print("");

    std::printf("\nconfig differences");
    if (c.configDiff.empty()) {
      std::printf(": none\n");
    } else {
      std::printf(" (%zu keys)\n", c.configDiff.size());
      Table t(header, right);
      for (const auto& d : c.configDiff)
        t.add(row(d.key, [&](size_t i) { return d.values[i] ? *d.values[i] : std::string("(absent)"); }));
      t.print();
    }

    if (!c.metrics.empty()) {
      std::printf("\nmetrics\n");
      auto h = header;
      h.push_back("unit / protocol");
      Table t(h, right);
      for (const auto& m : c.metrics) {
        // Unit and protocol of the first run that has the metric; when the runs' protocols differ
        // (e.g. different calibration sample counts) say so rather than show one run's as all.
        std::string about, protocol;
        bool protocolsDiffer = false, first = true;
        for (const auto& x : m.values) {
          if (!x) continue;
          if (first) {
            about = x->unit;
            protocol = x->protocol;
            first = false;
          } else if (x->protocol != protocol) {
            protocolsDiffer = true;
          }
        }
        if (protocolsDiffer) protocol = "protocols differ (runs show ID)";
        if (!protocol.empty()) about = about.empty() ? protocol : about + ", " + protocol;
        auto r = row(m.key, [&](size_t i) { return m.values[i] ? num(m.values[i]->value, 6) : std::string("-"); });
        r.push_back(about);
        t.add(r);
      }
      t.print();
    }

    if (!noSeries_) {
      for (const auto& s : c.series) {
        bool same = true;
        for (const auto& r : s.rows)
          for (const auto& v : r.values) same = same && v && r.values[0] && *v == *r.values[0];
        if (same) {
          std::printf("\n%s by layer: identical in all runs (%zu sites)\n", s.name.c_str(), s.rows.size());
          continue;
        }
        std::printf("\n%s by layer\n", s.name.c_str());
        std::vector<std::string> h = {"layer", "site"};
        std::vector<bool> rr = {true, false};
        for (size_t i = 1; i < header.size(); ++i) h.push_back(header[i]), rr.push_back(true);
        if (n == 2) h.push_back("change"), rr.push_back(true);
        Table t(h, rr);
        for (const auto& r : s.rows) {
          std::vector<std::string> cells = {std::to_string(r.layer), r.site};
          for (const auto& v : r.values) cells.push_back(v ? num(*v) : "-");
          if (n == 2) {
            std::string change = "-";
            if (r.values[0] && r.values[1] && *r.values[0] != 0) {
              char buf[32];
              std::snprintf(buf, sizeof buf, "%+.1f%%", 100.0 * (*r.values[1] - *r.values[0]) / std::fabs(*r.values[0]));
              change = buf;
            }
            cells.push_back(change);
          }
          t.add(cells);
        }
        t.print();
      }
    }
    return 0;
  }

  int remove() {
    auto store = openStore(deleteProject_.dir);
    auto info = store.getRun(deleteId_);
    auto removed = store.deleteRun(deleteId_);
    if (json_) {
      printJson({{"deleted", deleteId_}, {"name", info.name}, {"removed_files", removed}});
      return 0;
    }
    std::printf("deleted run %lld (\"%s\")\n", static_cast<long long>(deleteId_), info.name.c_str());
    for (const auto& f : removed) std::printf("  removed %s\n", f.c_str());
    return 0;
  }

  CLI::App *list_ = nullptr, *show_ = nullptr, *compare_ = nullptr, *delete_ = nullptr, *import_ = nullptr;
  std::string listProject_ = ".";
  runs::RunFilter filter_;
  ProjectOption showProject_, compareProject_, deleteProject_, importProject_;
  int64_t showId_ = 0, deleteId_ = 0;
  std::vector<int64_t> compareIds_;
  bool json_ = false, arrays_ = false, noSeries_ = false;
};

}  // namespace

std::unique_ptr<Command> makeRunsCommand() { return std::make_unique<RunsCommand>(); }

}  // namespace qs::cli
