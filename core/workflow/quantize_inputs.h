// What a quantize job resolves before it touches the model: the project, the model path, the
// load options and the config (defaults < project default < the job's YAML; or a resumed run's
// stored config). Shared by runQuantize and preflightQuantize so the estimate is of the very job
// that will run. Internal to core/workflow (LibTorch types inside).
#pragma once
#include <optional>
#include <string>

#include "core/algo/quantize_config.h"
#include "core/model/layerwise.h"
#include "core/model/model.h"
#include "core/runs/project.h"
#include "core/workflow/project_jobs.h"

namespace qs::workflow {

struct QuantizeInputs {
  std::optional<runs::Project> project;
  std::string modelPath;
  std::string dataDir;       // for named datasets
  std::string dtypeName;     // canonical: float32 | float16 | bfloat16
  model::LoadOptions load;
  algo::QuantizeConfig config;  // validated
  std::string resumeDir;     // the resumed run's checkpoint folder ("" = a new run)
};

// Throws qs::Error naming the option, run or file that is wrong.
QuantizeInputs resolveQuantizeInputs(const QuantizeJobOptions& o);

// The largest batch the job runs through the model, for its whole-or-stream decision: a
// calibration batch (none for data-free RTN) or an evaluation window.
model::Workload quantizeWorkload(const model::Model& model, const algo::QuantizeConfig& config);

// --device / --dtype strings as load options; the canonical dtype name goes with the run.
model::LoadOptions loadOptions(const std::string& device, const std::string& dtype, std::string& dtypeName);

}  // namespace qs::workflow
