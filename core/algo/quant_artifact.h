// The quantized-run artifact: everything export needs from a `qscope quantize` run, in one
// safetensors file written atomically into the project (exports/run-<id>/quantized.safetensors):
//   grid.<site>.codes            int8 (symmetric) / uint8 (asymmetric) [out, in] integer codes
//   grid.<site>.scales / .zeros  float32 [out, groups] (zeros hold integers; 0 when symmetric)
//   grid.<site>.g_idx            int32 [in] group of each input column
//   grid.<site>.outlier_indices  int64 [k, 2] / .outlier_values float32 [k]  (QuantEase outliers)
//   migration.<pair>.shift/.scale float32 [in] (OS+ / SmoothQuant, in folding order)
// and metadata: format, the resolved config YAML, the source model path and fingerprint, the
// load dtype, bits/symmetric/group_size, the migration method and the pair list (JSON).
// Weights are not stored: the source checkpoint plus the migrations plus the grids rebuild the
// emulated model exactly (rebuildQuantizedModel), which keeps the artifact about bits/8 of the
// model's FP size.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/algo/layer_result.h"
#include "core/algo/migration_run.h"
#include "core/model/model.h"

namespace qs::io {
class SafetensorsFile;
}

namespace qs::algo {

inline constexpr const char* kQuantArtifactFormat = "quantscope-quantized-run/1";
inline constexpr const char* kQuantArtifactFile = "quantized.safetensors";

struct QuantArtifact {
  std::string configYaml;        // the run's resolved config (quantize_config.h toYaml)
  std::string modelPath;         // the source model folder (absolute)
  std::string modelFingerprint;  // runs::fingerprintModel of it when written ("" = unknown)
  std::string dtype = "float32";  // load dtype of the run: float32, float16, bfloat16
  std::string method;            // weight method ("gptq", ...)
  int bits = 16;                 // weight bits (16 = weights not quantized)
  bool symmetric = false;
  int groupSize = -1;            // -1 = per output channel
  bool actOrder = false;
  std::string migration = "none";  // none | osplus | smoothquant
  std::vector<MigrationRecord> migrations;
  // Per site: codes (compact int8/uint8), scales, zeros, gIdx, outliers; weight undefined.
  std::map<std::string, LayerQuantResult> grids;
  // Writing without holding the grids: the pipeline's block files ("grid:<site>:<field>",
  // PipelineResult::blockFiles) are streamed into the artifact one tensor at a time.
  std::vector<std::string> gridFiles;
  // Reading without holding them (readQuantArtifact with loadGrids false): the open artifact and
  // the sites it has grids for; a grid is read when it is needed (lazyGrid, rebuildQuantizedModel).
  std::shared_ptr<io::SafetensorsFile> file;
  std::vector<std::string> gridSites;
};

// Atomic (temp file + rename); peak memory one tensor when the grids come from gridFiles. Throws
// qs::Error naming the file.
void writeQuantArtifact(const std::string& path, const QuantArtifact& a);
// Throws qs::Error naming the file for a missing file, another format or missing tensors.
// loadGrids false: grids stay in the file (a.file, a.gridSites), for models larger than memory.
QuantArtifact readQuantArtifact(const std::string& path, bool loadGrids = true);
// A site's grid from an open safetensors file whose tensor for each field is name(field)
// ("grid.<site>.codes" in an artifact, "grid:<site>:codes" in a pipeline block file); codes as
// stored (compact). Fields the file lacks stay undefined.
LayerQuantResult loadGridFields(const io::SafetensorsFile& file, const std::function<std::string(const char*)>& name);

// One site's grid of an artifact read either way; qs::Error when it has none.
LayerQuantResult artifactGrid(const QuantArtifact& a, const std::string& site);

// The shape of a site's grid, read from the tensor descriptions (grids in memory or in the file):
// codes [out, in], `groups` scale columns, `outliers` kept full-precision weights.
struct GridShape {
  int64_t out = 0, in = 0, groups = 0, outliers = 0;
};
// Every site with a grid, by name.
std::map<std::string, GridShape> artifactGridShapes(const QuantArtifact& a);

// The artifact's dtype string as a ScalarType ("float32" -> kFloat); qs::Error otherwise.
at::ScalarType artifactDtype(const std::string& name);

// Opens the source model with the run's dtype on `device`, folds the migrations and (when
// quantizedWeights) sets every site with a grid to its dequantized weight: the model the run
// evaluated, without activation quantization. Grids are read on demand (a weight loader per site)
// when the artifact was read without them, so the rebuilt model costs one block at a time. quantizedWeights = false gives the migrated FP
// model. spillDir (optional): migrated weights beyond Model::defaultOverrideBudget() are written
// there instead of held (a model larger than memory; the caller removes the folder). Throws
// qs::Error when the source model is gone or does not match the grids.
std::unique_ptr<model::Model> rebuildQuantizedModel(const QuantArtifact& a, bool quantizedWeights = true,
                                                    c10::Device device = c10::kCPU,
                                                    const std::string& spillDir = {});

// The dequantized weight of a grid (codes compact or int32): (codes - zeros[g]) * scales[g] + outliers.
at::Tensor gridWeight(const LayerQuantResult& grid);

}  // namespace qs::algo
