// The Pareto view of a mixed-precision search: a real search (core/algo runSearch with a run
// store backend and a synthetic evaluation: perplexity and a PIQA accuracy that fall with the
// mantissa width) made in the test, its summary run read back point by point (references: the
// SearchResult the search returned - run ids, front flags, acc, configs), a click mapped to its
// point, the config export read back by the precision-config parser, and in the main window:
// Runs dock -> Pareto button -> view, a mouse press on a front point selects its trial's run.
#include <gtest/gtest.h>

#include <QDockWidget>
#include <QLabel>
#include <QMouseEvent>
#include <QPushButton>

#include <cmath>
#include <fstream>

#include "core/algo/precision_search.h"
#include "core/algo/search_space.h"
#include "core/algo/search_store.h"
#include "core/model/model.h"
#include "core/quant/format_density.h"
#include "core/quant/format_yaml.h"
#include "core/runs/project.h"
#include "core/util/fs.h"
#include "tests/support/expect_error.h"
#include "tests/ui/ui_test_app.h"
#include "ui/main_window.h"
#include "ui/pareto_view.h"
#include "ui/plots/pareto_data.h"
#include "ui/qcustomplot_include.h"
#include "ui/runs_panel.h"

namespace {

using qs::test::expectError;

std::vector<qs::model::SiteInfo> sites() {
  std::vector<qs::model::SiteInfo> out;
  for (int b = 0; b < 2; ++b)
    for (const char* n : {"self_attn.q_proj", "mlp.up_proj"}) {
      qs::model::SiteInfo s;
      s.name = "layers." + std::to_string(b) + "." + n;
      s.block = b;
      s.outFeatures = 64;
      s.inFeatures = 64;
      out.push_back(s);
    }
  return out;
}

struct Search {
  std::string project, runsPath;
  qs::algo::SearchResult result;
  int64_t summary = 0, other = 0;  // the summary run; a run that is not a search
};

const Search& search() {
  static const Search s = [] {
    Search out;
    const std::string dir = qs::test::tempDir("pareto_view");
    std::ofstream(dir + "/model.gguf") << "stub";
    auto project = qs::runs::Project::init(dir + "/project", dir + "/model.gguf", "fixture");
    out.project = project.dir();
    out.runsPath = project.runsPath();
    const auto space = qs::algo::parseSearchSpace(R"Y(
search:
  space:
    - name: "layers.*.self_attn.*"
      weight: {format: bfp, mantissa_width: [3, 4, 6, 8], block_size: 16}
    - name: "layers.*.mlp.*"
      per_site: true
      weight: {format: bfp, mantissa_width: [3, 4, 5, 6, 8], block_size: 16}
)Y",
                                                  "space.yaml");
    qs::algo::SearchRunInfo info;
    info.searchId = "s-pareto";
    info.modelPath = dir + "/model.gguf";
    info.dataset = "synthetic";
    info.evalYaml = "eval: {dataset: synthetic}\n";
    info.algo = "random";
    info.accTask = "piqa";
    auto fn = [](const qs::quant::LayerPrecision& lp, qs::jobs::Progress&) {
      double loss = 0;
      for (const auto& site : sites())
        loss += std::pow(2.0, -qs::quant::formatDensity(lp.precisionFor(site.name).weight).bitsPerElement);
      qs::algo::TrialEval e{10 + 100 * loss, "synthetic", 1};
      e.acc = 0.8 - loss;
      e.accStderr = 0.02;
      e.accN = 50;
      e.accProtocol = "synthetic";
      return e;
    };
    qs::algo::StoreTrialBackend backend(out.runsPath, info, "synthetic", fn);
    qs::algo::SearchOptions o;
    o.algo = qs::algo::SearchAlgo::Random;
    o.trials = 12;
    o.seed = 4;
    o.objectives = qs::algo::parseObjectives("acc:piqa,bits");
    out.result = qs::algo::runSearch(space, sites(), o, backend);
    out.summary = qs::algo::recordSearchSummary(out.runsPath, project.exportsDir(), info, o, space.toYaml(), out.result);
    qs::runs::NewRun nr;
    nr.name = "not a search";
    nr.kind = qs::runs::RunKind::Eval;
    qs::runs::RunWriter w(out.runsPath, nr);
    w.finish();
    out.other = w.id();
    return out;
  }();
  return s;
}

TEST(ParetoData, PointsMapToTheTrialRunsOfTheSearch) {
  const Search& s = search();
  ASSERT_EQ(s.result.trials.size(), 12u);
  const auto p = qs::plot::loadSearchPareto(s.runsPath, s.summary);
  EXPECT_EQ(p.summaryRunId, s.summary);
  EXPECT_EQ(p.accTask, "piqa");
  EXPECT_EQ(p.yLabel(), "piqa acc");
  ASSERT_EQ(p.points.size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    const auto& t = s.result.trials[i];
    EXPECT_EQ(p.points[i].runId, t.runId);
    EXPECT_GT(t.runId, 0);
    EXPECT_EQ(p.points[i].front, t.onFront);
    EXPECT_DOUBLE_EQ(p.points[i].ppl, t.acc);  // y is the accuracy objective
    EXPECT_DOUBLE_EQ(p.points[i].bits, t.weightBits);
    EXPECT_EQ(p.configs[i], t.config);
    EXPECT_EQ(p.indexOfRun(t.runId), static_cast<int>(i));
  }
  EXPECT_EQ(p.frontCount(), static_cast<int>(s.result.front.size()));
  std::vector<size_t> front = s.result.front;
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) { return s.result.trials[a].weightBits < s.result.trials[b].weightBits; });
  std::vector<int64_t> ids;
  for (size_t i : front) ids.push_back(s.result.trials[i].runId);
  EXPECT_EQ(p.frontRunIds(), ids);
  // Opened from a trial: the same search.
  const auto fromTrial = qs::plot::loadSearchPareto(s.runsPath, s.result.trials[3].runId);
  EXPECT_EQ(fromTrial.summaryRunId, s.summary);
  expectError([&] { qs::plot::loadSearchPareto(s.runsPath, s.other); }, "is not a search run");
  // Nearest point: at a point's own coordinates it is that point (or one at the same spot);
  // far from every point, none.
  for (size_t i = 0; i < p.points.size(); ++i) {
    const int k = qs::plot::nearestPoint(p, p.points[i].bits, p.points[i].ppl, 100, 1000, 5);
    ASSERT_GE(k, 0);
    EXPECT_DOUBLE_EQ(p.points[static_cast<size_t>(k)].bits, p.points[i].bits);
    EXPECT_DOUBLE_EQ(p.points[static_cast<size_t>(k)].ppl, p.points[i].ppl);
  }
  EXPECT_EQ(qs::plot::nearestPoint(p, 100, 100, 100, 1000, 5), -1);
}

TEST(ParetoData, ExportedConfigReadsBackAsTheTrialsConfig) {
  const Search& s = search();
  const auto p = qs::plot::loadSearchPareto(s.runsPath, s.summary);
  const int i = p.indexOfRun(s.result.trials[s.result.front[0]].runId);
  const std::string file = qs::test::tempDir("pareto_export") + "/trial.yaml";
  qs::plot::exportTrialConfig(p, i, file);
  const std::string text = qs::fs::readText(file);
  EXPECT_EQ(text.rfind("# search s-pareto trial ", 0), 0u);
  const auto lp = qs::quant::parsePrecisionConfig(text, file);
  EXPECT_EQ(qs::quant::precisionToYaml(lp), s.result.trials[s.result.front[0]].config);
  expectError([&] { qs::plot::exportTrialConfig(p, 99, file); }, "no point 99");
}

void press(QWidget* w, const QPoint& at) {
  QMouseEvent down(QEvent::MouseButtonPress, QPointF(at), w->mapToGlobal(QPointF(at)), Qt::LeftButton, Qt::LeftButton,
                   Qt::NoModifier);
  QCoreApplication::sendEvent(w, &down);
  QMouseEvent up(QEvent::MouseButtonRelease, QPointF(at), w->mapToGlobal(QPointF(at)), Qt::LeftButton, Qt::NoButton,
                 Qt::NoModifier);
  QCoreApplication::sendEvent(w, &up);
}

TEST(ParetoView, RunsDockOpensTheViewAndAClickSelectsTheTrialRun) {
  qs::test::uiApp();
  const Search& s = search();
  qs::ui::MainWindow w;
  w.resize(1400, 900);
  w.show();
  auto* runs = w.runsPanel();
  ASSERT_EQ(runs->openProject(QString::fromStdString(s.project)), "");
  runs->selectRuns({s.other});
  EXPECT_FALSE(runs->paretoButton()->isEnabled());  // not a search run
  runs->selectRuns({s.summary});
  ASSERT_TRUE(runs->paretoButton()->isEnabled());
  runs->paretoButton()->click();
  qs::ui::ParetoView* view = w.paretoView();
  ASSERT_TRUE(qs::test::waitUntil([&] { return view->isVisible(); }));
  ASSERT_EQ(view->search().points.size(), 12u);
  EXPECT_EQ(view->selectedPoint(), -1);
  EXPECT_FALSE(view->exportButton()->isEnabled());

  // A press on the pixel of the highest-bits front point selects it and its run.
  const auto& pts = view->search().points;
  int target = -1;
  for (size_t i = 0; i < pts.size(); ++i)
    if (pts[i].front && (target < 0 || pts[i].bits > pts[static_cast<size_t>(target)].bits)) target = static_cast<int>(i);
  ASSERT_GE(target, 0);
  QCustomPlot* plot = view->plot();
  plot->replot();
  const QPoint at(static_cast<int>(std::lround(plot->xAxis->coordToPixel(pts[static_cast<size_t>(target)].bits))),
                  static_cast<int>(std::lround(plot->yAxis->coordToPixel(pts[static_cast<size_t>(target)].ppl))));
  EXPECT_EQ(view->pointAt(at), target);
  press(plot, at);
  EXPECT_EQ(view->selectedPoint(), target);
  EXPECT_EQ(runs->selectedRuns(), std::vector<qint64>{pts[static_cast<size_t>(target)].runId});
  EXPECT_TRUE(view->details()->text().contains(QStringLiteral("on the front"))) << view->details()->text().toStdString();
  EXPECT_TRUE(view->exportButton()->isEnabled());
  // A press far from every point (the widget's corner, above the axes) keeps the selection.
  EXPECT_EQ(view->pointAt(QPoint(1, 1)), -1);
  press(plot, QPoint(1, 1));
  EXPECT_EQ(view->selectedPoint(), target);

  const std::string file = qs::test::tempDir("pareto_view_export") + "/cfg.yaml";
  EXPECT_EQ(view->exportConfig(QString::fromStdString(file)), "");
  const auto lp = qs::quant::parsePrecisionConfig(qs::fs::readText(file), file);
  EXPECT_EQ(qs::quant::precisionToYaml(lp), s.result.trials[static_cast<size_t>(target)].config);

  // Opened from a trial run: that trial is selected.
  EXPECT_EQ(view->showSearch(runs->runsPath(), s.result.trials[2].runId), "");
  EXPECT_EQ(view->selectedPoint(), 2);
  EXPECT_EQ(runs->selectedRuns(), std::vector<qint64>{s.result.trials[2].runId});
  EXPECT_NE(view->showSearch(runs->runsPath(), s.other), "");
}

TEST(ParetoView, Screenshot) {
  const QByteArray out = qgetenv("QS_PLOT_OUT");
  if (out.isEmpty()) GTEST_SKIP() << "set QS_PLOT_OUT=folder to write pareto_view.png";
  qs::test::uiApp();
  const Search& s = search();
  qs::ui::ParetoView view;
  view.resize(900, 560);
  view.show();
  ASSERT_EQ(view.showSearch(QString::fromStdString(s.runsPath), s.summary), "");
  view.selectPoint(static_cast<int>(s.result.front[0]));
  qs::test::waitUntil([] { return false; }, 200);
  ASSERT_TRUE(view.grab().save(QString::fromUtf8(out) + QStringLiteral("/pareto_view.png")));
}

}  // namespace
