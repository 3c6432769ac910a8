// The options of a `quantize` job (method, weight grid, calibration, evaluation) and their YAML
// form, one place for both directions. A quantize config file looks like
//
//   quantize:
//     method: gptq          # rtn | gptq | quantease | gptq_quantease
//     wbits: 4
//     groupsize: 128        # -1 = per output channel
//     nsamples: 128
//     seqlen: 2048
//     eval: [wikitext2, ptb]
//     eval_tasks: [piqa, arc_easy]  # zero-shot accuracy before/after (eval_tasks_limit: N)
//     migrate: osplus       # none | osplus | smoothquant, run before the weight method
//     a_bits: 8             # activation fake-quant during evaluation (16 = off)
//     a_quantizer: per_tensor
//     precision: p.yaml     # per-layer number formats for the quantized evaluation (or the map inline)
//
// Key names follow GPTQ's command line (wbits, groupsize, act_order, static_groups, sym, percdamp,
// nsamples, seed) and QuantEase's (num_iter, outlier, structured_outlier). The stored config of a
// run is toYaml() of the resolved options, so fromYaml(toYaml(c)) == c and every run can be
// reproduced from the run store alone (DESIGN.md seam 6).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/algo/layer_quant.h"
#include "core/algo/osplus_search.h"
#include "core/quant/act_quant.h"

namespace qs::quant {
struct QConfig;
}

namespace qs::algo {

// Outlier migration run on the FP model (calibrated on the quantize calibration set) before
// the weight method.
enum class Migration { None, OsPlus, SmoothQuant };
const char* migrationName(Migration m);           // "none", "osplus", "smoothquant"
Migration parseMigration(const std::string& name);  // throws qs::Error naming "migrate"

struct QuantizeConfig {
  LayerQuantOptions layer;               // method, grid (wbits, groupsize, sym, ...), percdamp, num_iter, outliers
  bool trueSequential = true;            // "true_sequential": quantize q/k/v, o, up/gate, down in turn
  // "calibrate_rtn": RTN needs no data, so by default it runs no calibration pass and reports the
  // weight-space error per site; true measures its error on the calibration inputs instead.
  bool calibrateRtn = false;
  int batchSize = 8;                     // "batch_size": calibration samples per block forward
  int nsamples = 128;                    // "nsamples": calibration sequences
  int seqlen = 2048;                     // "seqlen": tokens per calibration sequence
  uint64_t seed = 0;                     // "seed": draws the calibration windows
  std::string dataset = "wikitext2";     // "dataset": calibration text (name or path)
  std::vector<std::string> eval = {"wikitext2"};  // "eval": perplexity datasets, before and after
  int evalSeqlen = 0;                    // "eval_seqlen": window length; 0 = min(2048, model max positions)
  int64_t evalLimitWindows = 0;          // "eval_limit_windows": first N windows only; 0 = all
  // "eval_tasks": zero-shot tasks scored before and after (piqa, arc_easy, ..., NAME=FILE for a
  // user's file; core/eval/tasks.h), lm-evaluation-harness prompts and metrics.
  std::vector<std::string> evalTasks;
  int64_t evalTasksLimit = 0;            // "eval_tasks_limit": first N examples of each task; 0 = all
  Migration migrate = Migration::None;   // "migrate": none | osplus | smoothquant
  // Activation fake-quant (W?A? emulation) during the quantized evaluation, and the activation
  // quantizer OS+'s threshold search assumes: "a_bits" (16 = off), "a_quantizer" (per_tensor
  // static | per_token | per_group), "a_group_size", "a_symmetric", "a_observer" (per_tensor).
  quant::ActQuantOptions act;
  std::vector<std::string> exceptQuantizer;  // "except_quantizer": sites whose input stays FP
  // "precision": a per-layer number-format config (core/quant/format_yaml.h) emulated on the
  // quantized model's weights and site inputs during the quantized evaluation, after the weight
  // method; "" = none. Held as its resolved `precision:` document, so a stored run carries the
  // formats themselves: the YAML key takes a file path, the map inline or none; toYaml writes
  // the map (or none).
  std::string precision;
  double sqAlpha = 0.5;                  // "sq_alpha": SmoothQuant migration strength
  int osplusSearchSteps = 100;           // "osplus_search_steps": threshold candidates - 1
  int64_t osplusSearchTokens = 1024;     // "osplus_search_tokens": calibration tokens per pair in the search
  OsPlusSearch osplusSearch = OsPlusSearch::Refine;  // "osplus_search": refine (coarse to fine) | grid (every candidate)
  bool osplusValueOut = true;            // "osplus_value_out": also migrate value -> output projection
  bool osplusShift = true;               // "osplus_shift": OS+ channel shifting z = (max + min) / 2
  bool osplusScale = true;               // "osplus_scale": OS+ channel scaling s = max(1, r / t)
  double osplusThreshold = 0;            // "osplus_threshold": fixed clipping threshold t; 0 = search it
  // "gguf_mix": a llama-quantize K mix (Q4_K_M, Q5_K_S, Q3_K_L, ...) the run targets: every site
  // gets the grid of the type that mix gives its matrix (attn_v/ffn_down of some layers Q6_K in
  // Q4_K_M, ...), the spec being the mix's main type; "" = one grid for every site.
  std::string ggufMix;

  QuantizeConfig();  // GPTQ defaults: 4 bits, asymmetric, per channel, percdamp 0.01
  QuantizeConfig& withMethod(Method v) { layer.method = v; return *this; }
  QuantizeConfig& withBits(int v) { layer.spec.bits = v; return *this; }
  QuantizeConfig& withGroupSize(int v) { layer.spec.groupSize = v; return *this; }
  QuantizeConfig& withNumIter(int v) { layer.numIter = v; return *this; }
  QuantizeConfig& withOutlier(double fraction, bool structured = false) {
    layer.outlierFraction = fraction; layer.structuredOutlier = structured; return *this;
  }
  QuantizeConfig& withSamples(int n, int len) { nsamples = n; seqlen = len; return *this; }
  QuantizeConfig& withSeed(uint64_t v) { seed = v; return *this; }
  QuantizeConfig& withDataset(const std::string& v) { dataset = v; return *this; }
  QuantizeConfig& withEval(std::vector<std::string> v) { eval = std::move(v); return *this; }
  QuantizeConfig& withMigration(Migration v) { migrate = v; return *this; }
  QuantizeConfig& withAct(const quant::ActQuantOptions& v) { act = v; return *this; }

  // Throws qs::Error naming the key of an illegal value or combination.
  void validate() const;
  // "gptq w4 g128", "quantease w3 ch +1% outliers": a short label for run lists.
  std::string label() const;
};

// The keys a quantize section may hold, in the order toYaml writes them.
const std::vector<std::string>& quantizeConfigKeys();

// `--target gguf:Q4_0|Q5_0|Q8_0|Q2_K|Q3_K|Q4_K|Q5_K|Q6_K`: the weight grid of that llama.cpp type
// (bits, groups of 32, the type's fp16 block scale: observer ggml; for the K types the sub-block
// scales and minimums ggml's quantizer gives each super-block of 256, static groups: observer
// ggml_k), so the methods choose the codes a GGUF file of that type stores and `qscope export
// --format gguf` writes them exactly. Throws qs::Error naming --target for other values.
void applyGridTarget(quant::QuantSpec& spec, const std::string& target);
// The same for a config, where the target may also be a llama-quantize K mix (gguf:Q5_K_M, Q5_K_S,
// Q4_K_M, Q4_K_S, Q3_K_L, Q3_K_M, Q3_K_S): the spec becomes its main type's grid and ggufMix the
// mix (a plain type clears it).
void applyGridTarget(QuantizeConfig& config, const std::string& target);
// The llama-quantize mixes a run can target (ggufMix values) with their main type.
const std::vector<std::pair<std::string, std::string>>& ggufMixTargets();
// Whether a run can target GGML type `type` ("Q6_K": yes; "Q5_1", "F16": no).
bool isGridTargetType(const std::string& type);
// The GGUF type a spec's grid is ("Q4_0", "Q4_K", ...), or "" when it is not a llama.cpp grid.
std::string gridTargetType(const quant::QuantSpec& spec);

// Parses a config document (the `quantize:` section; a document without it is read as the section
// itself). Keys absent keep `base`'s values. Unknown keys, wrong types and illegal values throw
// qs::Error naming `file` and the key path ("cfg.yaml: key 'quantize.wbit': unknown key ...").
QuantizeConfig parseQuantizeConfig(const std::string& yamlText, const std::string& file,
                                   const QuantizeConfig& base = QuantizeConfig());
QuantizeConfig loadQuantizeConfig(const std::string& path, const QuantizeConfig& base = QuantizeConfig());

// Every key, resolved, under `quantize:`.
std::string toYaml(const QuantizeConfig& c);

// An OS+-style q-config laid over `c` (`qscope quantize --qconfig`, the Tuning panel's q-config
// presets): a_qconfig -> activations, w_qconfig -> the weight grid's bit/symmetric/ch_axis/
// observer (c's group size when w_qconfig has none; c's act-order and static groups kept),
// except_quantizer, and migrate: true -> OS+.
void applyQConfig(QuantizeConfig& c, const quant::QConfig& q);

}  // namespace qs::algo
