#include "core/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/eval/outlier_metrics.h"
#include "core/io/safetensors.h"
#include "core/model/model.h"
#include "core/train/adamw.h"
#include "core/train/causal_lm.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace qs::train {
namespace {

namespace sfs = std::filesystem;
using Named = std::vector<std::pair<std::string, at::Tensor>>;

void check(bool ok, const std::string& option, const std::string& what) {
  if (!ok) throw Error("training option " + option + ": " + what);
}

void validate(const TrainOptions& o, size_t tokens, int64_t vocab) {
  check(!o.outDir.empty(), "out", "an output folder is required");
  check(o.seqlen >= 2, "seqlen", "must be at least 2");
  check(o.batch >= 1, "batch", "must be at least 1");
  check(o.accum >= 1, "accum", "must be at least 1");
  check(o.steps >= 1, "steps", "must be at least 1");
  check(o.warmup >= 0 && o.warmup < o.steps, "warmup", "must be in [0, steps)");
  check(o.lr > 0, "lr", "must be positive");
  check(o.valFraction >= 0 && o.valFraction < 0.5, "val-fraction", "must be in [0, 0.5)");
  check(vocab > 0, "tokenizer", "empty vocabulary");
  check(o.saveDtype == "float32" || o.saveDtype == "float16" || o.saveDtype == "bfloat16", "save-dtype",
        "expected float32, float16 or bfloat16, got '" + o.saveDtype + "'");
  check(o.dtype == "float32" || o.dtype == "bfloat16", "dtype",
        "expected float32 or bfloat16, got '" + o.dtype + "'");
  check(tokens >= static_cast<size_t>(4 * o.seqlen), "text",
        "too short: " + std::to_string(tokens) + " tokens for windows of " + std::to_string(o.seqlen));
}

// "cpu", "cuda" or "cuda:N"; qs::Error naming the option when the name is malformed, LibTorch has
// no CUDA, or the index is past the GPUs present.
at::Device trainingDevice(const std::string& name) {
  if (name == "cpu") return at::Device(at::kCPU);
  const bool cuda = name == "cuda" || name.rfind("cuda:", 0) == 0;
  check(cuda, "device", "expected cpu, cuda or cuda:N, got '" + name + "'");
  int index = 0;
  if (name.size() > 5) {
    const std::string digits = name.substr(5);
    check(digits.find_first_not_of("0123456789") == std::string::npos && digits.size() < 4, "device",
          "expected cuda:N with a GPU index N, got '" + name + "'");
    index = std::stoi(digits);
  }
  check(at::hasCUDA(), "device", "'" + name + "': this build of LibTorch has no CUDA; use --device cpu");
  const int gpus = at::detail::getCUDAHooks().getNumGPUs();
  check(index < gpus, "device", "'" + name + "': only " + std::to_string(gpus) + " CUDA device(s) present");
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

// Windows for optimizer step `step`, micro-batch `micro`: a function of (seed, step, micro) only,
// so a resumed run draws exactly the batches the uninterrupted run would have drawn.
at::Tensor sampleBatch(const at::Tensor& train, const TrainOptions& o, int64_t step, int64_t micro) {
  const uint64_t key = o.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step * o.accum + micro) + 1;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(key);
  const int64_t starts = train.size(0) - o.seqlen + 1;
  at::Tensor s = at::randint(0, starts, {o.batch}, gen, at::kLong);
  at::Tensor offs = s.view({o.batch, 1}) + at::arange(o.seqlen, at::kLong).view({1, o.seqlen});
  return train.index_select(0, offs.view({-1})).view({o.batch, o.seqlen});
}

// exp(mean window loss) over non-overlapping seqlen windows of the held-out tail (the GPTQ
// protocol the evaluator uses).
double validationPerplexity(const CausalLm& m, const at::Tensor& val, const TrainOptions& o) {
  const int64_t windows = std::min(o.valWindows, val.size(0) / o.seqlen);
  if (windows <= 0) return std::nan("");
  at::NoGradGuard noGrad;
  double sum = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += o.batch) {
    const int64_t n = std::min(o.batch, windows - w0);
    at::Tensor ids =
        val.narrow(0, w0 * o.seqlen, n * o.seqlen).view({n, o.seqlen}).to(m.params().front().second.device());
    at::Tensor logits = m.forward(ids.narrow(1, 0, o.seqlen - 1));
    at::Tensor nll = at::cross_entropy_loss(logits.reshape({-1, m.vocab()}),
                                            ids.narrow(1, 1, o.seqlen - 1).reshape({-1}), {}, at::Reduction::None);
    sum += nll.view({n, o.seqlen - 1}).mean(1).sum().item<double>();
  }
  return std::exp(sum / static_cast<double>(windows));
}

Named detached(const Named& in) {
  Named out;
  for (const auto& [n, t] : in) out.emplace_back(n, t.detach().cpu());
  return out;
}

Named readAll(const std::string& path) {
  auto f = io::SafetensorsFile::open(path);
  Named out;
  for (const auto& meta : f->tensors()) out.emplace_back(meta.name, f->load(meta.name));
  return out;
}

// The Hugging Face folder (what openModel and transformers read), tensors in `dtype`.
void writeModelFolder(const CausalLm& m, const std::string& dir, const std::string& dtype = "float32") {
  sfs::create_directories(dir);
  Named tensors = detached(m.params());
  std::string config = m.configJson();
  if (dtype != "float32") {
    const at::ScalarType t = dtype == "float16" ? at::kHalf : at::kBFloat16;
    for (auto& [name, x] : tensors) x = x.to(t);
    nlohmann::json j = nlohmann::json::parse(config);
    j["torch_dtype"] = dtype;
    config = j.dump(2) + "\n";
  }
  io::writeSafetensors(fs::join(dir, "model.safetensors"), tensors, {{"format", "pt"}});
  fs::writeAtomic(fs::join(dir, "config.json"), config);
}

// checkpoint/ = the model folder + optimizer.safetensors + trainer_state.json. Written complete in
// checkpoint.tmp, then swapped in by renames, so an interrupted write leaves the previous one.
void writeCheckpoint(const CausalLm& m, const AdamW& opt, const TrainOptions& o, int64_t step) {
  const std::string dir = fs::join(o.outDir, "checkpoint"), tmp = dir + ".tmp", old = dir + ".old";
  sfs::remove_all(tmp);
  writeModelFolder(m, tmp);
  io::writeSafetensors(fs::join(tmp, "optimizer.safetensors"), detached(opt.state()));
  nlohmann::json st = {{"step", step}, {"optimizer_steps", opt.steps()}, {"seed", o.seed},
                       {"seqlen", o.seqlen}, {"batch", o.batch}, {"accum", o.accum}, {"total_steps", o.steps}};
  fs::writeAtomic(fs::join(tmp, "trainer_state.json"), st.dump(2) + "\n");
  sfs::remove_all(old);
  if (sfs::exists(dir)) sfs::rename(dir, old);
  sfs::rename(tmp, dir);
  sfs::remove_all(old);
}

// Returns the checkpoint's step (0 when there is none).
int64_t readCheckpoint(CausalLm& m, AdamW& opt, const TrainOptions& o) {
  std::string dir = fs::join(o.outDir, "checkpoint");
  if (!sfs::exists(dir) && sfs::exists(dir + ".old")) dir += ".old";  // died between the two renames
  if (!sfs::exists(fs::join(dir, "trainer_state.json"))) return 0;
  const std::string statePath = fs::join(dir, "trainer_state.json");
  nlohmann::json st;
  try {
    st = nlohmann::json::parse(fs::readText(statePath));
  } catch (const nlohmann::json::exception& e) {
    throw fileError(statePath, std::string("invalid JSON: ") + e.what());
  }
  for (const char* k : {"seqlen", "batch", "accum", "seed"}) {
    const int64_t want = std::string(k) == "seqlen" ? o.seqlen : std::string(k) == "batch" ? o.batch
                         : std::string(k) == "accum" ? o.accum : static_cast<int64_t>(o.seed);
    if (!st.contains(k) || st[k].get<int64_t>() != want)
      throw fileError(statePath, std::string("key '") + k + "' differs from this run's option; resume with the "
                                 "same options or choose another --out");
  }
  m.loadValues(readAll(fs::join(dir, "model.safetensors")), fs::join(dir, "model.safetensors"));
  opt.loadState(readAll(fs::join(dir, "optimizer.safetensors")), st.at("optimizer_steps").get<int64_t>(),
                fs::join(dir, "optimizer.safetensors"));
  return st.at("step").get<int64_t>();
}

// The current weights through the inference engine (a temporary model folder) on the
// validation windows: perplexity and outlier metrics of the model as QuantScope will load it.
eval::OutlierMetrics engineOutlierMetrics(const CausalLm& m, const at::Tensor& val, const TrainOptions& o) {
  const std::string dir = fs::join(o.outDir, ".validation-model");
  sfs::remove_all(dir);
  writeModelFolder(m, dir);
  eval::OutlierMetrics r;
  {
    auto engine = model::openModel(dir);
    at::Tensor ids = val.to(at::kInt).contiguous();
    std::vector<int32_t> tokens(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel());
    r = eval::evaluateOutlierMetrics(*engine, tokens,
                                     eval::PerplexityOptions()
                                         .setSeqlen(static_cast<int>(o.seqlen))
                                         .setBatchSize(static_cast<int>(o.batch))
                                         .setLimitWindows(o.valWindows));
  }
  sfs::remove_all(dir);
  return r;
}

}  // namespace

CausalLmShape modelShape(const TrainOptions& o, int64_t vocab) {
  CausalLmShape shape;
  shape.vocab = vocab;
  shape.hidden = o.hidden;
  shape.layers = o.layers;
  shape.heads = o.heads;
  shape.kvHeads = o.kvHeads;
  shape.ffn = o.ffn;
  shape.maxPositions = o.seqlen;
  shape.attention = o.attention;
  return shape;
}

void checkDeviceAndDtype(const TrainOptions& o) {
  check(o.dtype == "float32" || o.dtype == "bfloat16", "dtype", "expected float32 or bfloat16, got '" + o.dtype + "'");
  trainingDevice(o.device);
}

TrainResult train(const std::vector<int32_t>& tokens, int64_t vocab, const TrainOptions& o, jobs::Progress& progress) {
  validate(o, tokens.size(), vocab);
  const at::Device device = trainingDevice(o.device);
  at::Tensor all = at::tensor(at::ArrayRef<int32_t>(tokens), at::kInt).to(at::kLong);
  const int64_t n = all.size(0);
  const int64_t nVal = static_cast<int64_t>(static_cast<double>(n) * o.valFraction);
  at::Tensor trainIds = all.narrow(0, 0, n - nVal), valIds = all.narrow(0, n - nVal, nVal);
  check(trainIds.size(0) >= o.seqlen, "text", "too short for one training window");
  if (all.max().item<int64_t>() >= vocab || all.min().item<int64_t>() < 0)
    throw Error("token ids fall outside the tokenizer's vocabulary of " + std::to_string(vocab));

  std::unique_ptr<CausalLm> lm = makeCausalLm(o.architecture, modelShape(o, vocab), o.seed);
  CausalLm& model = *lm;
  model.setComputeDtype(o.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat);
  model.toDevice(device);
  std::vector<AdamW::Param> ps;
  std::vector<at::Tensor> values;
  for (const auto& [name, t] : model.params()) {
    ps.push_back({name, t, model.decays(name)});
    values.push_back(t);
  }
  AdamW opt(std::move(ps), AdamWOptions().withWeightDecay(o.weightDecay));

  TrainResult r;
  r.device = device.str();
  if (o.resume) r.startStep = readCheckpoint(model, opt, o);
  r.steps = r.startStep;
  const int64_t last = o.stopAfter > 0 ? std::min(o.stopAfter, o.steps) : o.steps;
  const double tokensPerStep = static_cast<double>(o.batch * o.accum * o.seqlen);
  double trainSeconds = 0;
  for (int64_t step = r.startStep; step < last; ++step) {
    progress.checkCancel();
    const auto t0 = std::chrono::steady_clock::now();
    double loss = 0;
    opt.zeroGrad();
    for (int64_t a = 0; a < o.accum; ++a) {
      at::Tensor l = model.loss(sampleBatch(trainIds, o, step, a).to(device));
      (l / static_cast<double>(o.accum)).backward();
      loss += l.item<double>() / static_cast<double>(o.accum);
    }
    if (!std::isfinite(loss))
      throw Error("training diverged at step " + std::to_string(step + 1) + " (loss " + std::to_string(loss) +
                  "); lower --lr or raise --warmup");
    clipGradNorm(values, o.clip);
    opt.step(cosineSchedule(step, o.warmup, o.steps, o.lr, o.minLrRatio));
    trainSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.losses.push_back(loss);
    r.steps = step + 1;
    r.tokensPerSecond = tokensPerStep * static_cast<double>(r.losses.size()) / std::max(trainSeconds, 1e-9);

    const bool end = r.steps == last;
    if ((o.valEvery > 0 && r.steps % o.valEvery == 0) || (end && nVal >= o.seqlen)) {
      ValPoint v;
      v.step = r.steps;
      v.perplexity = validationPerplexity(model, valIds, o);
      if (o.outlierMetrics && nVal >= o.seqlen) {
        v.outliers = engineOutlierMetrics(model, valIds, o);
        v.hasOutliers = true;
      }
      r.validation.push_back(v);
      if (o.onValidation) o.onValidation(v);
    }
    if ((o.checkpointEvery > 0 && r.steps % o.checkpointEvery == 0) || end) {
      writeCheckpoint(model, opt, o, r.steps);
      writeModelFolder(model, o.outDir, o.saveDtype);
    }
    char msg[160];
    const int len = std::snprintf(msg, sizeof msg, "step %lld/%lld  loss %.4f  %.0f tok/s",
                                  static_cast<long long>(r.steps), static_cast<long long>(o.steps), loss,
                                  r.tokensPerSecond);
    if (!r.validation.empty() && len > 0 && len < static_cast<int>(sizeof msg))
      std::snprintf(msg + len, sizeof msg - static_cast<size_t>(len), "  val ppl %.2f", r.validation.back().perplexity);
    progress.update(static_cast<double>(r.steps) / static_cast<double>(o.steps), msg);
  }
  if (r.losses.empty()) writeModelFolder(model, o.outDir, o.saveDtype);  // resumed at the end: the folder from the checkpoint
  return r;
}

}  // namespace qs::train
