#include "core/algo/export.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "core/algo/gguf_export.h"
#include "core/algo/pipeline.h"
#include "core/algo/quantize_config.h"
#include "core/io/gptq_pack.h"
#include "core/io/hf_folder.h"
#include "core/io/tensor_dtype.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/io/weight_source.h"
#include "core/model/config.h"
#include "core/model/family.h"
#include "core/quant/quant_spec.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/strings.h"

namespace qs::algo {
namespace {

std::string baseOf(const std::string& hfWeight) { return hfWeight.substr(0, hfWeight.size() - 7); }  // - ".weight"

const char* torchDtypeName(at::ScalarType t) {
  return t == at::kHalf ? "float16" : t == at::kBFloat16 ? "bfloat16" : "float32";
}

void checkFormat(const QuantArtifact& a, const std::map<std::string, GridShape>& grids, const ExportOptions& o) {
  if (o.dtype != at::kHalf && o.dtype != at::kBFloat16 && o.dtype != at::kFloat)
    throw Error("--dtype: export writes float16, bfloat16 or float32");
  if (o.outDir.empty()) throw Error("-o: an output folder is required");
  switch (o.format) {
    case ExportFormat::HfFp16:
    case ExportFormat::Gguf: break;
    case ExportFormat::FakeFp16:
      if (a.bits >= 16 || grids.empty())
        throw Error("--format fake-fp16: the run did not quantize weights (wbits 16); use --format hf-fp16");
      break;
    case ExportFormat::ScaleShift:
      if (a.migrations.empty())
        throw Error("--format scale-shift: the run has no OS+/SmoothQuant migration (migrate: " + a.migration +
                    "); quantize with --migrate osplus or smoothquant");
      break;
    case ExportFormat::Gptq:
      if (a.bits >= 16 || grids.empty())
        throw Error("--format gptq: the run did not quantize weights (wbits 16)");
      if (a.bits != 2 && a.bits != 3 && a.bits != 4 && a.bits != 8)
        throw Error("--format gptq: the GPTQ layout holds 2, 3, 4 or 8 bits; this run used " + std::to_string(a.bits) +
                    " (use --format fake-fp16)");
      if (const quant::QuantSpec spec = parseQuantizeConfig(a.configYaml, "run config").layer.spec;
          quant::roundsWithZeroInside(spec))
        throw Error("--format gptq: the run is on llama.cpp's " + gridTargetType(spec) + " grid, whose zero points "
                    "(minimum / scale) are not integers as the GPTQ layout stores them; export --format gguf (or "
                    "fake-fp16)");
      for (const auto& [site, g] : grids) {
        if (g.outliers > 0)
          throw Error("--format gptq: site '" + site + "' keeps full-precision outliers (QuantEase --outlier), which "
                      "the GPTQ layout cannot hold (use --format fake-fp16)");
        const int64_t out = g.out, in = g.in;
        if (!o.allowPadding && (in % 32 != 0 || out % 32 != 0))
          throw Error("--format gptq: site '" + site + "' is [" + std::to_string(out) + ", " + std::to_string(in) +
                      "]; GPTQ runtimes need in and out features divisible by 32. --allow-padding packs it anyway "
                      "(QuantScope reloads it; AutoGPTQ kernels will not)");
      }
      break;
  }
}

// transformers' and llama.cpp's LLaMA/Mistral code has no bias after RMSNorm (and transformers,
// before 4.41, none on the MLP projections): an OS+-shifted run folded into such a file would load
// without an error and compute another model (issue 17: logits off by up to 14). Refused, naming
// the ways out.
void checkTransformersCanHoldShifts(const QuantArtifact& a, const model::ModelConfig& cfg, const ExportOptions& o,
                                    const std::string& configPath) {
  if (cfg.family != model::Family::Llama) return;
  for (const auto& m : a.migrations)
    if (m.shift.defined())
      throw Error(std::string("--format ") + exportFormatName(o.format) + ": the run shifted the inputs of " +
                  (cfg.modelType.empty() ? std::string("llama") : cfg.modelType) + " layers (OS+ shifting, pair '" +
                  m.pair + "'); the folded model needs a bias after each RMSNorm and on the MLP projections, which "
                  "transformers' and llama.cpp's LLaMA/Mistral code do not load: they would drop them without an "
                  "error and compute another model (" + configPath + "). Quantize with scaling only (qscope "
                  "quantize --no-shift, or osplus_shift: false in the run config) for a file they load, or export "
                  "--format scale-shift to keep the shifts; `qscope eval RUN` evaluates the shifted run itself");
}

// The config.json switch transformers builds a family's projection biases from (nullptr: the
// family always has them).
struct BiasSwitch {
  const char* attention;
  const char* mlp;
};
BiasSwitch biasSwitch(model::Family f) {
  switch (f) {
    case model::Family::Llama: return {"attention_bias", "mlp_bias"};
    case model::Family::Falcon: return {"bias", "bias"};
    case model::Family::Opt: return {"enable_bias", "enable_bias"};
    case model::Family::GptNeox: return {"attention_bias", nullptr};
    case model::Family::Bloom:
    case model::Family::Gpt2: return {nullptr, nullptr};
  }
  return {nullptr, nullptr};
}

bool isMlpSite(const model::FamilySpec& spec, const std::string& hfWeight) {
  for (const auto& l : spec.linears)
    if (str::endsWith(hfWeight, "." + l.local + ".weight"))
      return l.role == model::Role::Gate || l.role == model::Role::Up || l.role == model::Role::Down;
  return false;
}

nlohmann::json readConfig(const std::string& modelPath) {
  const std::string p = fs::join(modelPath, "config.json");
  if (!fs::isDirectory(modelPath) || !fs::exists(p))
    throw fileError(modelPath, "export needs a Hugging Face model folder with config.json as the run's source");
  try {
    return nlohmann::json::parse(fs::readText(p));
  } catch (const nlohmann::json::exception& e) {
    throw fileError(p, std::string("invalid JSON: ") + e.what());
  }
}

at::Tensor cast(const at::Tensor& t, at::ScalarType dtype) {
  return at::isFloatingType(t.scalar_type()) ? t.to(dtype) : t;
}

// The dtype a tensor of dtype t is written in.
at::ScalarType exportedDtype(at::ScalarType t, at::ScalarType floatDtype) {
  return at::isFloatingType(t) ? floatDtype : t;
}

// A tensor of the export known by dtype and shape, produced when its shard is written: peak memory
// is one tensor (and its conversions), whatever the model's size.
struct Planned {
  at::ScalarType dtype = at::kFloat;
  std::vector<int64_t> shape;
  std::function<at::Tensor()> make;
};

// The four GPTQ tensors of a site, packed once when the first is written and dropped after the last.
class GptqPacker {
 public:
  GptqPacker(const QuantArtifact& a, const ExportOptions& o, std::string site) : a_(a), o_(o), site_(std::move(site)) {}
  at::Tensor take(at::Tensor io::GptqLinear::*field) {
    if (taken_ == 0) {
      const LayerQuantResult g = artifactGrid(a_, site_);
      q_ = io::packGptq(expandCodes(g.codes), g.scales, g.zeros, g.gIdx, a_.bits, a_.symmetric, o_.dtype, o_.gptqV1, site_);
    }
    at::Tensor t = q_.*field;
    if (++taken_ == 4) {
      q_ = {};
      taken_ = 0;
    }
    return t;
  }

 private:
  const QuantArtifact& a_;
  const ExportOptions& o_;
  std::string site_;
  io::GptqLinear q_;
  int taken_ = 0;
};

}  // namespace

const char* exportFormatName(ExportFormat f) {
  switch (f) {
    case ExportFormat::HfFp16: return "hf-fp16";
    case ExportFormat::Gptq: return "gptq";
    case ExportFormat::FakeFp16: return "fake-fp16";
    case ExportFormat::ScaleShift: return "scale-shift";
    case ExportFormat::Gguf: return "gguf";
  }
  return "?";
}

ExportFormat parseExportFormat(const std::string& s) {
  const std::string l = str::toLower(s);
  if (l == "hf-fp16" || l == "hf") return ExportFormat::HfFp16;
  if (l == "gptq") return ExportFormat::Gptq;
  if (l == "fake-fp16" || l == "fake") return ExportFormat::FakeFp16;
  if (l == "scale-shift") return ExportFormat::ScaleShift;
  if (l == "gguf") return ExportFormat::Gguf;
  throw Error("--format: '" + s + "' is not hf-fp16, gptq, fake-fp16, scale-shift or gguf");
}

namespace {

ExportReport finishReport(ExportReport rep, const io::HfFolderWriter& out, const std::vector<std::string>& files) {
  rep.files = files;
  rep.fileBytes.clear();
  rep.totalBytes = 0;
  for (const auto& name : files) {
    int64_t bytes = 0;
    for (const auto& f : out.files())
      if (f.name == name) bytes = f.bytes;
    rep.fileBytes.push_back(bytes);
    rep.totalBytes += bytes;
  }
  rep.tensorBytes = out.tensorBytes();
  rep.dirExists = out.dirExists();
  return rep;
}

// exportRun and planExport: one sequence of writer calls, so the plan cannot drift from the export.
ExportReport exportImpl(const QuantArtifact& a, const ExportOptions& o, jobs::Progress& progress, bool plan) {
  const std::map<std::string, GridShape> grids = artifactGridShapes(a);
  checkFormat(a, grids, o);
  const bool gguf = o.format == ExportFormat::Gguf;
  nlohmann::json config;  // the source's config.json, for the folder and GGUF formats
  GgufVocab ggufVocabulary;
  if (o.format != ExportFormat::ScaleShift) {
    config = readConfig(a.modelPath);
    const std::string configPath = fs::join(a.modelPath, "config.json");
    const model::ModelConfig cfg = model::parseConfig(config, configPath);
    checkTransformersCanHoldShifts(a, cfg, o, configPath);
    if (gguf) ggufVocabulary = checkGgufExport(a, o, cfg);
  }
  ExportReport rep;
  rep.dir = std::filesystem::absolute(o.outDir).lexically_normal().string();
  // The folder formats' writer (GGUF writes one file, gguf_export.h).
  std::unique_ptr<io::HfFolderWriter> out;
  if (!gguf)
    out = plan ? std::make_unique<io::HfFolderWriter>(io::HfFolderWriter::Plan{}, o.outDir, o.maxShardBytes)
               : std::make_unique<io::HfFolderWriter>(o.outDir, o.force, o.maxShardBytes);

  if (o.format == ExportFormat::ScaleShift) {
    std::vector<std::pair<std::string, at::Tensor>> t;
    nlohmann::json pairs = nlohmann::json::array();
    for (const auto& m : a.migrations) {
      if (m.shift.defined()) t.emplace_back(m.pair + ".shift", cast(m.shift, at::kFloat));
      if (m.scale.defined()) t.emplace_back(m.pair + ".scale", cast(m.scale, at::kFloat));
      pairs.push_back({{"pair", m.pair}, {"kind", m.kind}, {"consumers", m.consumers}, {"threshold", m.threshold}});
    }
    out->writeSafetensorsFile("scale_shift.safetensors", t,
                             {{"format", "quantscope-scale-shift/1"},
                              {"method", a.migration},
                              {"model", a.modelPath},
                              {"convention", "x' = (x - shift) / scale at the consumers; norm weight /= scale, "
                                             "norm bias = (bias - shift) / scale, consumer bias += W shift, "
                                             "consumer columns *= scale"},
                              {"pairs", pairs.dump()}});
    progress.update(1.0, "scale-shift");
    const std::vector<std::string> files = out->commit();
    return finishReport(std::move(rep), *out, files);
  }

  // GGUF carries the dequantized weights like fake-fp16 (its types round them again, or keep them).
  const bool fake = o.format == ExportFormat::FakeFp16 || (gguf && a.bits < 16 && !grids.empty());
  const bool gptq = o.format == ExportFormat::Gptq;
  // Migrated weights of a model larger than memory spill beside the export (removed at the end); a
  // plan touches nothing there (the folder's parent may not even exist yet): it spills to the
  // system's temporary directory.
  fs::ScopedDir spill;
  if (!a.migrations.empty())
    spill = fs::ScopedDir(fs::makeJobTempDir(".qscope-export-spill",
                                             plan ? "" : std::filesystem::path(rep.dir).parent_path().string()));
  // A plan needs only shapes: the dequantized weights have those of the FP ones.
  auto model = rebuildQuantizedModel(a, /*quantizedWeights=*/fake && !plan, c10::kCPU, spill.path());
  auto src = io::openWeights(a.modelPath);
  const model::FamilySpec spec = model::makeFamilySpec(model->config(), *src);

  // Everything the run changed, by Hugging Face name; GPTQ layers replace their ".weight". Weights
  // are produced when written (held: only the vectors, biases and norms).
  std::map<std::string, Planned> overrides;
  std::set<std::string> dropped;
  std::vector<std::string> added;  // names absent from the source, in order
  auto putLazy = [&](const std::string& name, at::ScalarType dtype, std::vector<int64_t> shape,
                     std::function<at::Tensor()> make) {
    if (!src->has(name) && !overrides.count(name)) added.push_back(name);
    overrides[name] = Planned{dtype, std::move(shape), std::move(make)};
  };
  auto put = [&](const std::string& name, const at::Tensor& t) {
    putLazy(name, t.scalar_type(), t.sizes().vec(), [t] { return t; });
  };
  bool attnBias = false, mlpBias = false;
  std::map<std::string, std::string> gridSiteOf;  // HF weight name -> its site, where the run has a grid
  for (const auto& si : model->sites()) {
    progress.checkCancel();
    const std::string base = baseOf(si.hfWeight);
    auto g = grids.find(si.name);
    if (g != grids.end()) gridSiteOf[si.hfWeight] = si.name;
    if (gptq && g != grids.end()) {
      const int64_t in = g->second.in, out = g->second.out, groups = g->second.groups;
      auto words = [&](int64_t n) { return io::packedWords(n, a.bits); };
      auto packer = std::make_shared<GptqPacker>(a, o, si.name);
      dropped.insert(si.hfWeight);
      putLazy(base + ".qweight", at::kInt, {words(in), out}, [packer] { return packer->take(&io::GptqLinear::qweight); });
      putLazy(base + ".qzeros", at::kInt, {groups, words(out)}, [packer] { return packer->take(&io::GptqLinear::qzeros); });
      putLazy(base + ".scales", o.dtype, {groups, out}, [packer] { return packer->take(&io::GptqLinear::scales); });
      putLazy(base + ".g_idx", at::kInt, {in}, [packer] { return packer->take(&io::GptqLinear::gIdx); });
    } else {
      const bool transposed = spec.transposedWeights;
      putLazy(si.hfWeight, model->dtype(),
              transposed ? std::vector<int64_t>{si.inFeatures, si.outFeatures}
                         : std::vector<int64_t>{si.outFeatures, si.inFeatures},
              [m = model.get(), site = si.name, transposed] {
                const at::Tensor w = m->siteWeight(site).to(at::kCPU);
                return transposed ? w.t().contiguous() : w;
              });
    }
    const at::Tensor b = model->siteBias(si.name);
    if (b.defined()) {
      put(base + ".bias", b.to(at::kCPU));
      (isMlpSite(spec, si.hfWeight) ? mlpBias : attnBias) = true;
    }
  }
  for (int blk = 0; blk < model->numBlocks(); ++blk)
    for (int which = 1; which <= 2; ++which) {
      const std::string& local = which == 1 ? spec.ln1 : spec.ln2;
      if (local.empty()) continue;
      const model::NormParams np = model->normParams(blk, which);
      const std::string name = spec.blockPrefix + std::to_string(blk) + "." + local;
      if (np.weight.defined()) put(name + ".weight", np.weight);
      if (np.bias.defined()) {
        if (spec.normKindRms)  // checkTransformersCanHoldShifts refused such runs
          throw Error("export: '" + name + "' would need a bias, which transformers' RMSNorm does not have");
        put(name + ".bias", np.bias);
      }
    }
  // Biases the run added (OS+ shifting: consumer bias += W z) load in transformers only where the
  // family's switch says the projections have biases (Falcon-7B: bias false): the switch is set
  // and every projection under it gets one, zero where the run added none.
  const BiasSwitch sw = biasSwitch(model->config().family);
  std::set<std::string> switched;
  if (sw.attention && attnBias && !model->config().attentionBias) switched.insert(sw.attention);
  if (sw.mlp && mlpBias && !model->config().mlpBias) switched.insert(sw.mlp);
  for (const std::string& key : switched) config[key] = true;
  for (const auto& si : model->sites()) {
    const char* key = isMlpSite(spec, si.hfWeight) ? sw.mlp : sw.attention;
    const std::string base = baseOf(si.hfWeight);
    if (key && switched.count(key) && !overrides.count(base + ".bias") && !src->has(base + ".bias"))
      put(base + ".bias", at::zeros({si.outFeatures}, at::kFloat));
  }

  // Tensors in the source's order, then the new ones; each is produced, converted and written
  // when its shard is written (progress and cancel per tensor).
  std::vector<std::string> order;
  for (const auto& m : src->tensors())
    if (!dropped.count(m.name)) order.push_back(m.name);
  order.insert(order.end(), added.begin(), added.end());
  std::map<std::string, const io::TensorMeta*> metas;
  for (const auto& m : src->tensors()) metas[m.name] = &m;
  if (gguf) {
    std::vector<GgufSourceTensor> tensors;
    for (const std::string& n : order) {
      auto it = overrides.find(n);
      const auto site = gridSiteOf.find(n);
      if (it != overrides.end())
        tensors.push_back({n, it->second.shape, it->second.make, site != gridSiteOf.end() ? site->second : "",
                           it->second.dtype});
      else
        tensors.push_back({n, metas.at(n)->shape, [s = src.get(), n] { return s->load(n); }, "",
                           io::toScalarType(metas.at(n)->dtype)});
    }
    writeGgufExport(a, o, model->config(), std::move(ggufVocabulary), tensors, rep, progress, plan);
    progress.update(1.0, plan ? "planned" : "written");
    return rep;
  }
  size_t written = 0;
  const std::string what = exportFormatName(o.format);
  for (const std::string& n : order) {
    progress.checkCancel();
    auto it = overrides.find(n);
    std::function<at::Tensor()> make;
    at::ScalarType dtype;
    std::vector<int64_t> shape;
    if (it != overrides.end()) {
      dtype = exportedDtype(it->second.dtype, o.dtype);
      shape = it->second.shape;
      make = it->second.make;
    } else {
      const io::TensorMeta& m = *metas.at(n);
      dtype = exportedDtype(io::toScalarType(m.dtype), o.dtype);
      shape = m.shape;
      make = [s = src.get(), n] { return s->load(n); };
    }
    out->addLazyTensor(n, dtype, shape, [&, n, dtype, make = std::move(make)] {
      progress.checkCancel();
      at::Tensor t = cast(make(), dtype);
      progress.update(static_cast<double>(++written) / static_cast<double>(order.size() + 1), what + " " + n);
      return t;
    });
  }

  // transformers falls back to its family's defaults where config.json has no bos/eos ids (OPT:
  // token 2), so generation would stop on the wrong token: the tokenizer's own ids are written.
  if (!config.contains("bos_token_id") || !config.contains("eos_token_id")) {
    try {
      const auto tokenizer = io::loadTokenizer(a.modelPath);
      if (!config.contains("bos_token_id") && tokenizer->bosId()) config["bos_token_id"] = *tokenizer->bosId();
      if (!config.contains("eos_token_id") && tokenizer->eosId()) config["eos_token_id"] = *tokenizer->eosId();
    } catch (const Error& e) {
      rep.notes.push_back(std::string("config.json has no bos/eos token ids and the tokenizer could not be read (") +
                          e.what() + "); runtimes will use their defaults");
    }
  }
  config["torch_dtype"] = torchDtypeName(o.dtype);
  nlohmann::json qs = {{"format", exportFormatName(o.format)}, {"migration", a.migration}, {"source", a.modelPath}};
  if (o.runId > 0) qs["run"] = o.runId;
  if (fake || gptq) qs["weights"] = a.method + " w" + std::to_string(a.bits) + (a.groupSize > 0 ? " g" + std::to_string(a.groupSize) : " per-channel");
  config["quantscope_export"] = qs;
  if (gptq) {
    // The run's own settings where the format has a key for them.
    const QuantizeConfig run = parseQuantizeConfig(a.configYaml, "run config");
    const nlohmann::json q = {{"bits", a.bits},
                              {"group_size", a.groupSize > 0 ? a.groupSize : -1},
                              {"desc_act", a.actOrder},
                              {"sym", a.symmetric},
                              {"static_groups", run.layer.spec.staticGroups},
                              {"true_sequential", run.trueSequential},
                              {"damp_percent", run.layer.percdamp},
                              {"model_name_or_path", nullptr},
                              {"model_file_base_name", "model"},
                              {"quant_method", "gptq"},
                              {"checkpoint_format", o.gptqV1 ? "gptq" : "gptq_v2"}};
    config["quantization_config"] = q;
    out->writeJson("quantize_config.json", q);
    if (!o.gptqV1)
      rep.notes.push_back("checkpoint_format gptq_v2 (zero points stored as they are): GPTQModel and QuantScope read "
                          "it; AutoGPTQ 0.7.1 ignores the key and reads the zero points as v1 (off by one, a wrong "
                          "model); use --gptq-format gptq for AutoGPTQ and transformers' AutoGPTQ path");
    if (o.allowPadding) {
      std::vector<std::string> padded;
      for (const auto& [site, g] : grids)
        if (g.out % 32 != 0 || g.in % 32 != 0)
          padded.push_back(site + " [" + std::to_string(g.out) + ", " + std::to_string(g.in) + "]");
      if (!padded.empty())
        rep.notes.push_back("padded GPTQ packing (--allow-padding): " + std::to_string(padded.size()) + " of " +
                            std::to_string(grids.size()) + " layers have in/out features not divisible by 32 (" +
                            padded.front() + (padded.size() > 1 ? ", ..." : "") +
                            "); QuantScope reloads them, but no third-party GPTQ loader (AutoGPTQ, GPTQModel, "
                            "transformers) accepts such layers: this folder is for QuantScope only");
    }
  }
  if (fake) rep.notes.push_back("fake-quantized weights are stored as dense " + std::string(torchDtypeName(o.dtype)) +
                                " tensors; activation quantization (a_bits) is not part of any export");
  out->writeJson("config.json", config);
  if (out->copyModelFiles(a.modelPath, {"generation_config.json"}).empty()) {
    nlohmann::json gen = {{"_from_model_config", true}};
    for (const char* k : {"bos_token_id", "eos_token_id", "pad_token_id"})
      if (config.contains(k)) gen[k] = config[k];
    out->writeJson("generation_config.json", gen);
  }
  out->copyModelFiles(a.modelPath, io::tokenizerFilesIn(a.modelPath));
  progress.checkCancel();
  const std::vector<std::string> files = out->commit();
  progress.update(1.0, plan ? "planned" : "written");
  return finishReport(std::move(rep), *out, files);
}

}  // namespace

ExportReport exportRun(const QuantArtifact& a, const ExportOptions& o, jobs::Progress& progress) {
  if (o.parityText.empty()) return exportImpl(a, o, progress, /*plan=*/false);
  // Writing takes most of an export; the check (two short passes) the last fifth of the bar.
  jobs::SubProgress writing(progress, 0.0, 0.8), checking(progress, 0.8, 1.0);
  ExportReport rep = exportImpl(a, o, writing, /*plan=*/false);
  try {
    rep.parity = measureExportParity(a, o, rep, checking);
  } catch (const Error& e) {  // the export is written; the check could not run (no tokenizer, ...)
    rep.parity.note = e.what();
  } catch (const Cancelled&) {  // the export is complete and in place; only its check is skipped
    rep.parity = ExportParity();
    rep.parity.note = "the check was cancelled (the export is complete)";
  }
  rep.notes.push_back(rep.parity.describe());
  progress.update(1.0, "written and checked");
  return rep;
}

ExportReport planExport(const QuantArtifact& a, const ExportOptions& o) {
  return exportImpl(a, o, jobs::Progress::none(), /*plan=*/true);
}

}  // namespace qs::algo
