// Writes a seeded random-weight model folder of a real shape (config.json, float16 safetensors
// shards + model.safetensors.index.json, the tokenizer from ../shared), for the scale benchmark
// (tests/bench/scale_bench.sh, docs/BENCHMARKS.md "Scale"). Not a trained model: the numbers it
// gives are time and memory, never quality. Folders are written where told and never committed.
//
//   make_scale_model --shape llama2-7b -o /tmp/llama2-7b [--seed 0] [--shard-gib 2] [--layers N]
//
// Shapes: llama2-7b (6.74 B), mistral-7b (7.24 B, GQA 8), opt-6.7b (6.66 B), opt-1.3b (1.32 B).
// Weights are uniform with standard deviation 0.02 (HF's initializer range), drawn with
// SplitMix64 from (seed, tensor index), so a tensor never depends on the others; norm gains 1,
// biases 0. Peak memory is one tensor.
#include <ATen/ATen.h>
#include <c10/util/Half.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "core/util/error.h"

namespace {

struct Shape {
  std::string family;  // "llama" or "opt"
  int64_t hidden, layers, heads, kvHeads, ffn, vocab, maxPositions;
  int64_t slidingWindow = 0;
  bool tied = false;
};

const std::map<std::string, Shape> kShapes = {
    {"llama2-7b", {"llama", 4096, 32, 32, 32, 11008, 32000, 4096}},
    {"mistral-7b", {"mistral", 4096, 32, 32, 8, 14336, 32000, 32768, 4096}},
    {"opt-6.7b", {"opt", 4096, 32, 32, 32, 16384, 50272, 2048, 0, true}},
    {"opt-1.3b", {"opt", 2048, 24, 32, 32, 8192, 50272, 2048, 0, true}},
};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

enum class Fill { Random, Ones, Zeros };

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  Fill fill = Fill::Random;
};

at::Tensor make(const Spec& s, uint64_t seed, uint64_t index) {
  at::Tensor t = at::empty(s.shape, at::kHalf);
  auto* p = reinterpret_cast<c10::Half*>(t.data_ptr());
  const int64_t n = t.numel();
  if (s.fill != Fill::Random) {
    const c10::Half v(s.fill == Fill::Ones ? 1.0f : 0.0f);
    for (int64_t i = 0; i < n; ++i) p[i] = v;
    return t;
  }
  // Uniform on [-a, a] with a = 0.02 * sqrt(3): standard deviation 0.02.
  const float a = 0.02f * std::sqrt(3.0f);
  uint64_t state = seed * 0x100000001B3ull ^ (index + 1) * 0x9E3779B97F4A7C15ull;
  for (int64_t i = 0; i < n; i += 4) {
    const uint64_t r = splitmix(state);
    for (int k = 0; k < 4 && i + k < n; ++k) {
      const float u = static_cast<float>((r >> (16 * k)) & 0xFFFF) / 65535.0f;  // [0, 1]
      p[i + k] = c10::Half((2.0f * u - 1.0f) * a);
    }
  }
  return t;
}

std::vector<Spec> tensorsOf(const Shape& m) {
  std::vector<Spec> t;
  const int64_t D = m.hidden, d = m.hidden / m.heads;
  if (m.family == "opt") {
    const std::string p = "model.decoder.";
    t.push_back({p + "embed_tokens.weight", {m.vocab, D}});
    t.push_back({p + "embed_positions.weight", {m.maxPositions + 2, D}});
    for (int64_t i = 0; i < m.layers; ++i) {
      const std::string b = p + "layers." + std::to_string(i) + ".";
      for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        t.push_back({b + "self_attn." + proj + ".weight", {D, D}});
        t.push_back({b + "self_attn." + proj + ".bias", {D}, Fill::Zeros});
      }
      t.push_back({b + "self_attn_layer_norm.weight", {D}, Fill::Ones});
      t.push_back({b + "self_attn_layer_norm.bias", {D}, Fill::Zeros});
      t.push_back({b + "fc1.weight", {m.ffn, D}});
      t.push_back({b + "fc1.bias", {m.ffn}, Fill::Zeros});
      t.push_back({b + "fc2.weight", {D, m.ffn}});
      t.push_back({b + "fc2.bias", {D}, Fill::Zeros});
      t.push_back({b + "final_layer_norm.weight", {D}, Fill::Ones});
      t.push_back({b + "final_layer_norm.bias", {D}, Fill::Zeros});
    }
    t.push_back({p + "final_layer_norm.weight", {D}, Fill::Ones});
    t.push_back({p + "final_layer_norm.bias", {D}, Fill::Zeros});
    return t;
  }
  t.push_back({"model.embed_tokens.weight", {m.vocab, D}});
  for (int64_t i = 0; i < m.layers; ++i) {
    const std::string b = "model.layers." + std::to_string(i) + ".";
    t.push_back({b + "input_layernorm.weight", {D}, Fill::Ones});
    t.push_back({b + "self_attn.q_proj.weight", {m.heads * d, D}});
    t.push_back({b + "self_attn.k_proj.weight", {m.kvHeads * d, D}});
    t.push_back({b + "self_attn.v_proj.weight", {m.kvHeads * d, D}});
    t.push_back({b + "self_attn.o_proj.weight", {D, m.heads * d}});
    t.push_back({b + "post_attention_layernorm.weight", {D}, Fill::Ones});
    t.push_back({b + "mlp.gate_proj.weight", {m.ffn, D}});
    t.push_back({b + "mlp.up_proj.weight", {m.ffn, D}});
    t.push_back({b + "mlp.down_proj.weight", {D, m.ffn}});
  }
  t.push_back({"model.norm.weight", {D}, Fill::Ones});
  if (!m.tied) t.push_back({"lm_head.weight", {m.vocab, D}});
  return t;
}

nlohmann::ordered_json configOf(const Shape& m) {
  nlohmann::ordered_json c;
  if (m.family == "opt") {
    c = {{"architectures", {"OPTForCausalLM"}}, {"model_type", "opt"}, {"activation_function", "relu"},
         {"do_layer_norm_before", true}, {"enable_bias", true}, {"layer_norm_elementwise_affine", true},
         {"hidden_size", m.hidden}, {"word_embed_proj_dim", m.hidden}, {"ffn_dim", m.ffn},
         {"num_hidden_layers", m.layers}, {"num_attention_heads", m.heads}, {"vocab_size", m.vocab},
         {"max_position_embeddings", m.maxPositions}, {"bos_token_id", 2}, {"eos_token_id", 2}, {"pad_token_id", 1},
         {"tie_word_embeddings", true}, {"torch_dtype", "float16"}};
    return c;
  }
  c = {{"architectures", {m.family == "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM"}},
       {"model_type", m.family},
       {"hidden_act", "silu"},
       {"hidden_size", m.hidden},
       {"intermediate_size", m.ffn},
       {"num_hidden_layers", m.layers},
       {"num_attention_heads", m.heads},
       {"num_key_value_heads", m.kvHeads},
       {"vocab_size", m.vocab},
       {"max_position_embeddings", m.maxPositions},
       {"rms_norm_eps", 1e-5},
       {"rope_theta", 10000.0},
       {"tie_word_embeddings", false},
       {"bos_token_id", 1},
       {"eos_token_id", 2},
       {"torch_dtype", "float16"}};
  if (m.slidingWindow > 0) c["sliding_window"] = m.slidingWindow;
  return c;
}

void copyFile(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

int usage() {
  std::fprintf(stderr, "usage: make_scale_model --shape llama2-7b|mistral-7b|opt-6.7b|opt-1.3b -o DIR "
                       "[--seed S] [--shard-gib G] [--layers N] [--shared DIR]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shapeName, out, shared = "../shared/data";
  uint64_t seed = 0;
  double shardGib = 2.0;
  int64_t layers = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--shape") shapeName = next();
    else if (a == "-o") out = next();
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--shard-gib") shardGib = std::stod(next());
    else if (a == "--layers") layers = std::stoll(next());
    else if (a == "--shared") shared = next();
    else return usage();
  }
  auto it = kShapes.find(shapeName);
  if (it == kShapes.end() || out.empty()) return usage();
  Shape m = it->second;
  if (layers > 0) m.layers = layers;
  try {
    std::filesystem::create_directories(out);
    const std::vector<Spec> specs = tensorsOf(m);
    // Shards of about shardGib each, in tensor order, as Hugging Face splits them.
    const int64_t shardBytes = static_cast<int64_t>(shardGib * 1024 * 1024 * 1024);
    std::vector<std::vector<size_t>> shards(1);
    int64_t inShard = 0, total = 0, params = 0;
    for (size_t k = 0; k < specs.size(); ++k) {
      int64_t n = 1;
      for (int64_t s : specs[k].shape) n *= s;
      if (inShard > 0 && inShard + 2 * n > shardBytes) {
        shards.emplace_back();
        inShard = 0;
      }
      shards.back().push_back(k);
      inShard += 2 * n;
      total += 2 * n;
      params += n;
    }
    const auto t0 = std::chrono::steady_clock::now();
    nlohmann::ordered_json weightMap = nlohmann::ordered_json::object();
    char name[64];
    for (size_t s = 0; s < shards.size(); ++s) {
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
      std::vector<qs::io::StreamedTensor> tensors;
      for (size_t k : shards[s]) {
        const Spec spec = specs[k];
        tensors.push_back({{spec.name, at::kHalf, spec.shape}, [spec, seed, k] { return make(spec, seed, k); }});
        weightMap[spec.name] = name;
      }
      qs::io::writeSafetensorsStreamed(out + "/" + name, tensors, {{"format", "pt"}});
      std::fprintf(stderr, "  %s (%zu tensors)\n", name, shards[s].size());
    }
    nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weightMap}};
    std::ofstream(out + "/model.safetensors.index.json") << index.dump(2) << "\n";
    std::ofstream(out + "/config.json") << configOf(m).dump(2) << "\n";
    if (m.family == "opt") {
      copyFile(shared + "/tokenizers/vocab.json", out + "/vocab.json");
      copyFile(shared + "/tokenizers/merges.txt", out + "/merges.txt");
    } else {
      copyFile(shared + "/tokenizers/llama_tokenizer.json", out + "/tokenizer.json");
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s: %s, %.2f B parameters, %.2f GiB float16 in %zu shards, written in %.0f s\n", out.c_str(),
                shapeName.c_str(), static_cast<double>(params) / 1e9, static_cast<double>(total) / (1 << 30),
                shards.size(), secs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_scale_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
