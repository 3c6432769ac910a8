// qscope export RUN_ID -p PROJECT --format hf-fp16|gptq|fake-fp16|scale-shift|gguf -o DIR: writes a
// quantize run's result (its exports/run-<id>/quantized.safetensors artifact plus the source
// model) as files other tools load (core/algo/export.h), through core/workflow/export_job.h
// as the GUI's Export job does. The folder is written atomically:
// Ctrl-C or an error leaves no DIR behind; an existing DIR needs --force.
#include <cstdio>
#include <string>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/workflow/export_job.h"

namespace qs::cli {
namespace {

class ExportCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("export", "Export a quantize run: HF folder with OS+ folded in, GPTQ packed, "
                                             "fake-quantized FP16, or the OS+ scales/shifts alone");
    // The format list the GUI's Export dialog shows too (core/workflow/export_job.h).
    std::string footer = "Formats:\n";
    for (const auto& f : workflow::exportFormats()) {
      char line[256];
      std::snprintf(line, sizeof line, "  %-12s %s\n", f.name.c_str(), f.description.c_str());
      footer += line;
    }
    cmd->footer(footer +
                "QuantScope loads every folder format back (qscope eval DIR); GPTQ folders are dequantized on load.\n"
                "Folder formats need a Hugging Face model folder as the run's source (a GGUF source: scale-shift only).\n"
                "GGUF (LLaMA/Mistral, GPT-2, BLOOM, Falcon, GPT-NeoX) loads in llama.cpp; QuantScope reads it back too (qscope eval FILE.gguf).\n"
                "Examples: qscope export 3 -p proj --format gptq -o out/w4-gptq\n"
                "          qscope export 3 -p proj --format gguf --gguf-type Q4_0 -o out/model-q4_0.gguf");
    cmd->add_option("run", runId_, "quantize run id (qscope runs list -p PROJECT)")->required();
    cmd->add_option("-p,--project", project_, "project folder holding the run")->required();
    cmd->add_option("--format", format_, "hf-fp16, gptq, fake-fp16, scale-shift or gguf")->required();
    cmd->add_option("-o,--output", out_, "output folder, or the .gguf file (must not exist unless --force)")->required();
    cmd->add_option("--gguf-type", ggufType_,
                    "gguf: llama.cpp type F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_1, Q5_0, Q4_K_M, Q4_K_S, Q4_1, "
                    "Q4_0, Q3_K_L, Q3_K_M, Q3_K_S or Q2_K, as llama-quantize names them, or Q5_K, Q4_K, Q3_K, Q2_K_PURE "
                    "(every matrix in that type, the output layer Q6_K); default: the run's --target gguf:T type, else "
                    "F16 (the _S/_M mixes, the output layer and rows that do not split into blocks get the types "
                    "llama-quantize gives them)")
        ->capture_default_str();
    cmd->add_flag("--force", force_, "replace an existing output folder (only once the new one is complete)");
    cmd->add_option("--dtype", dtype_, "float tensors: float16, bfloat16 or float32 (GPTQ scales too)")
        ->capture_default_str();
    cmd->add_option("--max-shard-size", shardMb_, "shard model.safetensors above this many MiB")->capture_default_str();
    cmd->add_option("--gptq-format", gptqFormat_, "gptq (AutoGPTQ v1: zero - 1 stored; every GPTQ loader) or gptq_v2 (zero stored; GPTQModel, not AutoGPTQ 0.7)")
        ->check(CLI::IsMember({"gptq", "gptq_v2"}))
        ->capture_default_str();
    cmd->add_flag("--allow-padding", allowPadding_,
                  "GPTQ: pack layers whose in/out features are not divisible by 32 (QuantScope-only)");
    cmd->add_flag("--no-parity", noParity_,
                  "skip the load-back check (the export reloaded and run beside the run's model on 4 windows "
                  "of its calibration text: KL, top-1; stored with the run)");
    cmd->add_flag("--json", json_, "print the result as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    return cmd;
  }

  int run() override {
    workflow::ExportJobOptions o;
    o.projectDir = project_;
    o.runId = runId_;
    o.format = format_;
    o.outDir = out_;
    o.force = force_;
    o.dtype = dtype_;
    o.maxShardMiB = shardMb_;
    o.gptqFormat = gptqFormat_;
    o.allowPadding = allowPadding_;
    o.ggufType = ggufType_;
    o.checkParity = !noParity_;
    workflow::ExportJobResult rep;
    {
      ProgressBar bar("export " + format_, !noProgress_);
      rep = workflow::runExportJob(o, bar);
      bar.finish();
    }
    if (json_) {
      std::vector<std::string> files;
      for (const auto& f : rep.files) files.push_back(f.name);
      nlohmann::json parity = nullptr;
      if (rep.parity.measured)
        parity = {{"reference", rep.parity.reference}, {"text", rep.parity.text}, {"windows", rep.parity.windows},
                  {"seqlen", rep.parity.seqlen}, {"kl_mean", rep.parity.klMean}, {"kl_max", rep.parity.klMax},
                  {"top1", rep.parity.top1}};
      printJson({{"run_id", runId_}, {"format", rep.format}, {"dir", rep.dir},
                 {"files", files}, {"tensor_bytes", rep.tensorBytes}, {"total_bytes", rep.totalBytes},
                 {"notes", rep.notes}, {"parity", parity}});
    } else {
      std::printf("exported run %lld (%s, migration %s) as %s to %s\n", static_cast<long long>(runId_),
                  rep.runName.c_str(), rep.migration.c_str(), rep.format.c_str(), rep.dir.c_str());
      for (const auto& f : rep.files)
        std::printf("  %-36s %12s\n", f.name.c_str(), workflow::formatFileSize(f.bytes).c_str());
      std::printf("%.1f MiB of tensors, %s in all\n", static_cast<double>(rep.tensorBytes) / 1048576.0,
                  workflow::formatFileSize(rep.totalBytes).c_str());
      for (const auto& n : rep.notes) std::printf("note: %s\n", n.c_str());
    }
    return 0;
  }

 private:
  int64_t runId_ = 0, shardMb_ = 5120;
  std::string project_, format_, out_, dtype_ = "float16", gptqFormat_ = "gptq", ggufType_;
  bool force_ = false, allowPadding_ = false, json_ = false, noProgress_ = false, noParity_ = false;
};

}  // namespace

std::unique_ptr<Command> makeExportCommand() { return std::make_unique<ExportCommand>(); }

}  // namespace qs::cli
