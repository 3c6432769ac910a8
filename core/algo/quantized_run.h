// A quantize run's model as the run evaluated it, shared by `qscope quantize` (runQuantize) and
// `qscope eval RUN_ID -p PROJECT`: the calibration samples a config draws, the activation
// fake-quant it installs (static ranges calibrated on those samples), and a stored run's model
// rebuilt from its artifact (exports/run-<id>/quantized.safetensors) with that fake-quant on
// top. The same arithmetic on the same inputs: a stored run evaluates to the numbers it stored.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/algo/act_calibration.h"
#include "core/algo/quant_artifact.h"
#include "core/algo/quantize_config.h"
#include "core/jobs/progress.h"
#include "core/model/model.h"
#include "core/util/fs.h"

namespace qs::io {
class Tokenizer;
}
namespace qs::runs {
class Project;
}

namespace qs::algo {

// The config's calibration set (dataset, nsamples, seqlen, seed) as int64 tensors [N, L]; mask
// undefined when no position is padding. The text is eval::loadCalibrationDataset's: never an
// evaluation split.
struct CalibrationTensors {
  at::Tensor ids, mask;
  std::string path;              // the calibration text file
  std::string name;              // the set's name ("wikitext2") or the file's
  std::vector<int64_t> offsets;  // each sample's first token in the tokenized text (or document index)
  int64_t sourceTokens = 0;      // tokens in the text the samples were drawn from
};
CalibrationTensors calibrationTensors(const QuantizeConfig& config, const io::Tokenizer& tokenizer,
                                      const std::string& dataDir);
// What a run stores of its calibration set, appended to its config document as a top-level
// `calibration:` map (set, file, tokens, seed and every sample's offset); parseQuantizeConfig
// skips it, so the stored config still reads back.
std::string calibrationRecordYaml(const CalibrationTensors& cal, const QuantizeConfig& config);

// The config's activation fake-quant (a_bits < 16) installed on `model` and calibrated on ids;
// nullptr when activations stay floating point. The model must outlive the session.
std::unique_ptr<ActQuantSession> installActQuant(model::Model& model, const QuantizeConfig& config,
                                                       const at::Tensor& ids, jobs::Progress& progress);

struct QuantizedRun {
  int64_t runId = 0;
  std::string name;                     // the run's name in the store
  std::string artifactPath;
  QuantArtifact artifact;
  QuantizeConfig config;          // parsed from the artifact's config
  fs::ScopedDir spill;            // migrated weights beyond memory (removed after the model)
  std::unique_ptr<model::Model> model;  // rebuilt: migrations folded, weights dequantized
  std::unique_ptr<ActQuantSession> act;  // after model: destroyed first

  QuantizedRun() = default;
  QuantizedRun(QuantizedRun&&) = default;
  QuantizedRun& operator=(QuantizedRun&&) = delete;
  ~QuantizedRun() { act.reset(); }
};

// Reads the run's artifact and config (no model yet). Throws qs::Error naming the run for a run
// that is not a finished quantize run, has no artifact, or whose source model changed.
QuantizedRun findQuantizedRun(const runs::Project& project, int64_t runId);
// Rebuilds run.model on `device` (exec: how it runs, set before the activation calibration) and,
// when the run quantized activations, installs run.act calibrated on the run's calibration set
// (read from dataDir).
void loadQuantizedRunModel(QuantizedRun& run, const std::string& dataDir, c10::Device device,
                           jobs::Progress& progress, const model::ExecOptions& exec = {});

}  // namespace qs::algo
