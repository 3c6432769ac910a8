#include "core/algo/quantized_run.h"

#include <ATen/ATen.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "core/analysis/calibration.h"
#include "core/eval/datasets.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/runs/fingerprint.h"
#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"

namespace qs::algo {

CalibrationTensors calibrationTensors(const QuantizeConfig& cfg, const io::Tokenizer& tokenizer,
                                      const std::string& dataDir) {
  const eval::DatasetText text = eval::loadCalibrationDataset(cfg.dataset, dataDir);
  analysis::CalibrationOptions co;
  co.withSamples(cfg.nsamples).withSeqlen(cfg.seqlen).withSeed(cfg.seed);
  const analysis::CalibrationSet cal = analysis::makeCalibrationSet(text.text, text.path, tokenizer, co);
  CalibrationTensors t;
  t.path = text.path;
  t.name = text.name;
  t.offsets = cal.offsets;
  t.sourceTokens = cal.sourceTokens;
  t.ids = at::from_blob(const_cast<int32_t*>(cal.ids.data()), {cal.samples, cal.seqlen}, at::kInt).to(at::kLong);
  if (!cal.mask.empty())
    t.mask = at::from_blob(const_cast<uint8_t*>(cal.mask.data()), {cal.samples, cal.seqlen}, at::kByte).to(at::kLong);
  return t;
}

std::string calibrationRecordYaml(const CalibrationTensors& cal, const QuantizeConfig& cfg) {
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "calibration" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "set" << YAML::Value << cal.name;
  e << YAML::Key << "file" << YAML::Value << cal.path;
  e << YAML::Key << "source_tokens" << YAML::Value << cal.sourceTokens;
  e << YAML::Key << "samples" << YAML::Value << cfg.nsamples;
  e << YAML::Key << "seqlen" << YAML::Value << cfg.seqlen;
  e << YAML::Key << "seed" << YAML::Value << cfg.seed;
  e << YAML::Key << "rng" << YAML::Value << "mt19937_64";
  e << YAML::Key << "offsets" << YAML::Value << YAML::Flow << cal.offsets;
  e << YAML::EndMap << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

std::unique_ptr<ActQuantSession> installActQuant(model::Model& model, const QuantizeConfig& cfg,
                                                       const at::Tensor& ids, jobs::Progress& progress) {
  if (!cfg.act.enabled()) return nullptr;
  auto session = std::make_unique<ActQuantSession>(model, cfg.act, cfg.exceptQuantizer);
  session->calibrate(ids, progress);
  return session;
}

QuantizedRun findQuantizedRun(const runs::Project& project, int64_t runId) {
  const std::string rid = "run " + std::to_string(runId);
  auto store = project.openStore();
  const runs::RunRecord rec = store.loadRun(runId, /*withArrays=*/false);
  if (rec.info.kind != runs::RunKind::Quantize)
    throw Error(rid + " is a " + runs::toString(rec.info.kind) + " run; evaluating a run needs a quantize run (qscope "
                "runs list -p " + project.dir() + ")");
  if (rec.info.status != runs::RunStatus::Finished)
    throw Error(rid + " is " + runs::toString(rec.info.status) + "; only finished quantize runs can be evaluated");
  QuantizedRun r;
  r.runId = runId;
  r.name = rec.info.name;
  for (const auto& a : rec.artifacts)
    if (a.kind == "quantized") r.artifactPath = store.artifactPath(a) + "/" + kQuantArtifactFile;
  if (r.artifactPath.empty())
    throw Error(rid + " has no quantized artifact (it was stored by `qscope migrate`, or before artifacts existed); "
                "evaluate a run of qscope quantize " + project.dir() + " ...");
  // Grids stay in the file and are read per block while the model runs (models larger than memory).
  r.artifact = readQuantArtifact(r.artifactPath, /*loadGrids=*/false);
  const auto& art = r.artifact;
  if (!art.modelFingerprint.empty() && std::filesystem::exists(art.modelPath) &&
      runs::fingerprintModel(art.modelPath) != art.modelFingerprint)
    throw Error("the source model " + art.modelPath + " of " + rid + " changed since the run (fingerprint differs); "
                "its evaluation would not reproduce the run");
  r.config = parseQuantizeConfig(art.configYaml, r.artifactPath + " (config)");
  return r;
}

void loadQuantizedRunModel(QuantizedRun& r, const std::string& dataDir, c10::Device device, jobs::Progress& progress,
                           const model::ExecOptions& exec) {
  CalibrationTensors cal;
  if (r.config.act.enabled()) {  // calibration text errors before the model loads
    auto tokenizer = io::loadTokenizer(r.artifact.modelPath);
    cal = calibrationTensors(r.config, *tokenizer, dataDir);
  }
  progress.update(0, "rebuilding run " + std::to_string(r.runId));
  r.act.reset();
  r.model.reset();
  // A migrated model larger than memory spills its folded weights beside the run's artifact.
  if (!r.artifact.migrations.empty())
    r.spill = fs::ScopedDir(fs::makeJobTempDir(
        ".spill-eval", std::filesystem::path(r.artifactPath).parent_path().parent_path().string()));
  r.model = rebuildQuantizedModel(r.artifact, /*quantizedWeights=*/true, device, r.spill.path());
  r.model->setExecOptions(exec);
  if (r.config.act.enabled()) r.act = installActQuant(*r.model, r.config, cal.ids, progress);
}

}  // namespace qs::algo
