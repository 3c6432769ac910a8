// The space of a mixed-precision search: per site pattern, a list of weight formats and of input
// formats to choose from. A search file (qscope search --space) looks like
//
//   search:
//     space:
//       - name: "layers.*.self_attn.*"      # glob or explicit site (layer_precision.h)
//         weight: ["bfp(m=4,e=8,block=16)", "bfp(m=6,e=8,block=16)", "bfp(m=8,e=8,block=16)"]
//         input: same                       # the weight's format (W6A6); or a list; absent = none
//       - name: "layers.*.mlp.*"
//         per_site: true                    # one choice per matched site instead of one shared
//         weight: {format: bfp, mantissa_width: [3, 4, 5, 6, 7, 8], block_size: 16}   # a grid
//         input: ["none", "e4m3"]
//     default: {weight: none, input: none}  # sites no entry matches
//     eval: {dataset: wikitext2, seqlen: 256, limit_windows: 16, batch_size: 4, tasks_limit: 200}
//     constraints: {max_bits: 6.5, max_ppl: 50, min_ppl: 0, min_acc: 0.6}
//
// tasks_limit: examples of the accuracy objective's task scored per trial (0 = all); min_acc
// (0..1) needs an accuracy objective (--objectives acc:TASK,...).
//
// A format list holds formats in any YAML form (format_yaml.h); a grid is a map whose parameter
// values may be lists (formatGrid expands it). Entries resolve against a model's sites into
// dimensions, each an integer choice 0..n-1; decode() turns a choice vector into a per-layer
// precision config, so a search can only ever propose configs from the space.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/quant/layer_precision.h"

namespace qs::algo {

struct SpaceEntry {
  std::string name;                          // glob or explicit site name
  bool perSite = false;                      // one dimension per matched site
  std::vector<quant::NumberFormat> weight;   // choices; never empty
  std::vector<quant::NumberFormat> input;    // choices; empty = inputSameAsWeight or none
  bool inputSameAsWeight = false;
};

struct SearchEvalSettings {
  std::string dataset = "wikitext2";  // name or path (eval::loadDataset)
  int seqlen = 256;                   // window length
  int64_t limitWindows = 16;          // first N windows (0 = all)
  int batchSize = 4;
  int64_t tasksLimit = 200;           // first N examples of an accuracy objective's task (0 = all)
};

struct SearchConstraints {
  double maxBits = 0;   // average weight bits must be <= this; 0 = no limit
  double maxPpl = 0;    // perplexity must be <= this; 0 = no limit
  double minPpl = 0;    // perplexity must be >= this; 0 = no limit
  double minAcc = 0;    // the accuracy objective's acc must be >= this (0..1); 0 = no limit
};

struct SearchSpace {
  std::vector<SpaceEntry> entries;
  quant::SitePrecision defaults;  // sites no entry matches
  SearchEvalSettings eval;
  SearchConstraints constraints;

  // One integer decision of the search.
  struct Dimension {
    int entry = 0;         // index into entries
    std::string rule;      // the rule name it sets (the pattern, or a site for per_site)
    bool input = false;    // false: the weight format, true: the input format
    int choices = 0;
  };
  struct Resolved {
    std::vector<Dimension> dims;
    std::vector<std::string> ruleNames;  // rules of decoded configs, in order
    std::vector<int> ruleEntry;          // entry of each rule
    double size = 1;                     // number of distinct choice vectors (double: may be huge)
  };
  // Dimensions for a model with these sites. Throws qs::Error naming `file` and the entry for an
  // entry that matches no site.
  Resolved resolve(const std::vector<std::string>& sites, const std::string& file = "space") const;
  // The per-layer config of a choice vector (one rule per resolved rule name). Throws qs::Error
  // for a vector of the wrong length or an index out of range: a search cannot leave the space.
  quant::LayerPrecision decode(const Resolved& r, const std::vector<int>& choice) const;
  // Canonical text of the space (formats in text form), for fingerprints and run records.
  std::string toYaml() const;
};

// Parses a search file (the `search:` section, or a document that is the section itself).
// Errors name the file and key path; unknown keys are errors.
SearchSpace parseSearchSpace(const std::string& yamlText, const std::string& file);
SearchSpace loadSearchSpace(const std::string& path);

}  // namespace qs::algo
