// Outlier migration as one step of a quantize run: OS+ or SmoothQuant on the FP model, calibrated
// on the run's calibration samples, with what a user needs to judge it (per migrated site, before
// vs after: max |x|, kurtosis, asymmetry) and what export needs to redo it exactly (per pair: the
// shift and scale that were folded, in order).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "core/algo/quantize_config.h"
#include "core/jobs/progress.h"

namespace qs::model {
class Model;
}

namespace qs::algo {

// One folded migration pair (model/migration.h): x' = (x - shift) / scale at its consumers.
struct MigrationRecord {
  std::string pair;                    // MigrationPair::name, "layers.3.ln1"
  std::string kind;                    // "norm" or "value_out"
  std::vector<std::string> consumers;  // the sites reading the migrated channels
  at::Tensor shift;                    // [in] float32, undefined when not shifted (SmoothQuant)
  at::Tensor scale;                    // [in] float32, undefined when not scaled
  double threshold = 0;                // OS+: the searched clipping threshold t (0 otherwise)
  double errorBefore = 0, errorAfter = 0;  // OS+: search objective without / with migration
};

// Statistics of one migrated site input over the calibration samples (token rows of a strided
// subsample of at most kMigrationStatTokens for the kurtosis; min/max over all tokens). Taken
// from the migration's own capture: "after" is that input transformed as the fold transforms it,
// x' = (x - shift) / scale, which is what the migrated model computes (exact migration).
struct MigrationSiteStats {
  std::string pair;        // "layers.3.ln1"
  std::string site;        // its first consumer, whose input it is
  int block = 0;
  double maxAbs = 0;       // max |x| over channels and tokens
  double kurtosis = 0;     // Pearson kurtosis of all input values (normal = 3), float64
  double asymmetry = 0;    // max over channels of |(max_j + min_j) / 2| (what OS+ shifting removes)
};
inline constexpr int64_t kMigrationStatTokens = 4096;

struct MigrationOutcome {
  Migration method = Migration::None;
  std::vector<MigrationRecord> records;    // in folding order
  std::vector<MigrationSiteStats> before;  // original FP model
  std::vector<MigrationSiteStats> after;   // migrated FP model (same sites, same samples)
  double seconds = 0;
};

// Runs config.migrate (OS+ with the weight spec and activation quantizer of config as the
// search's quantizers; SmoothQuant with sq_alpha) and folds it into `model`, block by block in
// one pass (a streamed model holds one block). None returns an empty outcome without touching
// the model.
MigrationOutcome runMigration(model::Model& model, const at::Tensor& samples, const QuantizeConfig& config,
                              jobs::Progress& progress = jobs::Progress::none());

// A finished migration saved with a quantize run's checkpoint, so a resumed run folds it again
// (applyMigrationRecords) instead of capturing and searching for an hour on a 7B model. `tag`
// identifies the job (config, model, dtype); reading a file of another tag, another format or a
// damaged one throws qs::Error naming the file. Atomic write.
inline constexpr const char* kMigrationCheckpointFile = "migration.safetensors";
void writeMigrationCheckpoint(const std::string& path, const MigrationOutcome& outcome, const std::string& tag);
MigrationOutcome readMigrationCheckpoint(const std::string& path, const std::string& tag);

// Folds recorded migrations into a freshly opened model of the same checkpoint, in order, with
// the very same arithmetic as the run: the result equals the run's migrated model bit for bit.
// Throws qs::Error naming a pair the model does not have.
void applyMigrationRecords(model::Model& model, const std::vector<MigrationRecord>& records);

}  // namespace qs::algo
