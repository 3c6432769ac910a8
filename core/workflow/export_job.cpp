// export_job: see export_job.h. The run checks were those of app/qscope/cmd_export.cpp, which now
// calls runExportJob, so the CLI and the GUI refuse the same runs with the same messages.
#include "core/workflow/export_job.h"

#include <ATen/ATen.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/algo/export.h"
#include "core/algo/gguf_export.h"
#include "core/algo/layer_quant.h"
#include "core/algo/quant_artifact.h"
#include "core/algo/quantize_config.h"
#include "core/model/config.h"
#include "core/quant/quant_spec.h"
#include "core/runs/fingerprint.h"
#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"
#include "core/util/strings.h"

namespace qs::workflow {
namespace {

algo::ExportOptions exportOptions(const ExportJobOptions& j) {
  algo::ExportOptions o;
  o.format = algo::parseExportFormat(j.format);
  o.outDir = j.outDir;
  o.force = j.force;
  const std::string& d = j.dtype;
  if (d == "float16" || d == "fp16") o.dtype = at::kHalf;
  else if (d == "bfloat16" || d == "bf16") o.dtype = at::kBFloat16;
  else if (d == "float32" || d == "fp32") o.dtype = at::kFloat;
  else throw Error("--dtype: '" + d + "' is not float16, bfloat16 or float32");
  if (j.maxShardMiB < 1) throw Error("--max-shard-size: must be at least 1 MiB");
  o.maxShardBytes = j.maxShardMiB << 20;
  if (j.gptqFormat != "gptq" && j.gptqFormat != "gptq_v2")
    throw Error("--gptq-format: '" + j.gptqFormat + "' is not gptq or gptq_v2");
  o.gptqV1 = j.gptqFormat == "gptq";
  o.allowPadding = j.allowPadding;
  o.runId = j.runId;
  o.ggufType = j.ggufType;
  if (j.outDir.empty()) throw Error(o.format == algo::ExportFormat::Gguf ? "-o: an output .gguf file is required"
                                                                         : "-o: an output folder is required");
  return o;
}

// The calibration text a run recorded (its config's `calibration: file:`), "" when it has none.
std::string calibrationFileOf(const std::string& configYaml) {
  try {
    const YAML::Node c = YAML::Load(configYaml)["calibration"];
    if (c && c["file"]) return c["file"].as<std::string>();
  } catch (const YAML::Exception&) {
  }
  return "";
}

struct LoadedRun {
  runs::RunInfo info;
  algo::QuantArtifact artifact;
};

// The checks `qscope export` has always made, in its words.
LoadedRun loadRun(const ExportJobOptions& j) {
  const std::string id = std::to_string(j.runId);
  const runs::Project project = runs::Project::open(j.projectDir);
  auto store = project.openStore();
  const runs::RunRecord rec = store.loadRun(j.runId, /*withArrays=*/false);
  if (rec.info.kind != runs::RunKind::Quantize)
    throw Error("run " + id + " is a " + runs::toString(rec.info.kind) + " run; export needs a quantize run");
  if (rec.info.status != runs::RunStatus::Finished)
    throw Error("run " + id + " is " + runs::toString(rec.info.status) +
                "; only finished quantize runs can be exported");
  std::string artifactPath;
  for (const auto& a : rec.artifacts)
    if (a.kind == "quantized") artifactPath = store.artifactPath(a) + "/" + algo::kQuantArtifactFile;
  if (artifactPath.empty())
    throw Error("run " + id + " has no quantized artifact (it was stored before export existed, or by `qscope "
                "migrate`); re-run it with qscope quantize " + j.projectDir + " ...");
  // Grids stay in the artifact file and are read one site at a time while the export is written.
  LoadedRun r{rec.info, algo::readQuantArtifact(artifactPath, /*loadGrids=*/false)};
  const algo::QuantArtifact& art = r.artifact;
  if (!art.modelFingerprint.empty() && std::filesystem::exists(art.modelPath) &&
      runs::fingerprintModel(art.modelPath) != art.modelFingerprint)
    throw Error("the run's source model " + art.modelPath + " changed since the run (fingerprint differs); "
                "the export would not reproduce the run");
  return r;
}

ExportJobResult toResult(const algo::ExportReport& rep, const algo::ExportOptions& o, const LoadedRun& run) {
  ExportJobResult r;
  r.dir = rep.dir;
  r.format = algo::exportFormatName(o.format);
  r.runName = run.info.name;
  r.migration = run.artifact.migration;
  for (size_t i = 0; i < rep.files.size(); ++i)
    r.files.push_back({rep.files[i], i < rep.fileBytes.size() ? rep.fileBytes[i] : 0});
  r.totalBytes = rep.totalBytes;
  r.tensorBytes = rep.tensorBytes;
  r.dirExists = rep.dirExists;
  r.notes = rep.notes;
  r.parity = rep.parity;
  return r;
}

}  // namespace

const std::vector<ExportFormatInfo>& exportFormats() {
  static const std::vector<ExportFormatInfo> formats = {
      {"hf-fp16", "Hugging Face folder of the FP model with OS+/SmoothQuant folded in (weights not quantized)"},
      {"gptq", "AutoGPTQ layout (qweight/qzeros/scales/g_idx, quantize_config.json), 2/3/4/8 bits"},
      {"fake-fp16", "Hugging Face folder with the dequantized weights of any method"},
      {"scale-shift", "scale_shift.safetensors: <pair>.shift / <pair>.scale per migration pair"},
      {"gguf", "one llama.cpp GGUF file (LLaMA/Mistral, GPT-2, BLOOM, Falcon, GPT-NeoX), matrices in a llama.cpp type rounded as llama-quantize "
               "rounds them: F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_1, Q5_0, Q4_K_M, Q4_K_S, Q4_1, Q4_0, Q3_K_L, Q3_K_M, Q3_K_S, Q2_K"},
  };
  return formats;
}

std::vector<ExportableRun> exportableRuns(const std::string& projectDir) {
  const runs::Project project = runs::Project::open(projectDir);
  auto store = project.openStore();
  runs::RunFilter f;
  f.kind = "quantize";
  f.status = "finished";
  std::vector<ExportableRun> out;
  for (const runs::RunInfo& info : store.listRuns(f)) {
    const runs::RunRecord rec = store.loadRun(info.id, /*withArrays=*/false);
    bool artifact = false;
    for (const auto& a : rec.artifacts) artifact = artifact || a.kind == "quantized";
    if (!artifact) continue;
    ExportableRun r;
    r.id = info.id;
    r.name = info.name;
    r.formats = {"hf-fp16"};
    bool shifted = false, integerZeros = true;
    try {
      const algo::QuantizeConfig c = algo::parseQuantizeConfig(info.configYaml, "run " + std::to_string(info.id));
      r.method = algo::methodName(c.layer.method);
      r.bits = c.layer.spec.bits;
      r.migration = algo::migrationName(c.migrate);
      shifted = c.migrate == algo::Migration::OsPlus && c.osplusShift;
      r.ggufType = c.ggufMix.empty() ? algo::targetGgufType(c.layer.spec) : c.ggufMix;
      integerZeros = !quant::roundsWithZeroInside(c.layer.spec);  // the GPTQ layout stores integer zeros
    } catch (const Error&) {
      r.migration = "none";  // an unreadable config: hf-fp16 is still possible; export says the rest
    }
    // Folder formats rewrite the source's Hugging Face folder (config.json, tokenizer files).
    std::filesystem::path model(info.modelPath);
    if (model.is_relative()) model = std::filesystem::path(projectDir) / model;
    const bool hfSource = std::filesystem::is_regular_file(model / "config.json");
    const int b = r.bits;
    if (!hfSource) {
      r.formats.clear();
      r.limits = "the run's source model (" + info.modelPath +
                 ") is not a Hugging Face folder, so only scale-shift can be exported";
    }
    // transformers' and llama.cpp's LLaMA have no bias after RMSNorm: an OS+-shifted LLaMA run has
    // no folder export (algo::exportRun refuses it).
    bool llama = false, ggufArch = false;
    if (hfSource) {
      try {
        const model::Family family = model::loadConfig((model / "config.json").string()).family;
        llama = family == model::Family::Llama;
        // llama.cpp has no OPT; its Falcon has no projection biases for OS+ shifting to fill.
        ggufArch = family != model::Family::Opt && !(family == model::Family::Falcon && shifted);
      } catch (const Error&) {
        // an unreadable config: the export names the problem
      }
    }
    const bool folders = hfSource && !(llama && shifted);
    if (hfSource && !folders) {
      r.formats.clear();
      r.limits = "OS+ shifted this LLaMA-family run: transformers and llama.cpp have no bias after RMSNorm, so only "
                 "scale-shift can be exported (quantize with --no-shift for the other formats)";
    }
    if (folders && b < 16 && (b == 2 || b == 3 || b == 4 || b == 8) && integerZeros) r.formats.push_back("gptq");
    if (folders && b < 16) r.formats.push_back("fake-fp16");
    if (folders && ggufArch) r.formats.push_back("gguf");
    if (r.migration != "none") r.formats.push_back("scale-shift");
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const ExportableRun& a, const ExportableRun& b) { return a.id > b.id; });
  return out;
}

ExportJobResult planExportJob(const ExportJobOptions& options) {
  const algo::ExportOptions o = exportOptions(options);
  const LoadedRun run = loadRun(options);
  return toResult(algo::planExport(run.artifact, o), o, run);
}

ExportJobResult runExportJob(const ExportJobOptions& options, jobs::Progress& progress) {
  algo::ExportOptions o = exportOptions(options);
  progress.update(0.0, "reading run " + std::to_string(options.runId));
  const LoadedRun run = loadRun(options);
  if (options.checkParity) o.parityText = calibrationFileOf(run.info.configYaml);
  const algo::ExportReport rep = algo::exportRun(run.artifact, o, progress);
  ExportJobResult r = toResult(rep, o, run);
  if (rep.parity.measured) {
    // Stored with the run: export.<format>[.<gguf type>].kl_mean / kl_max / top1.
    std::string key = "export." + r.format;
    if (o.format == algo::ExportFormat::Gguf) key += "." + str::toLower(algo::effectiveGgufType(run.artifact, o));
    const std::string protocol = std::to_string(rep.parity.windows) + "x" + std::to_string(rep.parity.seqlen) +
                                 " tokens vs " + rep.parity.reference;
    const int64_t n = rep.parity.windows * rep.parity.seqlen;
    runs::Project::open(options.projectDir)
        .openStore()
        .addMetrics(options.runId, {{key + ".kl_mean", rep.parity.klMean, protocol, "nats", n, NAN},
                                    {key + ".kl_max", rep.parity.klMax, protocol, "nats", n, NAN},
                                    {key + ".top1", 100.0 * rep.parity.top1, protocol, "%", n, NAN}});
  }
  return r;
}

std::string formatFileSize(int64_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (bytes < 1024) std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  else if (b < 1024.0 * 1024.0) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else if (b < 1024.0 * 1024.0 * 1024.0) std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
  else std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  return buf;
}

std::string ExportJobResult::summary() const {
  return "exported '" + runName + "' as " + format + " to " + dir + ": " + std::to_string(files.size()) +
         (files.size() == 1 ? " file, " : " files, ") + formatFileSize(totalBytes);
}

}  // namespace qs::workflow
