// Tiny random model folders (config.json + model.safetensors) for tests that need a real model
// without ../shared: OPT (pre-LN, biases, learned positions) and LLaMA (RMSNorm, RoPE, GQA,
// SwiGLU). Fixed seed, so every run writes the same bytes. Header-only so any test target that
// links qs_io (test_model, test_eval, test_cli) can use it without build changes.
#pragma once
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/io/safetensors.h"

namespace qs::test {

struct TinyModelOptions {
  int64_t vocab = 256;       // token ids 0..vocab-1 (use >= 50257 for GPT-2-tokenized text)
  int64_t hidden = 64;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t kvHeads = 2;       // LLaMA only (GQA); OPT uses heads
  int64_t ffn = 128;
  int64_t maxPositions = 128;
  uint64_t seed = 0;
  bool tied = true;          // LLaMA: omit lm_head.weight and set tie_word_embeddings
  double weightStd = 0.2;    // N(0, weightStd) matrices; 0.2 makes every layer matter in the logits
  bool plainNorms = false;   // norm gains 1 and all biases 0 (as a fresh HF init), else random
  TinyModelOptions& setVocab(int64_t v) { vocab = v; return *this; }
  TinyModelOptions& setLayers(int64_t v) { layers = v; return *this; }
  TinyModelOptions& setSeed(uint64_t v) { seed = v; return *this; }
  TinyModelOptions& setHidden(int64_t v) { hidden = v; return *this; }
  // Attention heads and key/value heads (GQA when kv < heads; OPT uses heads only).
  TinyModelOptions& setHeads(int64_t h, int64_t kv) { heads = h; kvHeads = kv; return *this; }
  TinyModelOptions& setFfn(int64_t v) { ffn = v; return *this; }
  TinyModelOptions& setTied(bool v) { tied = v; return *this; }
  TinyModelOptions& setWeightStd(double v) { weightStd = v; return *this; }
  // OPT-125M's shapes (hidden 768, 12 heads, FFN 3072, vocab 50272, 2048 positions) with
  // `layers` blocks and N(0, 0.02) weights, as the benchmarks use it.
  static TinyModelOptions opt125mShape(int64_t layers = 12) {
    TinyModelOptions o;
    o.vocab = 50272; o.hidden = 768; o.layers = layers; o.heads = 12; o.ffn = 3072;
    o.maxPositions = 2048; o.weightStd = 0.02; o.plainNorms = true;
    return o;
  }
};

namespace detail {

class TinyWriter {
 public:
  TinyWriter(uint64_t seed, double weightStd, bool plainNorms)
      : gen_(at::make_generator<at::CPUGeneratorImpl>(seed)), std_(weightStd), plain_(plainNorms) {}
  void matrix(const std::string& name, std::vector<int64_t> shape) {
    t_.emplace_back(name, at::normal(0.0, std_, shape, gen_));
  }
  void bias(const std::string& name, int64_t n) {
    t_.emplace_back(name, plain_ ? at::zeros({n}) : at::normal(0.0, 0.1, {n}, gen_));
  }
  void gain(const std::string& name, int64_t n) {
    t_.emplace_back(name, plain_ ? at::ones({n}) : 1.0 + 0.1 * at::randn({n}, gen_));
  }
  void write(const std::string& dir, const std::string& configJson) {
    qs::io::writeSafetensors(dir + "/model.safetensors", t_);
    std::ofstream(dir + "/config.json") << configJson;
  }

 private:
  at::Generator gen_;
  double std_;
  bool plain_;
  std::vector<std::pair<std::string, at::Tensor>> t_;
};

}  // namespace detail

// Writes a tiny OPT-style model into dir (which must exist); returns dir. Tied lm_head.
inline std::string writeTinyOpt(const std::string& dir, const TinyModelOptions& o = {}) {
  detail::TinyWriter w(o.seed, o.weightStd, o.plainNorms);
  const std::string p = "model.decoder.";
  w.matrix(p + "embed_tokens.weight", {o.vocab, o.hidden});
  w.matrix(p + "embed_positions.weight", {o.maxPositions + 2, o.hidden});
  w.gain(p + "final_layer_norm.weight", o.hidden);
  w.bias(p + "final_layer_norm.bias", o.hidden);
  for (int64_t i = 0; i < o.layers; ++i) {
    const std::string b = p + "layers." + std::to_string(i) + ".";
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      w.matrix(b + "self_attn." + proj + ".weight", {o.hidden, o.hidden});
      w.bias(b + "self_attn." + proj + ".bias", o.hidden);
    }
    w.gain(b + "self_attn_layer_norm.weight", o.hidden);
    w.bias(b + "self_attn_layer_norm.bias", o.hidden);
    w.matrix(b + "fc1.weight", {o.ffn, o.hidden});
    w.bias(b + "fc1.bias", o.ffn);
    w.matrix(b + "fc2.weight", {o.hidden, o.ffn});
    w.bias(b + "fc2.bias", o.hidden);
    w.gain(b + "final_layer_norm.weight", o.hidden);
    w.bias(b + "final_layer_norm.bias", o.hidden);
  }
  w.write(dir, std::string("{\n") +
                   "  \"architectures\": [\"OPTForCausalLM\"], \"model_type\": \"opt\",\n"
                   "  \"activation_function\": \"relu\", \"do_layer_norm_before\": true,\n"
                   "  \"enable_bias\": true, \"layer_norm_elementwise_affine\": true,\n"
                   "  \"hidden_size\": " + std::to_string(o.hidden) +
                   ", \"word_embed_proj_dim\": " + std::to_string(o.hidden) +
                   ", \"ffn_dim\": " + std::to_string(o.ffn) +
                   ",\n  \"num_hidden_layers\": " + std::to_string(o.layers) +
                   ", \"num_attention_heads\": " + std::to_string(o.heads) +
                   ", \"vocab_size\": " + std::to_string(o.vocab) +
                   ",\n  \"max_position_embeddings\": " + std::to_string(o.maxPositions) +
                   ", \"bos_token_id\": 2, \"eos_token_id\": 2, \"pad_token_id\": 1,\n"
                   "  \"tie_word_embeddings\": true, \"torch_dtype\": \"float32\"\n}\n");
  return dir;
}

// Writes a tiny LLaMA-style model into dir (which must exist); returns dir.
inline std::string writeTinyLlama(const std::string& dir, const TinyModelOptions& o = {}) {
  detail::TinyWriter w(o.seed, o.weightStd, o.plainNorms);
  const int64_t d = o.hidden / o.heads;
  w.matrix("model.embed_tokens.weight", {o.vocab, o.hidden});
  w.gain("model.norm.weight", o.hidden);
  if (!o.tied) w.matrix("lm_head.weight", {o.vocab, o.hidden});
  for (int64_t i = 0; i < o.layers; ++i) {
    const std::string b = "model.layers." + std::to_string(i) + ".";
    w.gain(b + "input_layernorm.weight", o.hidden);
    w.matrix(b + "self_attn.q_proj.weight", {o.heads * d, o.hidden});
    w.matrix(b + "self_attn.k_proj.weight", {o.kvHeads * d, o.hidden});
    w.matrix(b + "self_attn.v_proj.weight", {o.kvHeads * d, o.hidden});
    w.matrix(b + "self_attn.o_proj.weight", {o.hidden, o.heads * d});
    w.gain(b + "post_attention_layernorm.weight", o.hidden);
    w.matrix(b + "mlp.gate_proj.weight", {o.ffn, o.hidden});
    w.matrix(b + "mlp.up_proj.weight", {o.ffn, o.hidden});
    w.matrix(b + "mlp.down_proj.weight", {o.hidden, o.ffn});
  }
  w.write(dir, std::string("{\n") +
                   "  \"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\",\n"
                   "  \"hidden_act\": \"silu\", \"hidden_size\": " + std::to_string(o.hidden) +
                   ", \"intermediate_size\": " + std::to_string(o.ffn) +
                   ",\n  \"num_hidden_layers\": " + std::to_string(o.layers) +
                   ", \"num_attention_heads\": " + std::to_string(o.heads) +
                   ", \"num_key_value_heads\": " + std::to_string(o.kvHeads) +
                   ",\n  \"vocab_size\": " + std::to_string(o.vocab) +
                   ", \"max_position_embeddings\": " + std::to_string(o.maxPositions) +
                   ", \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0,\n"
                   "  \"tie_word_embeddings\": " + (o.tied ? "true" : "false") +
                   ", \"bos_token_id\": 1, \"eos_token_id\": 2, \"torch_dtype\": \"float32\"\n}\n");
  return dir;
}

// GPT-2's byte -> printable-unicode map, encoded as UTF-8 (what vocab.json keys use).
inline std::string gpt2ByteToken(int b) {
  static const std::vector<int> cps = [] {
    std::vector<int> map(256, -1);
    int extra = 0;
    for (int i = 0; i < 256; ++i) {
      bool printable = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255);
      map[i] = printable ? i : 256 + extra++;
    }
    return map;
  }();
  const int cp = cps[b];
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A byte-level BPE tokenizer without merges (vocab.json + merges.txt, ids 0..255 = bytes) in
// dir: one token per UTF-8 byte, so token counts are exact; fits the tiny models' vocab 256.
inline void writeByteTokenizer(const std::string& dir) {
  nlohmann::json vocab;
  for (int b = 0; b < 256; ++b) vocab[gpt2ByteToken(b)] = b;
  std::ofstream(dir + "/vocab.json") << vocab.dump();
  std::ofstream(dir + "/merges.txt") << "#version: 0.2\n";
}

}  // namespace qs::test
