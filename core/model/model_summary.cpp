// summarizeModel: the module tree and header facts of a checkpoint, from tensor metadata and
// config.json only (no tensor data is read), so the GUI shows a model in milliseconds.
#include "core/model/model_summary.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <memory>

#include "core/io/gguf.h"
#include "core/io/gguf_weights.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/io/weight_source.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/memory.h"
#include "core/util/strings.h"

namespace qs::model {
namespace {

using nlohmann::json;

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool isNumber(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::vector<std::string> splitDots(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool isNormLabel(const std::string& label) {
  const std::string l = str::toLower(label);
  return contains(l, "norm") || l.rfind("ln", 0) == 0 || contains(l, "_ln");
}

bool isEmbeddingLabel(const std::string& label) {
  const std::string l = str::toLower(label);
  if (l == "embed_out") return false;  // GPT-NeoX's output head
  return contains(l, "embed") || l == "wte" || l == "wpe" || contains(l, "word_embeddings");
}

// Display order among siblings: roughly execution order (embeddings, pre-norm, attention, norm,
// MLP, blocks, final norm, head), because safetensors headers are sorted alphabetically.
int siblingRank(const std::string& label, bool parentIsBlock) {
  static const std::map<std::string, int> ranks = {
      {"embed_tokens", 0}, {"wte", 0}, {"word_embeddings", 0}, {"embed_in", 0},
      {"embed_positions", 1}, {"wpe", 1}, {"word_embeddings_layernorm", 2}, {"project_in", 3},
      {"input_layernorm", 10}, {"ln_1", 10}, {"self_attn_layer_norm", 10}, {"ln_attn", 10},
      {"self_attn", 20}, {"attn", 20}, {"attention", 20}, {"self_attention", 20},
      {"q_proj", 21}, {"k_proj", 22}, {"v_proj", 23}, {"query_key_value", 21}, {"c_attn", 21},
      {"o_proj", 24}, {"out_proj", 24}, {"dense", 24},
      {"post_attention_layernorm", 30}, {"ln_2", 30}, {"ln_mlp", 30},
      {"mlp", 40}, {"fc1", 41}, {"fc2", 42}, {"gate_proj", 41}, {"up_proj", 42}, {"down_proj", 43},
      {"c_fc", 41}, {"c_proj", 44}, {"dense_h_to_4h", 41}, {"dense_4h_to_h", 42},
      {"layers", 50}, {"h", 50},
      {"norm", 60}, {"ln_f", 60}, {"final_layer_norm", 60}, {"project_out", 61},
      {"lm_head", 70}, {"embed_out", 70},
      {"weight", 80}, {"bias", 81},
  };
  if (parentIsBlock && label == "final_layer_norm") return 30;  // OPT's pre-MLP norm
  auto it = ranks.find(label);
  return it == ranks.end() ? 65 : it->second;
}

// Building tree: children kept in insertion order plus an index by label.
struct Builder {
  ModuleNode node;
  std::vector<std::unique_ptr<Builder>> children;
  std::map<std::string, Builder*> byLabel;
  bool isTensor = false;

  Builder* child(const std::string& label, const std::string& fullName) {
    auto it = byLabel.find(label);
    if (it != byLabel.end()) return it->second;
    children.push_back(std::make_unique<Builder>());
    Builder* c = children.back().get();
    c->node.label = label;
    c->node.name = fullName;
    byLabel[label] = c;
    return c;
  }
};

const char* const kBlockPrefixes[] = {"model.decoder.layers.", "model.layers.", "transformer.h.",
                                      "gpt_neox.layers."};

std::string siteNameFor(const std::string& moduleName) {
  for (const char* prefix : kBlockPrefixes) {
    const std::string p(prefix);
    if (moduleName.rfind(p, 0) == 0) return "layers." + moduleName.substr(p.size());
  }
  return moduleName;
}

// Fills kind, shape, dtype, params and bytes bottom-up; returns the node.
ModuleNode finish(Builder& b, bool parentIsBlock, bool insideBlock) {
  ModuleNode n = std::move(b.node);
  if (b.isTensor) {
    n.kind = "tensor";
    return n;  // shape, dtype, params, bytes set at insertion
  }
  const bool isBlock = n.kind == "block";
  const Builder* weight = nullptr;
  for (auto& c : b.children)
    if (c->isTensor && c->node.label == "weight") weight = c.get();

  // Order children before finishing them (the builders are consumed by finish()).
  std::vector<Builder*> order;
  for (auto& c : b.children) order.push_back(c.get());
  std::stable_sort(order.begin(), order.end(), [&](const Builder* x, const Builder* y) {
    const bool nx = isNumber(x->node.label), ny = isNumber(y->node.label);
    if (nx && ny) return std::stoll(x->node.label) < std::stoll(y->node.label);
    if (nx != ny) return ny;  // named children before numbered ones
    return siblingRank(x->node.label, isBlock) < siblingRank(y->node.label, isBlock);
  });

  if (weight) {
    n.shape = weight->node.shape;
    n.dtype = weight->node.dtype;
  }
  const std::string& label = n.label;
  if (!isBlock && n.kind.empty()) {
    if (weight && isNormLabel(label)) {
      n.kind = "norm";
    } else if (weight && isEmbeddingLabel(label)) {
      n.kind = "embedding";
    } else if (weight && weight->node.shape.size() == 2 && insideBlock) {
      n.kind = "linear";
      n.siteName = siteNameFor(n.name);
    } else if (weight && weight->node.shape.size() == 2 && b.children.size() <= 2) {
      n.kind = "linear";  // lm_head, project_in/out: Linears, but not quantization sites
    } else {
      n.kind = "group";
    }
  }

  std::string dtype;
  bool mixed = false;
  for (Builder* c : order) {
    ModuleNode child = finish(*c, isBlock, insideBlock || isBlock);
    n.params += child.params;
    n.bytes += child.bytes;
    if (!child.dtype.empty() && child.dtype != "mixed") {
      if (dtype.empty()) dtype = child.dtype;
      else if (dtype != child.dtype) mixed = true;
    } else if (child.dtype == "mixed") {
      mixed = true;
    }
    n.children.push_back(std::move(child));
  }
  if (n.dtype.empty()) n.dtype = mixed ? "mixed" : dtype;
  return n;
}

std::string jsonScalarText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "null";
  std::string s = v.dump();
  if (v.is_array() && s.size() > 200) {
    s = "[" + std::to_string(v.size()) + " items] " + s.substr(0, 160) + "…";
  }
  return s;
}

void flatten(const json& j, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
      if (it->is_object() && !it->empty()) flatten(*it, key, out);
      else out.emplace_back(key, jsonScalarText(*it));
    }
  } else {
    out.emplace_back(prefix, jsonScalarText(j));
  }
}

int intKey(const json& cfg, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = cfg.find(k);
    if (it != cfg.end() && it->is_number_integer()) return it->get<int>();
  }
  return 0;
}

std::string familyOf(const std::string& modelType) {
  static const std::map<std::string, std::string> families = {
      {"opt", "OPT"},           {"bloom", "BLOOM"},
      {"llama", "LLaMA/Mistral"}, {"mistral", "LLaMA/Mistral"},
      {"falcon", "Falcon"},     {"RefinedWeb", "Falcon"},
      {"RefinedWebModel", "Falcon"}, {"gpt2", "GPT-2"},
      {"gpt_neox", "GPT-NeoX"},
  };
  if (modelType.empty()) return "unknown";
  auto it = families.find(modelType);
  return it == families.end() ? "unsupported (" + modelType + ")" : it->second;
}

std::string describeFormat(const std::string& path) {
  if (str::endsWith(str::toLower(path), ".gguf")) {
    return "GGUF v" + std::to_string(io::GgufFile::open(path)->version());
  }
  if (str::endsWith(path, ".safetensors")) return "safetensors";
  if (str::endsWith(path, ".bin")) return "pytorch .bin";
  const std::string stIndex = fs::join(path, "model.safetensors.index.json");
  const std::string binIndex = fs::join(path, "pytorch_model.bin.index.json");
  for (const auto& [index, name] : {std::pair{stIndex, std::string("safetensors")},
                                    std::pair{binIndex, std::string("pytorch .bin")}}) {
    if (!fs::exists(index)) continue;
    size_t shards = 0;
    try {
      const json j = json::parse(fs::readText(index));
      std::map<std::string, int> files;
      for (auto& [k, v] : j.at("weight_map").items()) files[v.get<std::string>()] = 1;
      shards = files.size();
    } catch (const json::exception&) {
      return name + " (sharded)";
    }
    return name + " (" + std::to_string(shards) + " shards)";
  }
  if (fs::exists(fs::join(path, "model.safetensors"))) return "safetensors";
  if (fs::exists(fs::join(path, "pytorch_model.bin"))) return "pytorch .bin";
  return "unknown";
}

}  // namespace

ModelSummary summarizeModel(const std::string& path) {
  if (path.empty()) throw Error("no model path given");
  if (!fs::exists(path)) throw fileError(path, "no such file or folder");

  ModelSummary s;
  s.path = path;
  const bool isGguf = !fs::isDirectory(path) && str::endsWith(str::toLower(path), ".gguf");

  // Header facts from config.json (or the GGUF metadata mapped to Hugging Face keys).
  json cfg = json::object();
  if (isGguf) {
    cfg = io::ggufToHfConfig(*io::GgufFile::open(path));
  } else {
    const std::string dir = fs::isDirectory(path) ? path : path.substr(0, path.find_last_of('/') + 1);
    const std::string cfgPath = fs::join(dir.empty() ? "." : dir, "config.json");
    if (fs::exists(cfgPath)) {
      try {
        cfg = json::parse(fs::readText(cfgPath));
      } catch (const json::exception& e) {
        throw fileError(cfgPath, std::string("not valid JSON: ") + e.what());
      }
      if (!cfg.is_object()) throw fileError(cfgPath, "expected a JSON object");
    }
  }
  s.format = describeFormat(path);
  if (auto it = cfg.find("model_type"); it != cfg.end() && it->is_string()) s.modelType = *it;
  s.family = familyOf(s.modelType);
  s.hiddenSize = intKey(cfg, {"hidden_size", "n_embd", "d_model"});
  s.numLayers = intKey(cfg, {"num_hidden_layers", "n_layer", "num_layers"});
  s.numHeads = intKey(cfg, {"num_attention_heads", "n_head"});
  s.numKvHeads = intKey(cfg, {"num_key_value_heads", "num_kv_heads", "n_head_kv"});
  if (s.numKvHeads == 0) {
    auto mq = cfg.find("multi_query");
    s.numKvHeads = (mq != cfg.end() && mq->is_boolean() && mq->get<bool>()) ? 1 : s.numHeads;
  }
  s.vocabSize = intKey(cfg, {"vocab_size"});
  s.maxPositions = intKey(cfg, {"max_position_embeddings", "n_positions", "seq_length"});
  s.intermediateSize = intKey(cfg, {"intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size"});
  if (s.intermediateSize == 0 && s.hiddenSize > 0 &&
      (s.modelType == "gpt2" || s.modelType == "bloom" || s.modelType == "gpt_neox" ||
       s.modelType == "falcon"))
    s.intermediateSize = 4 * s.hiddenSize;  // these families default to 4 * hidden
  flatten(cfg, "", s.config);

  // The module tree from tensor names: dotted components, leaf tensors weight/bias.
  auto weights = io::openWeights(path);
  Builder root;
  {
    std::string base = path;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    root.node.label = base.substr(base.find_last_of('/') + 1);
    root.node.kind = "model";
  }
  for (const io::TensorMeta& t : weights->tensors()) {
    const auto parts = splitDots(t.name);
    Builder* cur = &root;
    std::string prefix;
    for (size_t i = 0; i < parts.size(); ++i) {
      prefix = prefix.empty() ? parts[i] : prefix + "." + parts[i];
      const bool parentIsBlockList = cur != &root && (cur->node.label == "layers" || cur->node.label == "h");
      cur = cur->child(parts[i], prefix);
      if (parentIsBlockList && isNumber(parts[i]) && i + 1 < parts.size()) cur->node.kind = "block";
    }
    cur->isTensor = true;
    cur->node.shape = t.shape;
    cur->node.dtype = io::dtypeName(t.dtype);
    cur->node.params = t.numel();
    cur->node.bytes = static_cast<int64_t>(t.nbytes());
    s.totalParams += t.numel();
    s.totalBytes += static_cast<int64_t>(t.nbytes());
  }
  s.root = finish(root, false, false);
  s.root.name = "";

  // Largest decoder block; also the layer count when config.json did not say.
  int blocks = 0;
  std::vector<const ModuleNode*> stack{&s.root};
  while (!stack.empty()) {
    const ModuleNode* n = stack.back();
    stack.pop_back();
    if (n->kind == "block") {
      ++blocks;
      s.bytesPerBlock = std::max(s.bytesPerBlock, n->bytes);
      continue;
    }
    for (const auto& c : n->children) stack.push_back(&c);
  }
  if (s.numLayers == 0) s.numLayers = blocks;

  try {
    s.tokenizer = io::loadTokenizer(path)->kind();
  } catch (const Error&) {
    s.tokenizer = "none found";
  } catch (const std::exception& e) {
    s.tokenizer = std::string("unreadable: ") + e.what();
  }
  return s;
}

std::string formatCount(int64_t n) {
  const bool neg = n < 0;
  double v = static_cast<double>(neg ? -n : n);
  const char* unit = "";
  if (v >= 1e12) v /= 1e12, unit = " T";
  else if (v >= 1e9) v /= 1e9, unit = " B";
  else if (v >= 1e6) v /= 1e6, unit = " M";
  else if (v >= 1e3) v /= 1e3, unit = " K";
  char buf[64];
  if (*unit == '\0') std::snprintf(buf, sizeof buf, "%s%lld", neg ? "-" : "", static_cast<long long>(v));
  else if (v < 10) std::snprintf(buf, sizeof buf, "%s%.2f%s", neg ? "-" : "", v, unit);
  else std::snprintf(buf, sizeof buf, "%s%.1f%s", neg ? "-" : "", v, unit);
  return buf;
}

std::string formatBytes(int64_t bytes) { return formatMemory(bytes); }

}  // namespace qs::model
