// Quantize job options <-> YAML: defaults, round trip, and errors that name the file and key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/algo/quantize_config.h"
#include "core/util/error.h"
#include "tests/support/test_paths.h"

namespace qs::algo {
namespace {

// The message of the qs::Error that parsing `yaml` throws ("" when it parses).
std::string errorOf(const std::string& yaml, const std::string& file = "cfg.yaml") {
  try {
    parseQuantizeConfig(yaml, file);
  } catch (const qs::Error& e) {
    return e.what();
  }
  return "";
}

TEST(QuantizeConfig, DefaultsAreGptqFourBitPerChannel) {
  QuantizeConfig c;
  EXPECT_EQ(c.layer.method, Method::Gptq);
  EXPECT_EQ(c.layer.spec.bits, 4);
  EXPECT_EQ(c.layer.spec.groupSize, -1);
  EXPECT_FALSE(c.layer.spec.symmetric);
  EXPECT_FALSE(c.layer.spec.actOrder);
  EXPECT_DOUBLE_EQ(c.layer.percdamp, 0.01);
  EXPECT_EQ(c.layer.numIter, 30);
  EXPECT_EQ(c.layer.outlierFraction, 0);
  EXPECT_TRUE(c.trueSequential);
  EXPECT_EQ(c.nsamples, 128);
  EXPECT_EQ(c.seqlen, 2048);
  EXPECT_EQ(c.seed, 0u);
  EXPECT_EQ(c.dataset, "wikitext2");
  EXPECT_EQ(c.eval, std::vector<std::string>{"wikitext2"});
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.label(), "gptq w4 ch");
}

TEST(QuantizeConfig, ParsesSectionAndFlatDocuments) {
  auto c = parseQuantizeConfig(
      "quantize:\n  method: quantease\n  wbits: 3\n  groupsize: 32\n  num_iter: 10\n  outlier: 0.01\n"
      "  structured_outlier: true\n  nsamples: 16\n  seqlen: 256\n  seed: 7\n  eval: [wikitext2, ptb]\n"
      "  eval_limit_windows: 4\n",
      "cfg.yaml");
  EXPECT_EQ(c.layer.method, Method::QuantEase);
  EXPECT_EQ(c.layer.spec.bits, 3);
  EXPECT_EQ(c.layer.spec.groupSize, 32);
  EXPECT_EQ(c.layer.numIter, 10);
  EXPECT_DOUBLE_EQ(c.layer.outlierFraction, 0.01);
  EXPECT_TRUE(c.layer.structuredOutlier);
  EXPECT_EQ(c.nsamples, 16);
  EXPECT_EQ(c.seqlen, 256);
  EXPECT_EQ(c.seed, 7u);
  EXPECT_EQ(c.eval, (std::vector<std::string>{"wikitext2", "ptb"}));
  EXPECT_EQ(c.evalLimitWindows, 4);
  EXPECT_EQ(c.label(), "quantease w3 g32 +1% structured outliers");

  auto flat = parseQuantizeConfig("method: rtn\nwbits: 8\nsym: true\n", "flat.yaml");
  EXPECT_EQ(flat.layer.method, Method::Rtn);
  EXPECT_EQ(flat.layer.spec.bits, 8);
  EXPECT_TRUE(flat.layer.spec.symmetric);
  EXPECT_EQ(flat.nsamples, 128);  // untouched keys keep the defaults
}

TEST(QuantizeConfig, YamlRoundTripKeepsEveryKey) {
  QuantizeConfig c;
  c.withMethod(Method::GptqQuantEase).withBits(3).withGroupSize(64).withNumIter(7).withOutlier(0.005)
      .withSamples(32, 512).withSeed(42).withDataset("ptb").withEval({"ptb", "wikitext2"});
  c.layer.spec.actOrder = true;
  c.layer.spec.symmetric = true;
  c.layer.percdamp = 0.1;
  c.trueSequential = false;
  c.batchSize = 3;
  c.evalSeqlen = 128;
  c.evalLimitWindows = 9;
  const std::string yaml = toYaml(c);
  EXPECT_NE(yaml.find("percdamp: 0.1\n"), std::string::npos) << yaml;  // shortest form, not 0.1000000000000000055
  for (const auto& key : quantizeConfigKeys()) EXPECT_NE(yaml.find("  " + key + ":"), std::string::npos) << key;
  const QuantizeConfig back = parseQuantizeConfig(yaml, "stored");
  EXPECT_EQ(toYaml(back), yaml);
  EXPECT_EQ(back.layer.method, Method::GptqQuantEase);
  EXPECT_EQ(back.layer.spec.groupSize, 64);
  EXPECT_TRUE(back.layer.spec.actOrder);
  EXPECT_DOUBLE_EQ(back.layer.outlierFraction, 0.005);
  EXPECT_FALSE(back.trueSequential);
  EXPECT_EQ(back.eval, (std::vector<std::string>{"ptb", "wikitext2"}));
}

TEST(QuantizeConfig, UnknownKeyNamesTheKeyAndFile) {
  const std::string e = errorOf("quantize:\n  wbit: 4\n", "my.yaml");
  EXPECT_NE(e.find("my.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("'quantize.wbit'"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  EXPECT_NE(errorOf("quantize: {}\nextra: 1\n").find("'extra'"), std::string::npos);
}

TEST(QuantizeConfig, BadValuesNameTheirKey) {
  struct Case {
    const char* yaml;
    const char* key;
  };
  for (const Case& c : {Case{"quantize:\n  wbits: four\n", "'quantize.wbits'"},
                        Case{"quantize:\n  wbits: 9\n", "'quantize.wbits'"},
                        Case{"quantize:\n  method: awq\n", "'quantize.method'"},
                        Case{"quantize:\n  groupsize: 0\n", "'quantize.groupsize'"},
                        Case{"quantize:\n  method: gptq\n  outlier: 0.01\n", "'quantize.outlier'"},
                        Case{"quantize:\n  method: quantease\n  outlier: 1.5\n", "'quantize.outlier'"},
                        Case{"quantize:\n  static_groups: true\n", "'quantize.static_groups'"},
                        Case{"quantize:\n  nsamples: 0\n", "'quantize.nsamples'"},
                        Case{"quantize:\n  seed: -1\n", "'quantize.seed'"},
                        Case{"quantize:\n  observer: magic\n", "'quantize.observer'"},
                        Case{"quantize:\n  eval: {a: 1}\n", "'quantize.eval'"},
                        Case{"quantize: [1, 2]\n", "'quantize'"}}) {
    const std::string e = errorOf(c.yaml);
    EXPECT_NE(e.find("cfg.yaml"), std::string::npos) << c.yaml << " -> " << e;
    EXPECT_NE(e.find(c.key), std::string::npos) << c.yaml << " -> " << e;
  }
  EXPECT_NE(errorOf("quantize:\n  wbits: [\n").find("invalid YAML"), std::string::npos);
}

TEST(QuantizeConfig, LoadNamesAMissingFile) {
  try {
    loadQuantizeConfig("/nonexistent/q.yaml");
    FAIL() << "no error";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/q.yaml"), std::string::npos);
  }
}

TEST(QuantizeConfig, ShippedPresetsParse) {
  const std::string dir = std::string(QS_SOURCE_DIR) + "/resources/presets";
  int n = 0;
  for (const char* name :
       {"rtn-w4g128", "gptq-w4g128", "gptq-w3", "quantease-w3", "quantease-w3-outlier1pct", "gptq-gguf-q4_0",
        "gptq-gguf-q4_k"}) {
    const std::string path = dir + "/" + name + ".yaml";
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    EXPECT_NO_THROW(loadQuantizeConfig(path)) << path;
    ++n;
  }
  EXPECT_EQ(n, 7);
  EXPECT_DOUBLE_EQ(loadQuantizeConfig(dir + "/quantease-w3-outlier1pct.yaml").layer.outlierFraction, 0.01);
  EXPECT_EQ(gridTargetType(loadQuantizeConfig(dir + "/gptq-gguf-q4_0.yaml").layer.spec), "Q4_0");
  EXPECT_EQ(gridTargetType(loadQuantizeConfig(dir + "/gptq-gguf-q4_k.yaml").layer.spec), "Q4_K");
}

}  // namespace
}  // namespace qs::algo
