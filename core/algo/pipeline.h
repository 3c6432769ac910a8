// The layer-wise quantization pipeline (DESIGN.md seam 5), GPTQ-style sequential: the
// calibration samples are embedded once, then one decoder block at a time is materialised on the
// model's device, its Linear sites are quantized from Hessians of their inputs, and the block's
// outputs are recomputed with the quantized weights as the next block's inputs before the block
// is released. Peak memory is one block plus the calibration activations.
//
// True-sequential (GPTQ's --true-sequential): inside a block, sites are quantized in groups of
// sites that read the same input (q/k/v, then o_proj, then gate/up, then down_proj). The block is
// re-run over all samples for each group, so a group's Hessians see the already quantized
// earlier groups. Groups are found by observing which sites receive the same input tensor, so
// every family (fused QKV, parallel attention) is grouped without a per-family table.
//
// A group's sites share one Hessian (they read the same input), and the block forward that feeds a
// group stops right after the group's last site has seen its input. RTN needs no data: unless
// calibrateRtn is set it runs no forward at all. With offloadWeights the quantized weights of
// finished blocks live in their block files as integer grids, so memory stays one block.
//
// Resumable: with a checkpoint folder, each finished block writes block-<i>.safetensors (its
// quantized weights as integer grids, dense only where a site has no grid, and per-site results)
// and then state.safetensors (the next block's inputs and the calibration ids, atomically
// replaced). A resumed run restores the finished blocks and
// continues from the next one; since every step is deterministic it reproduces an uninterrupted
// run bit for bit (same device and thread count).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/algo/layer_quant.h"
#include "core/jobs/progress.h"

namespace qs::model {
class Model;
}

namespace qs::algo {

struct PipelineOptions {
  LayerQuantOptions layer;        // the per-site quantizer (method, grid, percdamp, num_iter, outliers)
  int batchSize = 8;              // calibration samples per block forward
  bool trueSequential = true;     // re-run the block after each group of sites (else one group per block)
  std::string checkpointDir;      // "" = no checkpoints; else a folder for block-N / state files
  std::string checkpointTag;      // stored with checkpoints; resuming with a different tag is an error
  bool resume = false;            // continue from checkpointDir's last finished block when it has one
  bool keepGrids = false;         // keep every site's integer grid (codes, scales, zeros, g_idx, outliers) in the result
  // RTN needs no data: without this the pipeline runs no calibration pass for it (no block forward)
  // and reports the weight-space error ||W - W^||^2 / ||W||^2 per site; with it, RTN's error is the
  // calibration-output error the other methods report.
  bool calibrateRtn = false;
  // Finished blocks keep their quantized weights on disk (the block files, as integer grids) and
  // the model reads them back on demand (Model::setSiteWeightLoader): memory stays one block
  // however large the model. Needs checkpointDir or workDir. result.grids is then left empty and
  // result.blockFiles lists where the grids are.
  bool offloadWeights = false;
  std::string workDir;            // block files when there is no checkpointDir (offloadWeights)
  // Per-site grids that differ from layer.spec (a llama.cpp mix target, gguf_mix: the layers
  // llama-quantize gives more bits get that type's grid); sites not listed use layer.spec.
  std::map<std::string, quant::QuantSpec> siteSpecs;

  PipelineOptions& withLayer(const LayerQuantOptions& v) { layer = v; return *this; }
  PipelineOptions& withBatchSize(int v) { batchSize = v; return *this; }
  PipelineOptions& withTrueSequential(bool v) { trueSequential = v; return *this; }
  PipelineOptions& withCheckpoint(const std::string& dir, const std::string& tag = "") {
    checkpointDir = dir; checkpointTag = tag; return *this;
  }
  PipelineOptions& withResume(bool v) { resume = v; return *this; }
  PipelineOptions& withKeepGrids(bool v) { keepGrids = v; return *this; }
  PipelineOptions& withCalibrateRtn(bool v) { calibrateRtn = v; return *this; }
  PipelineOptions& withOffload(bool v, const std::string& dir = "") { offloadWeights = v; workDir = dir; return *this; }
  PipelineOptions& withSiteSpecs(std::map<std::string, quant::QuantSpec> v) { siteSpecs = std::move(v); return *this; }
  // The quantizer of `site`: layer, with siteSpecs' grid where it has one.
  LayerQuantOptions siteOptions(const std::string& site) const {
    LayerQuantOptions o = layer;
    if (auto it = siteSpecs.find(site); it != siteSpecs.end()) o.spec = it->second;
    return o;
  }
};

// One quantized site, as the run store and the summary table show it.
struct SiteSummary {
  int block = 0;
  int group = 0;                  // true-sequential group inside the block (0 = first)
  std::string site;               // "layers.3.self_attn.q_proj"
  std::string method;             // LayerQuantResult::method
  double relError = 0;            // ||WX - W^X||^2 / ||WX||^2 on the calibration inputs (data-free RTN:
                                  // ||W - W^||^2 / ||W||^2, errorOnWeights)
  bool errorOnWeights = false;    // relError is the weight-space error (RTN without calibration)
  double bitsPerWeight = 0;       // incl. scales/zeros/outliers
  double outlierBits = 0;         // extra bits of the full-precision part
  double hessianSeconds = 0;      // running the block and accumulating H for this site's group
  double quantSeconds = 0;        // the quantizer itself
  int64_t tokens = 0;             // calibration tokens behind H
  bool resumed = false;           // restored from a checkpoint, not computed in this call
};

struct PipelineResult {
  std::vector<SiteSummary> sites;  // in quantization order
  // keepGrids: each site's LayerQuantResult without its dense weight (codes as int8 when
  // symmetric, uint8 otherwise; scales, zeros, gIdx, outliers), restored from checkpoints too.
  // Empty for a site quantized at 16 bits.
  std::map<std::string, LayerQuantResult> grids;
  // Block files (block-<i>.safetensors: the grids as "grid:<site>:<field>", dense weights of sites
  // without a grid under the site's name), in block order, when they were written (checkpoints or
  // offloadWeights). The artifact can be assembled from them without holding the grids.
  std::vector<std::string> blockFiles;
  bool dataFree = false;           // RTN without a calibration pass
  int blocks = 0;
  int resumedBlocks = 0;           // blocks restored from the checkpoint
  int64_t samples = 0, seqlen = 0;
  double seconds = 0;              // this call, embedding to last block
  int64_t peakMemoryBytes = 0;     // CUDA allocator peak on a CUDA device, else process peak RSS
  std::string peakMemorySource;    // "cuda allocator" or "process peak RSS (VmHWM)"
  int64_t peakWorkingBytes = 0;    // largest (block weights + activations) held at once, computed
};

// Quantizes every site of `model` in place (setSiteWeight). ids [N, L] int64 calibration
// samples; mask [N, L] (undefined = all real tokens; padded positions are left out of H).
// Progress messages are "block 3/5: self_attn.q_proj". Throws qs::Cancelled when cancelled
// (checkpoints of finished blocks stay; the caller decides whether to keep them) and qs::Error
// for bad inputs or a checkpoint that does not match (naming the file).
PipelineResult quantizeModel(model::Model& model, const at::Tensor& ids, const at::Tensor& mask,
                             const PipelineOptions& options, jobs::Progress& progress = jobs::Progress::none());

// codes as the smallest integer type that holds them (int8 symmetric, uint8 asymmetric; bits <= 8),
// and back to int32.
at::Tensor compactCodes(const at::Tensor& codes, bool symmetric);
at::Tensor expandCodes(const at::Tensor& compact);

// Blocks finished in a checkpoint folder (0 when it holds none).
int checkpointedBlocks(const std::string& checkpointDir);

// Reads the grid of `site` from a block file (names "grid:<site>:<field>"); the codes as stored
// (compact). Undefined codes when the file holds no grid for it.
LayerQuantResult readBlockGrid(const std::string& blockFile, const std::string& site);

// Groups of sites that read the same input, in execution order, for one block: runs the block
// once on `h` (one sample is enough) with a recording hook.
std::vector<std::vector<std::string>> siteGroups(model::Model& model, int block, const at::Tensor& h,
                                                 const at::Tensor& ids);

}  // namespace qs::algo
