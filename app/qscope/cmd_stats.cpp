// qscope stats RUN_ID --layer L --site S: one site's stored statistics: per-channel arrays as
// CSV (for numpy/pandas/spreadsheets), JSON, or a short text report with the largest channels
// and the outlier tokens.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/analysis/stat_names.h"
#include "core/runs/project.h"
#include "core/util/error.h"
#include "core/util/strings.h"

namespace qs::cli {
namespace {

using nlohmann::json;
namespace names = analysis::names;

std::string num(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

class StatsCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("stats", "Per-channel statistics of one site of a stored run (CSV, JSON or text)");
    cmd->footer(
        "CSV columns: channel,min,max,mean,var,absmax,kurtosis,center,half_range (+ any other per-channel arrays).\n"
        "var is the population variance, kurtosis Pearson's m4/m2^2 (Gaussian = 3), center = (max+min)/2,\n"
        "half_range = (max-min)/2. Weights (--kind weight) are per input column; --out-channels gives the\n"
        "per-output-row arrays, --positions the per-position token absmax of an activation site.");
    cmd->add_option("id", id_, "run id (see `qscope runs list`)")->required();
    cmd->add_option("--layer,-l", layer_, "layer (block) index")->required();
    cmd->add_option("--site,-s", site_, "site: q_proj, fc1, down_proj, block_out, ... (self_attn.q_proj works too)")
        ->required();
    cmd->add_option("--kind,-k", kind_, "input, residual, weight, matmul or softmax (default: residual for block_out, matmul for *_matmul, "
                    "softmax for softmax_in, else input)");
    cmd->add_option("--project,-p", project_, "project folder")->capture_default_str();
    auto* csv = cmd->add_flag("--csv", csv_, "per-channel arrays as CSV on stdout");
    cmd->add_flag("--json", json_, "everything stored for the site as JSON on stdout")->excludes(csv);
    cmd->add_flag("--out-channels", outChannels_, "weights: per output row instead of per input column");
    cmd->add_flag("--positions", positions_, "activations: per-position token absmax instead of channels");
    return cmd;
  }

  int run() override {
    auto store = runs::Project::open(project_).openStore();
    auto info = store.getRun(id_);
    auto all = store.loadSiteStats(id_, layer_, "", true);
    if (all.empty())
      throw Error("run " + std::to_string(id_) + " has no site statistics for layer " + std::to_string(layer_) +
                  layersHint(store));
    std::string kind = kind_;
    if (kind.empty())
      kind = site_ == names::kBlockOut                ? names::kResidual
             : str::endsWith(site_, "_matmul")         ? names::kMatmul
             : str::endsWith(site_, names::kSoftmaxIn) ? names::kSoftmax
                                                       : names::kInput;
    std::vector<const runs::SiteStat*> hits;
    for (const auto& s : all)
      if (s.kind == kind && (s.site == site_ || str::endsWith(site_, "." + s.site) || str::endsWith(s.site, "." + site_)))
        hits.push_back(&s);
    // An exact name wins over suffix matches (GPT-2: "c_proj" is ambiguous, "attn.c_proj" is not).
    auto exact = std::find_if(hits.begin(), hits.end(), [&](const runs::SiteStat* s) { return s->site == site_; });
    if (exact != hits.end()) hits = {*exact};
    if (hits.size() != 1) {
      std::string avail;
      for (const auto& s : all) avail += "\n  " + s.site + " (" + s.kind + ")";
      throw Error(std::string(hits.empty() ? "no" : "more than one") + " site '" + site_ + "' of kind " + kind +
                  " in layer " + std::to_string(layer_) + " of run " + std::to_string(id_) + "; stored there:" + avail);
    }
    const runs::SiteStat& s = *hits.front();
    if (json_) return printJsonSite(info, s);
    if (csv_) return printCsv(s);
    return printText(info, s);
  }

 private:
  std::string layersHint(const runs::RunStore& store) const {
    auto stats = store.loadSiteStats(id_, -1, "", false);
    if (stats.empty()) return " (it has none at all: is it an analysis run?)";
    int lo = stats.front().layer, hi = lo;
    for (const auto& s : stats) lo = std::min(lo, s.layer), hi = std::max(hi, s.layer);
    return " (it has layers " + std::to_string(lo) + ".." + std::to_string(hi) + ")";
  }

  // The arrays the CSV holds, in a fixed order: the standard ones first, then any others of the
  // same length.
  std::vector<std::pair<std::string, const std::vector<float>*>> columns(const runs::SiteStat& s) const {
    std::vector<std::pair<std::string, const std::vector<float>*>> cols;
    if (positions_) {
      auto it = s.arrays.find(names::kTokenAbsmax);
      if (it == s.arrays.end()) throw Error("site " + s.site + " (" + s.kind + ") has no per-position token absmax");
      cols.emplace_back(names::kTokenAbsmax, &it->second);
      return cols;
    }
    const std::string prefix = outChannels_ ? names::kOutPrefix : "";
    if (outChannels_ && s.kind != names::kWeight) throw Error("--out-channels is for weight sites (--kind weight)");
    size_t n = 0;
    for (const char* k : {names::kMin, names::kMax, names::kMean, names::kVar, names::kAbsmax, names::kKurtosis,
                          names::kCenter, names::kHalfRange}) {
      auto it = s.arrays.find(prefix + k);
      if (it == s.arrays.end()) continue;
      if (cols.empty()) n = it->second.size();
      if (it->second.size() == n) cols.emplace_back(k, &it->second);
    }
    if (!outChannels_)
      for (const auto& [k, v] : s.arrays) {
        bool known = std::any_of(cols.begin(), cols.end(), [&](const auto& c) { return c.first == k; });
        if (!known && v.size() == n && n > 0 && k.rfind(names::kOutPrefix, 0) != 0 && k != names::kTokenAbsmax)
          cols.emplace_back(k, &v);
      }
    if (cols.empty()) throw Error("site " + s.site + " (" + s.kind + ") has no per-channel arrays stored");
    return cols;
  }

  int printCsv(const runs::SiteStat& s) const {
    auto cols = columns(s);
    std::string line = positions_ ? "position" : (outChannels_ ? "row" : "channel");
    for (const auto& c : cols) line += "," + c.first;
    std::printf("%s\n", line.c_str());
    const size_t n = cols.front().second->size();
    for (size_t i = 0; i < n; ++i) {
      line = std::to_string(i);
      for (const auto& c : cols) line += "," + num((*c.second)[i]);
      std::printf("%s\n", line.c_str());
    }
    return 0;
  }

  int printJsonSite(const runs::RunInfo& info, const runs::SiteStat& s) const {
    json j = {{"run", info.id},
              {"layer", s.layer},
              {"site", s.site},
              {"kind", s.kind},
              {"channels", s.channels},
              {"max_abs", s.maxAbs},
              {"kurtosis_mean", std::isfinite(s.kurtosisMean) ? json(s.kurtosisMean) : json(nullptr)},
              {"kurtosis_max", std::isfinite(s.kurtosisMax) ? json(s.kurtosisMax) : json(nullptr)},
              {"outlier_channels", s.outlierChannels}};
    if (!s.extraJson.empty()) j["extra"] = json::parse(s.extraJson, nullptr, false);
    for (const auto& [k, v] : s.arrays) {
      json a = json::array();
      for (float x : v) a.push_back(std::isfinite(x) ? json(x) : json(nullptr));
      j["arrays"][k] = a;
    }
    printJson(j);
    return 0;
  }

  int printText(const runs::RunInfo& info, const runs::SiteStat& s) const {
    std::printf("run %lld \"%s\", layer %d, %s (%s), %lld channels\n", static_cast<long long>(info.id),
                info.name.c_str(), s.layer, s.site.c_str(), s.kind.c_str(), static_cast<long long>(s.channels));
    std::printf("  max|x| %.5g   kurtosis mean %.4g max %.4g   outlier channels %lld\n", s.maxAbs, s.kurtosisMean,
                s.kurtosisMax, static_cast<long long>(s.outlierChannels));
    auto abs = s.arrays.find(std::string(outChannels_ ? names::kOutPrefix : "") + names::kAbsmax);
    if (abs != s.arrays.end() && !abs->second.empty()) {
      const auto& a = abs->second;
      std::vector<size_t> idx(a.size());
      std::iota(idx.begin(), idx.end(), 0);
      size_t k = std::min<size_t>(10, idx.size());
      std::partial_sort(idx.begin(), idx.begin() + static_cast<long>(k), idx.end(), [&](size_t x, size_t y) { return a[x] > a[y]; });
      auto get = [&](const char* name, size_t i) {
        auto it = s.arrays.find(name);
        return it != s.arrays.end() && i < it->second.size() ? num(it->second[i]) : std::string("-");
      };
      std::printf("\n  largest channels by absmax\n  %8s %12s %12s %12s %12s %10s\n", "channel", "min", "max", "center",
                  "absmax", "kurtosis");
      for (size_t j = 0; j < k; ++j) {
        size_t i = idx[j];
        std::printf("  %8zu %12s %12s %12s %12s %10s\n", i, get(names::kMin, i).c_str(), get(names::kMax, i).c_str(),
                    get(names::kCenter, i).c_str(), num(a[i]).c_str(), get(names::kKurtosis, i).c_str());
      }
    }
    json extra = json::parse(s.extraJson.empty() ? "{}" : s.extraJson, nullptr, false);
    if (extra.is_object() && extra.contains("top_tokens") && !extra["top_tokens"].empty()) {
      std::printf("\n  outlier tokens (largest |x| over channels)\n  %10s %8s %8s %8s  %s\n", "|x|", "sample", "pos",
                  "channel", "token");
      for (const auto& t : extra["top_tokens"])
        std::printf("  %10s %8lld %8lld %8lld  #%lld '%s'\n", num(t.value("absmax", 0.0)).c_str(),
                    static_cast<long long>(t.value("sample", -1)), static_cast<long long>(t.value("position", -1)),
                    static_cast<long long>(t.value("channel", -1)), static_cast<long long>(t.value("id", -1)),
                    t.value("text", std::string()).c_str());
    }
    std::printf("\n  --csv for all %lld channels\n", static_cast<long long>(s.channels));
    return 0;
  }

  int64_t id_ = 0;
  int layer_ = 0;
  std::string site_, kind_, project_ = ".";
  bool csv_ = false, json_ = false, outChannels_ = false, positions_ = false;
};

}  // namespace

std::unique_ptr<Command> makeStatsCommand() { return std::make_unique<StatsCommand>(); }

}  // namespace qs::cli
