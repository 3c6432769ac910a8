// YAML forms of number formats and per-layer precision configs: every format kind round-trips
// through both forms, the config's rules keep their order and precedence, and every bad key or
// value is an error naming the file and the key path.
#include "core/quant/format_yaml.h"

#include <gtest/gtest.h>

#include "core/config/yaml_helpers.h"
#include "tests/quant/format_test_util.h"

namespace qs::quant {
namespace {

using testing::expectError;

NumberFormat fromText(const std::string& yaml) { return formatFromYaml(YAML::Load(yaml), "f.yaml", "w"); }

TEST(FormatYaml, EveryKindRoundTripsThroughTheMapForm) {
  // One non-default format of every kind: map form -> NumberFormat -> map form -> equal format.
  const std::vector<std::string> texts = {
      "none",
      "int(bits=4,sym=0,axis=0,group=64,gran=per_group)",
      "fixed(w=6,f=3)",
      "minifloat(e=5,m=2,bias=15,specials=ieee)",
      "denorm_minifloat(e=3,m=4,bias=2)",
      "log(e=4,bias=5)",
      "bfp(m=6,e=6,block=32,axis=0)",
      "block_minifloat(e=3,m=2,se=7,block=8,axis=-1)",
      "block_log(e=2,se=8,block=16,axis=-1)",
  };
  for (const auto& t : texts) {
    const NumberFormat f = NumberFormat::parse(t);
    const YAML::Node node = formatToYaml(f);
    const NumberFormat back = formatFromYaml(YAML::Load(YAML::Dump(node)), "f.yaml", "w");
    EXPECT_EQ(back.toString(), f.toString()) << YAML::Dump(node);
    // The text form as a YAML scalar too.
    EXPECT_EQ(fromText("'" + t + "'").toString(), f.toString());
  }
}

TEST(FormatYaml, MapFormAcceptsShortKeysAndKeepsDefaults) {
  const NumberFormat f = fromText("{format: bfp, m: 6, block_size: 32}");
  ASSERT_EQ(f.kind(), FormatKind::Bfp);
  const auto& o = std::get<BfpOptions>(f.options);
  EXPECT_EQ(o.mantissaWidth, 6);
  EXPECT_EQ(o.blockSize, 32);
  EXPECT_EQ(o.sharedExponentWidth, BfpOptions().sharedExponentWidth);
  EXPECT_EQ(fromText("e4m3").toString(), NumberFormat(MinifloatOptions::e4m3()).toString());
  EXPECT_FALSE(fromText("~").enabled());
  EXPECT_FALSE(formatFromYaml(YAML::Node(), "f.yaml", "w").enabled());  // absent key = none
}

TEST(FormatYaml, BadFormatsNameFileAndKey) {
  expectError([] { fromText("{format: bfp, mantisa_width: 6}"); }, "f.yaml: key 'w.mantisa_width': unknown key for format bfp");
  expectError([] { fromText("{format: bfp, mantissa_width: 60}"); }, "f.yaml: key 'w.mantissa_width'");
  expectError([] { fromText("{format: bfp, mantissa_width: six}"); }, "key 'w.mantissa_width'");
  expectError([] { fromText("{format: bfloat}"); }, "f.yaml: key 'w.format': format: 'bfloat' is not a known format");
  expectError([] { fromText("{mantissa_width: 6}"); }, "f.yaml: key 'w.format': missing");
  expectError([] { fromText("{format: bfp, m: [1, 2]}"); }, "key 'w.m': expected a number, got a list");
  expectError([] { fromText("[bfp]"); }, "key 'w': expected a format");
  expectError([] { fromText("'bfp(m=6'"); }, "key 'w': format: 'bfp(m=6' lacks the closing ')'");
  // Combination checks run after every key is set (minifloat e=8 bias beyond float32's range).
  expectError([] { fromText("{format: minifloat, e: 8, m: 3, bias: 0}"); }, "key 'w.bias': minifloat reaches");
}

constexpr const char* kConfig = R"Y(
precision:
  default: {weight: "bfp(m=8,e=8,block=16)", input: "bfp(m=8,e=8,block=16)"}
  rules:
    - name: "layers.*.mlp.*"
      weight: {format: bfp, mantissa_width: 5, block_size: 16}
      input: e4m3
    - name: layers.0.mlp.down_proj
      weight: none
    - name: "**.q_proj"
      weight: int(bits=4)
)Y";

TEST(PrecisionYaml, RulesMatchAsConfigured) {
  const LayerPrecision lp = parsePrecisionConfig(kConfig, "p.yaml");
  ASSERT_EQ(lp.rules().size(), 3u);
  EXPECT_EQ(lp.precisionFor("layers.3.mlp.up_proj").weight.toString(), "bfp(m=5,e=8,block=16,axis=-1)");
  EXPECT_EQ(lp.precisionFor("layers.3.mlp.up_proj").input.toString(), NumberFormat(MinifloatOptions::e4m3()).toString());
  EXPECT_FALSE(lp.precisionFor("layers.0.mlp.down_proj").weight.enabled());  // explicit name wins
  EXPECT_FALSE(lp.precisionFor("layers.0.mlp.down_proj").input.enabled());   // absent input = none
  EXPECT_EQ(lp.precisionFor("layers.2.self_attn.q_proj").weight.kind(), FormatKind::Integer);
  EXPECT_EQ(lp.precisionFor("layers.2.self_attn.o_proj").weight.toString(), "bfp(m=8,e=8,block=16,axis=-1)");  // default
}

TEST(PrecisionYaml, RoundTripsThroughItsOwnYaml) {
  const LayerPrecision lp = parsePrecisionConfig(kConfig, "p.yaml");
  const std::string text = precisionToYaml(lp);
  const LayerPrecision back = parsePrecisionConfig(text, "back.yaml");
  ASSERT_EQ(back.rules().size(), lp.rules().size()) << text;
  for (size_t i = 0; i < lp.rules().size(); ++i) {
    EXPECT_EQ(back.rules()[i].name, lp.rules()[i].name);
    EXPECT_EQ(back.rules()[i].precision.weight, lp.rules()[i].precision.weight) << text;
    EXPECT_EQ(back.rules()[i].precision.input, lp.rules()[i].precision.input) << text;
  }
  EXPECT_EQ(back.defaultPrecision().weight, lp.defaultPrecision().weight);
  // Without the wrapper, the document is the section itself.
  const LayerPrecision bare = parsePrecisionConfig("rules: [{name: lm_head, weight: 'fixed(w=8,f=4)'}]", "b.yaml");
  EXPECT_EQ(bare.precisionFor("lm_head").weight.kind(), FormatKind::Fixed);
}

TEST(PrecisionYaml, BadConfigsNameFileAndKey) {
  expectError([] { parsePrecisionConfig("precision: {defaults: {}}", "p.yaml"); },
              "p.yaml: key 'precision.defaults': unknown key (known keys: default, rules)");
  expectError([] { parsePrecisionConfig("precision: {rules: [{name: a, wieght: none}]}", "p.yaml"); },
              "p.yaml: key 'precision.rules[0].wieght': unknown key");
  expectError([] { parsePrecisionConfig("precision: {rules: [{weight: none}]}", "p.yaml"); },
              "p.yaml: key 'precision.rules[0].name': missing");
  expectError([] { parsePrecisionConfig("precision: {rules: [{name: a}, {name: a}]}", "p.yaml"); },
              "p.yaml: key 'precision.rules[1].name'");
  expectError([] { parsePrecisionConfig("precision: {rules: {name: a}}", "p.yaml"); },
              "key 'precision.rules': expected a list of rules");
  expectError([] { parsePrecisionConfig("precision: {rules: [{name: a, input: {format: log, e: 99}}]}", "p.yaml"); },
              "p.yaml: key 'precision.rules[0].input.e'");
  expectError([] { parsePrecisionConfig("precision: {}\nextra: 1", "p.yaml"); }, "p.yaml: key 'extra': unknown key");
  expectError([] { parsePrecisionConfig("", "p.yaml"); }, "p.yaml: is empty");
  expectError([] { parsePrecisionConfig("precision: [", "p.yaml"); }, "p.yaml: invalid YAML");
  expectError([] { loadPrecisionConfig("/nonexistent/p.yaml"); }, "/nonexistent/p.yaml");
}

}  // namespace
}  // namespace qs::quant
