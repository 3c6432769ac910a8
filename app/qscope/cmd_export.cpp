// qscope export RUN_ID -p PROJECT --format hf-fp16|gptq|fake-fp16|scale-shift -o DIR: writes a
// quantize run's result (its exports/run-<id>/quantized.safetensors artifact plus the source
// model) as files other tools load (core/algo/export.h). The folder is written atomically:
// Ctrl-C or an error leaves no DIR behind; an existing DIR needs --force.
#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/algo/export.h"
#include "core/algo/quant_artifact.h"
#include "core/runs/fingerprint.h"
#include "core/runs/project.h"
#include "core/runs/run_store.h"
#include "core/util/error.h"
#include "core/util/log.h"

namespace qs::cli {
namespace {

class ExportCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("export", "Export a quantize run: HF folder with OS+ folded in, GPTQ packed, "
                                             "fake-quantized FP16, or the OS+ scales/shifts alone");
    cmd->footer(
        "Formats:\n"
        "  hf-fp16      Hugging Face folder of the FP model with OS+/SmoothQuant folded in (weights not quantized)\n"
        "  gptq         AutoGPTQ layout (qweight/qzeros/scales/g_idx, quantize_config.json), 2/3/4/8 bits\n"
        "  fake-fp16    Hugging Face folder with the dequantized weights of any method\n"
        "  scale-shift  scale_shift.safetensors: <pair>.shift / <pair>.scale per migration pair\n"
        "QuantScope loads every folder format back (qscope eval DIR); GPTQ folders are dequantized on load.\n"
        "Example: qscope export 3 -p proj --format gptq -o out/w4-gptq");
    cmd->add_option("run", runId_, "quantize run id (qscope runs list -p PROJECT)")->required();
    cmd->add_option("-p,--project", project_, "project folder holding the run")->required();
    cmd->add_option("--format", format_, "hf-fp16, gptq, fake-fp16 or scale-shift")->required();
    cmd->add_option("-o,--output", out_, "output folder (must not exist unless --force)")->required();
    cmd->add_flag("--force", force_, "replace an existing output folder (only once the new one is complete)");
    cmd->add_option("--dtype", dtype_, "float tensors: float16, bfloat16 or float32 (GPTQ scales too)")
        ->capture_default_str();
    cmd->add_option("--max-shard-size", shardMb_, "shard model.safetensors above this many MiB")->capture_default_str();
    cmd->add_option("--gptq-format", gptqFormat_, "gptq (AutoGPTQ v1: zero - 1 stored) or gptq_v2")
        ->check(CLI::IsMember({"gptq", "gptq_v2"}))
        ->capture_default_str();
    cmd->add_flag("--allow-padding", allowPadding_,
                  "GPTQ: pack layers whose in/out features are not divisible by 32 (QuantScope-only)");
    cmd->add_flag("--json", json_, "print the result as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    return cmd;
  }

  int run() override {
    algo::ExportOptions o;
    o.format = algo::parseExportFormat(format_);
    o.outDir = out_;
    o.force = force_;
    if (dtype_ == "float16" || dtype_ == "fp16") o.dtype = at::kHalf;
    else if (dtype_ == "bfloat16" || dtype_ == "bf16") o.dtype = at::kBFloat16;
    else if (dtype_ == "float32" || dtype_ == "fp32") o.dtype = at::kFloat;
    else throw Error("--dtype: '" + dtype_ + "' is not float16, bfloat16 or float32");
    if (shardMb_ < 1) throw Error("--max-shard-size: must be at least 1 MiB");
    o.maxShardBytes = shardMb_ << 20;
    o.gptqV1 = gptqFormat_ == "gptq";
    o.allowPadding = allowPadding_;
    o.runId = runId_;

    const runs::Project project = runs::Project::open(project_);
    auto store = project.openStore();
    const runs::RunRecord rec = store.loadRun(runId_, /*withArrays=*/false);
    if (rec.info.kind != runs::RunKind::Quantize)
      throw Error("run " + std::to_string(runId_) + " is a " + runs::toString(rec.info.kind) +
                  " run; export needs a quantize run");
    if (rec.info.status != runs::RunStatus::Finished)
      throw Error("run " + std::to_string(runId_) + " is " + runs::toString(rec.info.status) +
                  "; only finished quantize runs can be exported");
    std::string artifactPath;
    for (const auto& a : rec.artifacts)
      if (a.kind == "quantized") artifactPath = store.artifactPath(a) + "/" + algo::kQuantArtifactFile;
    if (artifactPath.empty())
      throw Error("run " + std::to_string(runId_) + " has no quantized artifact (it was stored before export "
                  "existed, or by `qscope migrate`); re-run it with qscope quantize " + project_ + " ...");
    const algo::QuantArtifact art = algo::readQuantArtifact(artifactPath);
    if (!art.modelFingerprint.empty() && std::filesystem::exists(art.modelPath) &&
        runs::fingerprintModel(art.modelPath) != art.modelFingerprint)
      throw Error("the run's source model " + art.modelPath + " changed since the run (fingerprint differs); "
                  "the export would not reproduce the run");

    algo::ExportReport rep;
    {
      ProgressBar bar("export " + std::string(algo::exportFormatName(o.format)), !noProgress_);
      rep = algo::exportRun(art, o, bar);
      bar.finish();
    }
    if (json_) {
      printJson({{"run_id", runId_}, {"format", algo::exportFormatName(o.format)}, {"dir", rep.dir},
                 {"files", rep.files}, {"tensor_bytes", rep.tensorBytes}, {"notes", rep.notes}});
    } else {
      std::printf("exported run %lld (%s, migration %s) as %s to %s\n", static_cast<long long>(runId_),
                  rec.info.name.c_str(), art.migration.c_str(), algo::exportFormatName(o.format), rep.dir.c_str());
      for (const auto& f : rep.files) std::printf("  %s\n", f.c_str());
      std::printf("%.1f MiB of tensors\n", static_cast<double>(rep.tensorBytes) / 1048576.0);
      for (const auto& n : rep.notes) std::printf("note: %s\n", n.c_str());
    }
    return 0;
  }

 private:
  int64_t runId_ = 0, shardMb_ = 5120;
  std::string project_, format_, out_, dtype_ = "float16", gptqFormat_ = "gptq";
  bool force_ = false, allowPadding_ = false, json_ = false, noProgress_ = false;
};

}  // namespace

std::unique_ptr<Command> makeExportCommand() { return std::make_unique<ExportCommand>(); }

}  // namespace qs::cli
