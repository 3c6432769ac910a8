// YAML forms of number formats and of a per-layer precision config.
//
// A format is either its one-line text form or a map of its parameters (long or short keys):
//
//   weight: bfp(m=6,e=8,block=16)                 # text form (NumberFormat::parse)
//   weight: e4m3                                  # minifloat preset
//   weight: {format: bfp, mantissa_width: 6, shared_exponent_width: 8, block_size: 16}
//   input: none                                   # or null / absent: kept in float
//
// A precision config (qscope eval --precision, the search's trials) is
//
//   precision:                         # optional wrapper; a document without it is the section
//     default: {weight: bfp(m=8), input: bfp(m=8)}   # sites no rule matches (absent = none)
//     rules:                           # explicit site names or globs (layer_precision.h)
//       - name: "layers.*.mlp.*"
//         weight: bfp(m=6)
//         input: {format: minifloat, e: 4, m: 3}
//       - name: layers.0.self_attn.q_proj
//         weight: none
//
// Errors name the file and the key path ("p.yaml: key 'precision.rules[1].weight.mantissa_width':
// 30 is out of range 2..24"); unknown keys are errors listing the known ones.
#pragma once
#include <yaml-cpp/yaml.h>

#include <string>

#include "core/quant/layer_precision.h"

namespace qs::quant {

// Reads a format node (scalar text, map, or null = none). `keyPath` names the node in errors.
NumberFormat formatFromYaml(const YAML::Node& node, const std::string& file, const std::string& keyPath);
// The map form {format: kind, long key: value, ...} ("none" for None, a scalar).
YAML::Node formatToYaml(const NumberFormat& fmt);

// Parses a precision config document; `file` names the source in messages.
LayerPrecision parsePrecisionConfig(const std::string& yamlText, const std::string& file);
LayerPrecision loadPrecisionConfig(const std::string& path);
// The `precision:` document with every format in its text form; parsePrecisionConfig reads it back
// to an equal config.
std::string precisionToYaml(const LayerPrecision& lp);

}  // namespace qs::quant
