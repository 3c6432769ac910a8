// qscope bench-layer --weight W --inputs X --method gptq --wbits 4: quantizes one Linear given its
// weight [out, in] and calibration inputs [tokens, in] (.safetensors or .npy), and prints the
// relative error ||WX - W^X||^2 / ||WX||^2 (float64), bits per weight and the seconds spent on
// the Hessian and on quantizing, separately: how anyone compares QuantScope with another
// implementation on the very same layer.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>

#include "app/qscope/cli_support.h"
#include "app/qscope/commands.h"
#include "core/algo/hessian.h"
#include "core/algo/layer_quant.h"
#include "core/io/npy.h"
#include "core/io/safetensors.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/strings.h"

namespace qs::cli {
namespace {

// "file.npy", "file.safetensors" (its first tensor in file order) or "file.safetensors:name".
at::Tensor loadTensorArg(const std::string& arg, const std::string& flag) {
  if (arg.empty()) throw Error(flag + ": a path is required");
  if (str::endsWith(arg, ".npy")) return io::readNpy(arg);
  std::string path = arg, name;
  if (!fs::exists(arg)) {
    const auto colon = arg.rfind(':');
    if (colon != std::string::npos) {
      path = arg.substr(0, colon);
      name = arg.substr(colon + 1);
    }
  }
  if (!fs::exists(path)) throw Error(flag + ": " + path + " does not exist");
  if (!str::endsWith(path, ".safetensors"))
    throw Error(flag + ": " + path + " is neither .npy nor .safetensors");
  const auto file = io::SafetensorsFile::open(path);
  if (name.empty()) {
    if (file->tensors().empty()) throw Error(flag + ": " + path + " holds no tensor");
    name = file->tensors().front().name;
  } else if (!file->find(name)) {
    throw Error(flag + ": " + path + " has no tensor named '" + name + "'");
  }
  return file->load(name);
}

class BenchLayerCommand : public Command {
 public:
  CLI::App* setup(CLI::App& app) override {
    auto* cmd = app.add_subcommand("bench-layer", "Quantize one Linear from its weight and calibration inputs");
    cmd->add_option("--weight", weight_, "weight [out, in]: .npy, .safetensors or file.safetensors:name")->required();
    cmd->add_option("--inputs", inputs_, "calibration inputs [tokens, in] (or [..., in]), same formats")->required();
    cmd->add_option("--method", method_, "rtn, gptq, quantease or gptq_quantease")->capture_default_str();
    cmd->add_option("--wbits", opts_.spec.bits, "weight bits 2..8 (16 = not quantized)")->capture_default_str();
    cmd->add_option("--groupsize", opts_.spec.groupSize, "input columns per scale (-1 = whole row)")
        ->capture_default_str();
    cmd->add_flag("--act-order", opts_.spec.actOrder, "GPTQ: columns by decreasing Hessian diagonal");
    cmd->add_flag("--static-groups", opts_.spec.staticGroups, "GPTQ: group params fixed on W before quantizing");
    cmd->add_flag("--sym", opts_.spec.symmetric, "symmetric grid (zero point 0)");
    cmd->add_option("--observer", observer_, "range: minmax, mse (GPTQ --mse grid) or percentile")
        ->capture_default_str();
    cmd->add_option("--num-iter", opts_.numIter, "QuantEase sweeps")->capture_default_str();
    cmd->add_option("--quantease-init", quanteaseInit_,
                    "QuantEase start: best (from W and from GPTQ's rounding, the better kept), weights (the "
                    "reference's), rtn or gptq")
        ->capture_default_str();
    cmd->add_option("--outlier", opts_.outlierFraction, "QuantEase: fraction of weights kept in full precision")
        ->capture_default_str();
    cmd->add_flag("--structured-outlier", opts_.structuredOutlier, "keep whole input columns as outliers");
    cmd->add_option("--alpha", opts_.alpha, "outlier IHT step as a fraction of 1/L")->capture_default_str();
    cmd->add_option("--percdamp", opts_.percdamp, "GPTQ dampening, fraction of the mean H diagonal")
        ->capture_default_str();
    cmd->add_option("--blocksize", opts_.blockSize, "GPTQ lazy-batch / QuantEase GEMM block")->capture_default_str();
    cmd->add_option("--batch-tokens", batchTokens_, "tokens per Hessian batch")->capture_default_str();
    cmd->add_flag("--hessian-fp64", hessianFp64_, "compute each batch's X^T X in float64 (default float32)");
    cmd->add_option("--threads", threads_, "CPU threads for LibTorch (0 = all cores)")->capture_default_str();
    cmd->add_flag("--json", json_, "print the result as JSON on stdout");
    cmd->add_flag("--no-progress", noProgress_, "no progress bar on stderr");
    return cmd;
  }

  int run() override {
    if (threads_ < 0) throw Error("--threads: must not be negative");
    if (threads_ > 0) at::set_num_threads(threads_);
    if (batchTokens_ <= 0) throw Error("--batch-tokens: must be positive");
    opts_.method = algo::parseMethod(method_);
    opts_.quanteaseInit = algo::parseQuantEaseInit(quanteaseInit_);
    opts_.spec.set("observer", observer_);
    opts_.validate();
    const at::Tensor w = loadTensorArg(weight_, "--weight").to(at::kFloat);
    if (w.dim() != 2) throw Error("--weight: expected a 2-D [out, in] tensor, got " + std::to_string(w.dim()) + "-D");
    const at::Tensor x = loadTensorArg(inputs_, "--inputs");
    if (x.dim() < 1 || x.size(-1) != w.size(1))
      throw Error("--inputs: last dimension " + (x.dim() ? std::to_string(x.size(-1)) : std::string("-")) +
                  " does not match the weight's in_features " + std::to_string(w.size(1)));
    opts_.spec.validateFor(w.size(0), w.size(1));

    algo::LayerQuantResult r;
    int64_t tokens = 0;
    {
      ProgressBar bar("bench-layer", !noProgress_);
      const auto t0 = std::chrono::steady_clock::now();
      jobs::SubProgress hp(bar, 0.0, 0.3);
      const at::Tensor h = algo::hessianFromInputs(x, hp, batchTokens_, hessianFp64_ ? at::kDouble : at::kFloat);
      const double hs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      tokens = x.numel() / x.size(-1);
      jobs::SubProgress qp(bar, 0.3, 1.0);
      r = algo::quantizeLayer(w, h, opts_, qp);
      r.hessianSeconds = hs;
      bar.finish();
    }
    const int64_t outliers = r.outlierValues.defined() ? r.outlierValues.numel() : 0;
    const int64_t kept = r.keptColumns.defined() ? r.keptColumns.numel() : 0;
    if (json_) {
      printJson({{"method", r.method},
                 {"weight", weight_},
                 {"inputs", inputs_},
                 {"out_features", w.size(0)},
                 {"in_features", w.size(1)},
                 {"tokens", tokens},
                 {"wbits", opts_.spec.bits},
                 {"groupsize", opts_.spec.groupSize},
                 {"symmetric", opts_.spec.symmetric},
                 {"act_order", opts_.spec.actOrder},
                 {"static_groups", opts_.spec.staticGroups},
                 {"observer", quant::observerName(opts_.spec.observer)},
                 {"percdamp", opts_.percdamp},
                 {"num_iter", r.iterations},
                 {"outlier", opts_.outlierFraction},
                 {"structured_outlier", opts_.structuredOutlier},
                 {"outliers_kept", outliers},
                 {"kept_columns", kept},
                 {"rel_error", r.relError},
                 {"bits_per_weight", r.bitsPerWeight},
                 {"dense_bits", r.denseBits},
                 {"param_bits", r.paramBits},
                 {"outlier_bits", r.outlierBits},
                 {"hessian_seconds", r.hessianSeconds},
                 {"quant_seconds", r.quantSeconds},
                 {"error_seconds", r.errorSeconds},
                 {"objective_trace", r.objectiveTrace},
                 {"threads", at::get_num_threads()}});
    } else {
      std::printf("%s on [%lld, %lld] with %lld tokens, %d bits\n", r.method.c_str(),
                  static_cast<long long>(w.size(0)), static_cast<long long>(w.size(1)),
                  static_cast<long long>(tokens), opts_.spec.bits);
      std::printf("  relative error  %.6e\n", r.relError);
      std::printf("  bits per weight %.4f (dense %.0f + params %.4f + outliers %.4f)\n", r.bitsPerWeight,
                  r.denseBits, r.paramBits, r.outlierBits);
      std::printf("  hessian %.3f s, quantize %.3f s (error evaluation %.3f s), %d threads\n", r.hessianSeconds,
                  r.quantSeconds, r.errorSeconds, at::get_num_threads());
    }
    return 0;
  }

 private:
  std::string weight_, inputs_, method_ = "gptq", observer_ = "minmax", quanteaseInit_ = "best";
  algo::LayerQuantOptions opts_;
  int64_t batchTokens_ = 8192;
  bool hessianFp64_ = false, json_ = false, noProgress_ = false;
  int threads_ = 0;
};

}  // namespace

std::unique_ptr<Command> makeBenchLayerCommand() { return std::make_unique<BenchLayerCommand>(); }

}  // namespace qs::cli
