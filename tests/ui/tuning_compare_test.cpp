// Widget-free logic of the Tuning panel (core/workflow/tuning_document.h, tuning_check.h) and of
// the Compare view (ui/plots/compare_data.h), plus the Tuning panel's control <-> YAML binding.
#include <gtest/gtest.h>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSpinBox>

#include <cmath>

#include "core/util/error.h"
#include "core/workflow/tuning_check.h"
#include "core/workflow/tuning_document.h"
#include "tests/ui/ui_test_app.h"
#include "ui/plots/compare_data.h"
#include "ui/tuning_panel.h"

namespace {

using qs::workflow::TuningDocument;

TEST(TuningDocument, SetAndGetGoThroughOneKeyPath) {
  TuningDocument d;
  d.set("quantize.wbits", "3");
  d.set("quant.a_qconfig.bit", "6");
  EXPECT_EQ(d.get("quantize.wbits"), "3");
  EXPECT_EQ(d.get("quant.a_qconfig.bit"), "6");
  EXPECT_EQ(d.get("quantize.groupsize"), "") << "absent keys read as empty";
  d.set("quantize.wbits", "4");  // editing one key leaves its neighbours alone
  EXPECT_EQ(d.get("quantize.wbits"), "4");
  EXPECT_EQ(d.get("quant.a_qconfig.bit"), "6");
  // The text is plain YAML a user can read and edit.
  EXPECT_NE(d.yaml().find("wbits: 4"), std::string::npos) << d.yaml();
}

TEST(TuningDocument, EditedYamlRoundTripsIntoEveryControlKey) {
  TuningDocument d;
  ASSERT_EQ(d.setYaml("quantize:\n  method: quantease\n  wbits: 3\n  outlier: 0.01\n"
                      "quant:\n  a_qconfig:\n    bit: 6\n    quantizer: TokenFixedFakeQuantize\n  migrate: false\n"),
            "");
  EXPECT_EQ(d.get("quantize.method"), "quantease");
  EXPECT_EQ(d.get("quant.migrate"), "false");
  // The outlier control shows percent; the YAML holds the fraction OS+/QuantEase use.
  const auto* outlier = qs::workflow::findTuningControl("quantize.outlier");
  ASSERT_NE(outlier, nullptr);
  EXPECT_EQ(d.controlValue(*outlier), "1");
  d.setControlValue(*outlier, "2.5");
  EXPECT_EQ(d.get("quantize.outlier"), "0.025");
  // Re-reading the emitted text gives the same values.
  TuningDocument e;
  ASSERT_EQ(e.setYaml(d.yaml()), "");
  for (const auto& c : qs::workflow::tuningControls()) EXPECT_EQ(e.get(c.key), d.get(c.key)) << c.key;
}

TEST(TuningDocument, ParseErrorLeavesTheDocumentAlone) {
  TuningDocument d;
  d.set("quantize.wbits", "4");
  const std::string err = d.setYaml("quantize:\n  wbits: [4\n");
  EXPECT_NE(err.find("tuning YAML: line"), std::string::npos) << err;
  EXPECT_EQ(d.get("quantize.wbits"), "4");
}

TEST(TuningDocument, PresetReplacesOnlyItsSections) {
  TuningDocument d;
  d.set("quantize.wbits", "8");
  d.set("quant.a_qconfig.bit", "6");
  ASSERT_EQ(d.applyPreset("quantize:\n  method: rtn\n  wbits: 4\n  groupsize: 128\n", "p.yaml"), "");
  EXPECT_EQ(d.get("quantize.method"), "rtn");
  EXPECT_EQ(d.get("quant.a_qconfig.bit"), "6") << "the activation section is not in the preset";
  EXPECT_NE(d.applyPreset("model:\n  x: 1\n", "bad.yaml").find("bad.yaml"), std::string::npos);
  EXPECT_EQ(d.section("quantize").rfind("quantize:", 0), 0u);
  EXPECT_EQ(d.section("nothing"), "");
}

TEST(TuningDocument, EveryControlKeyIsAKeyTheCoreParsers) {
  // Each control's key, set to a legal value, is accepted by the core's parser; a key the core
  // does not know would be rejected as "unknown key" (checked with a made-up one below).
  TuningDocument d;
  ASSERT_EQ(d.setYaml(qs::workflow::defaultTuningYaml()), "");
  for (const auto& c : qs::workflow::tuningControls()) {
    ASSERT_TRUE(d.has(c.key)) << c.key << " is missing from the defaults";
    EXPECT_EQ(qs::workflow::checkTuning(d.yaml()).error, "") << c.key;
  }
  d.set("quantize.wbitz", "4");
  EXPECT_NE(qs::workflow::checkTuning(d.yaml()).error.find("wbitz"), std::string::npos);
}

TEST(TuningCheck, InvalidValuesGiveTheCoresMessageNamingTheKey) {
  TuningDocument d;
  ASSERT_EQ(d.setYaml(qs::workflow::defaultTuningYaml()), "");
  d.set("quantize.wbits", "1");
  const std::string err = qs::workflow::checkTuning(d.yaml()).error;
  EXPECT_NE(err.find("tuning panel"), std::string::npos) << err;
  EXPECT_NE(err.find("quantize.wbits"), std::string::npos) << err;
  d.set("quantize.wbits", "4");
  d.set("quantize.a_quantizer", "per_channel");
  const std::string err2 = qs::workflow::checkTuning(d.yaml()).error;
  EXPECT_NE(err2.find("quantize.a_quantizer"), std::string::npos) << err2;
  d.set("quantize.a_quantizer", "per_token");
  d.set("extra.key", "1");
  EXPECT_NE(qs::workflow::checkTuning(d.yaml()).error.find("extra"), std::string::npos) << "stray sections are errors";
}

TEST(TuningCheck, OsPlusQConfigPresetBecomesQuantizeKeys) {
  // resources/presets/osplus_int6.yaml's content: W6A6, per-tensor EMA activations, migrate on.
  const std::string qconfig =
      "quant:\n  a_qconfig:\n    quantizer: FixedFakeQuantize\n    observer: EMAMinMaxObserver\n    bit: 6\n"
      "    symmetric: False\n    ch_axis: -1\n  w_qconfig:\n    quantizer: FixedFakeQuantize\n"
      "    observer: MinMaxObserver\n    bit: 6\n    symmetric: True\n    ch_axis: 0\n  migrate: True\n";
  TuningDocument d;
  ASSERT_EQ(d.setYaml(qs::workflow::applyTuningPreset("quantize:\n  groupsize: 64\n", qconfig, "int6.yaml")), "");
  EXPECT_EQ(d.get("quantize.a_bits"), "6");
  EXPECT_EQ(d.get("quantize.a_quantizer"), "per_tensor");
  EXPECT_EQ(d.get("quantize.a_observer"), "ema_minmax");
  EXPECT_EQ(d.get("quantize.wbits"), "6");
  EXPECT_EQ(d.get("quantize.sym"), "true");
  EXPECT_EQ(d.get("quantize.migrate"), "osplus");
  EXPECT_EQ(d.get("quantize.groupsize"), "64") << "w_qconfig has no group size: the document's stays";
  EXPECT_THROW(qs::workflow::applyTuningPreset("", "model:\n  a: 1\n", "bad.yaml"), qs::Error);
  EXPECT_NE(qs::workflow::checkTuning("quantize:\n  wbits: 4\n" + qconfig).error.find("'quant'"), std::string::npos);
}

TEST(TuningCheck, ResolvesEveryQuantizeKey) {
  const auto check = qs::workflow::checkTuning("quantize:\n  wbits: 3\n");
  ASSERT_EQ(check.error, "");
  TuningDocument r;
  ASSERT_EQ(r.setYaml(check.resolvedYaml), "");
  EXPECT_EQ(r.get("quantize.wbits"), "3");
  EXPECT_EQ(r.get("quantize.method"), "gptq") << "absent keys resolve to the core's defaults";
  EXPECT_FALSE(r.get("quantize.nsamples").empty());
}

// ---- compare data -------------------------------------------------------------------------

qs::runs::Comparison twoRuns() {
  qs::runs::Comparison c;
  c.runs.resize(2);
  c.runs[0].id = 3;
  c.runs[0].name = "gptq w4";
  c.runs[1].id = 5;
  c.runs[1].name = "rtn w4";
  qs::runs::MetricRow ppl{"ppl.wikitext2", {}};
  ppl.values.push_back(qs::runs::Metric{"ppl.wikitext2", 20.0, "gptq-nonoverlapping seqlen=512", "", 10, NAN});
  ppl.values.push_back(qs::runs::Metric{"ppl.wikitext2", 25.0, "gptq-nonoverlapping seqlen=512", "", 10, NAN});
  qs::runs::MetricRow only{"a.time", {}};
  only.values.push_back(std::nullopt);
  only.values.push_back(qs::runs::Metric{"a.time", 2.0, "", "s", 0, NAN});
  c.metrics = {only, ppl};  // key order, as the store gives them
  qs::runs::LayerSeries s;
  s.name = "rel_error";
  s.rows.push_back({0, "layers.0.self_attn.q_proj", {0.01, 0.02}});
  s.rows.push_back({0, "layers.0.fc1", {0.03, std::nullopt}});
  s.rows.push_back({1, "layers.1.self_attn.q_proj", {0.05, 0.10}});
  c.series = {s};
  return c;
}

TEST(CompareData, MetricDeltasAgainstTheFirstRun) {
  const auto d = qs::plot::metricDeltas(twoRuns());
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].key, "ppl.wikitext2") << "perplexity comes first";
  EXPECT_DOUBLE_EQ(d[0].delta[0], 0.0);
  EXPECT_DOUBLE_EQ(d[0].delta[1], 5.0);     // 25 - 20
  EXPECT_DOUBLE_EQ(d[0].relDelta[1], 0.25);  // 5 / 20
  EXPECT_EQ(d[0].protocol, "gptq-nonoverlapping seqlen=512");
  EXPECT_FALSE(d[0].protocolsDiffer);
  EXPECT_TRUE(std::isnan(d[1].values[0]));
  EXPECT_TRUE(std::isnan(d[1].delta[1])) << "no delta without a reference value";
  EXPECT_EQ(d[1].unit, "s");
}

TEST(CompareData, SeriesAllSitesAndOneSite) {
  const auto c = twoRuns();
  const auto all = qs::plot::compareSeries(c, "rel_error");
  ASSERT_EQ(all.curves.size(), 2u);
  EXPECT_EQ(all.curves[0].label, "#3 gptq w4");
  EXPECT_EQ(all.curves[0].x, (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(all.curves[1].x, (std::vector<double>{0, 2})) << "the missing value is left out";
  ASSERT_EQ(all.ticks.size(), 2u);  // layer 0 at x 0, layer 1 at x 2
  EXPECT_DOUBLE_EQ(all.ticks[1].first, 2.0);
  EXPECT_EQ(all.ticks[1].second, "1");
  EXPECT_FALSE(all.logScale);  // 0.01 .. 0.10 is 10x

  const auto q = qs::plot::compareSeries(c, "rel_error", "self_attn.q_proj");
  EXPECT_EQ(q.curves[1].x, (std::vector<double>{0, 1})) << "x is the layer";
  EXPECT_EQ(q.curves[1].y, (std::vector<double>{0.02, 0.10}));
  EXPECT_EQ(qs::plot::seriesSites(c.series[0]), (std::vector<std::string>{"self_attn.q_proj", "fc1"}));
  EXPECT_EQ(qs::plot::shortSite("layers.12.mlp.down_proj"), "mlp.down_proj");
  EXPECT_EQ(qs::plot::shortSite("q_proj"), "q_proj");
  EXPECT_TRUE(qs::plot::compareSeries(c, "no_such").curves[0].x.empty());
}

// ---- the panel ----------------------------------------------------------------------------

class TuningPanelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { qs::test::uiApp(); }
};

TEST_F(TuningPanelTest, ControlsEditOneKeyAndYamlEditsComeBack) {
  qs::ui::TuningPanel panel;
  EXPECT_EQ(panel.error(), "") << panel.error().toStdString();
  auto* bits = qobject_cast<QSpinBox*>(panel.control("quantize.wbits"));
  ASSERT_NE(bits, nullptr);
  bits->setValue(3);
  EXPECT_TRUE(panel.quantizeSection().contains("wbits: 3")) << panel.quantizeSection().toStdString();
  EXPECT_TRUE(panel.yamlEdit()->toPlainText().contains("wbits: 3"));

  auto* migrate = qobject_cast<QComboBox*>(panel.control("quantize.migrate"));
  ASSERT_NE(migrate, nullptr);
  EXPECT_EQ(migrate->currentData().toString(), "none");
  migrate->setCurrentIndex(migrate->findData("osplus"));
  EXPECT_TRUE(panel.yamlEdit()->toPlainText().contains("migrate: osplus"));
  QString text = panel.yamlEdit()->toPlainText();
  text.replace("migrate: osplus", "migrate: smoothquant").replace("wbits: 3", "wbits: 6");
  ASSERT_EQ(panel.setYaml(text), "");
  EXPECT_EQ(migrate->currentData().toString(), "smoothquant");
  EXPECT_EQ(bits->value(), 6);

  // A document without a key shows it resolved to the core's default.
  ASSERT_EQ(panel.setYaml("quantize:\n  method: rtn\n"), "");
  EXPECT_EQ(bits->value(), 4);
  EXPECT_TRUE(panel.yamlEdit()->toPlainText().contains("wbits: 4")) << "the view shows the resolved config";

  // The core's message, inline, for a value the controls could not produce; the text stays.
  panel.setYaml("quantize:\n  wbits: 1\n");
  EXPECT_TRUE(panel.error().contains("quantize.wbits")) << panel.error().toStdString();
  EXPECT_EQ(panel.errorLabel()->text(), panel.error());
}

TEST_F(TuningPanelTest, BundledPresetsLoad) {
  qs::ui::TuningPanel panel;
  const QStringList names = panel.presetNames();
  ASSERT_TRUE(names.contains("gptq-w4g128.yaml")) << names.join(",").toStdString();
  for (const QString& n : names) {
    EXPECT_EQ(panel.loadPreset(n), "") << n.toStdString();
    EXPECT_EQ(panel.error(), "") << n.toStdString() << ": " << panel.error().toStdString();
  }
  ASSERT_EQ(panel.loadPreset("gptq-w4g128.yaml"), "");
  EXPECT_EQ(qobject_cast<QSpinBox*>(panel.control("quantize.groupsize"))->value(), 128);
  ASSERT_EQ(panel.loadPreset("osplus_int6.yaml"), "");
  EXPECT_EQ(qobject_cast<QSpinBox*>(panel.control("quantize.a_bits"))->value(), 6);
  EXPECT_EQ(qobject_cast<QComboBox*>(panel.control("quantize.migrate"))->currentData().toString(), "osplus");
  EXPECT_EQ(qobject_cast<QSpinBox*>(panel.control("quantize.groupsize"))->value(), 128) << "kept";
}

}  // namespace
