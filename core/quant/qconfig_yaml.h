// OS+-style q-config files (the seed's exp/*/config.yaml layout): `quant.a_qconfig` and
// `quant.w_qconfig` with OS+'s keys (quantizer, observer, bit, symmetric, ch_axis) plus
// calibrate, calibrate_path, except_quantizer, is_remove_padding, migrate, max_length, and
// QuantScope's quantize_matmul. The
// presets in resources/presets/osplus_*.yaml load unchanged. A `model:` section may be present
// (OS+ keeps the model path there) and is not read: QuantScope takes the model from its command
// line. Every other unknown key is an error naming the key and the file.
#pragma once
#include <string>
#include <vector>

#include "core/quant/act_quant.h"
#include "core/quant/quant_spec.h"

namespace qs::quant {

struct QConfig {
  ActQuantOptions act;                       // a_qconfig
  QuantSpec weight = QuantSpec().withBits(8).withSymmetric(true);  // w_qconfig
  int calibrate = 128;                       // calibration samples
  std::string calibratePath;                 // calibration text ("" = the command's default)
  std::vector<std::string> exceptQuantizer;  // sites whose input stays unquantized (suffix match)
  bool isRemovePadding = true;               // observers skip padding tokens (calibration is unpadded)
  bool migrate = true;                       // run OS+ shifting/scaling before quantizing
  int maxLength = 512;                       // calibration sample length in tokens
  // QuantScope's key: also fake-quantize the attention matmul operands (q/k/v_matmul sites) with
  // a_qconfig; except_quantizer entries such as "k_matmul" apply to them.
  bool quantizeMatmul = false;
};

// Parses YAML text; `file` names the source in messages. Throws qs::Error "file: key 'a.b': ...".
QConfig parseQConfig(const std::string& yamlText, const std::string& file);
QConfig loadQConfig(const std::string& path);

// True when `site` is excluded by `except` (an entry matches the whole name or its suffix after
// a '.': "fc2" excludes every "layers.N.fc2").
bool siteExcluded(const std::string& site, const std::vector<std::string>& except);

}  // namespace qs::quant
