// Tokenizers for the model folders QuantScope opens: Hugging Face tokenizer.json (byte-level
// BPE and SentencePiece-style BPE with byte fallback), SentencePiece .model files, and the
// llama vocabulary embedded in GGUF files. Torch-free.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qs::io {

struct LlamaVocab;
struct BpeVocab;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // addSpecial: apply the tokenizer's own template (e.g. LLaMA's BOS); false gives bare ids.
  virtual std::vector<int32_t> encode(const std::string& text, bool addSpecial = true) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids, bool skipSpecial = true) const = 0;
  // Readable text of one token for display (byte-level "Ġ" mapped back, "▁" shown as a space).
  virtual std::string tokenText(int32_t id) const = 0;
  virtual int32_t vocabSize() const = 0;
  virtual std::optional<int32_t> bosId() const = 0;
  virtual std::optional<int32_t> eosId() const = 0;
  // e.g. "byte-level BPE (tokenizer.json)", "SentencePiece BPE (GGUF llama vocab)".
  virtual std::string kind() const = 0;
  // The pieces/scores/types vocabulary behind a SentencePiece-style tokenizer (what a GGUF file's
  // "llama" tokenizer stores); nullptr for other tokenizers.
  virtual const LlamaVocab* llamaVocab() const { return nullptr; }
  // The byte-level BPE vocabulary (what a GGUF file's "gpt2" tokenizer stores); nullopt for
  // other tokenizers.
  virtual std::optional<BpeVocab> byteLevelBpeVocab() const;
};

// Settings a model folder can override (tokenizer_config.json); unset = the tokenizer's own.
struct TokenizerOptions {
  std::optional<bool> addBos;     // tokenizer_config.json "add_bos_token"
  std::optional<bool> addEos;     // tokenizer_config.json "add_eos_token"
  std::optional<std::string> bosToken;  // "bos_token" (string or {"content": ...})
  std::optional<std::string> eosToken;  // "eos_token"
  // Split the text on added/special tokens ("<|endoftext|>" -> one id) as HF tokenizers do;
  // false treats them as plain text (what gpt-3-encoder and llama2.c do).
  bool parseSpecial = true;
};

// One entry of a llama/SentencePiece vocabulary as GGUF and llama2.c store it.
enum class PieceType : int32_t {
  Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6
};

// The "llama" vocabulary: pieces with scores and types (merges implied by the scores).
struct LlamaVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<PieceType> types;
  std::optional<int32_t> bosId, eosId, unkId;
  bool addBos = true;           // llama's default: BOS in front
  bool addEos = false;
  bool addDummyPrefix = true;   // SentencePiece add_dummy_prefix: " " before the text
  bool removeExtraWhitespaces = false;  // SentencePiece: trim, collapse runs of spaces
};

// The byte-level BPE vocabulary GGUF's "gpt2" tokenizer model stores: pieces by id (byte-level
// characters, "Ġthe"), their types, the merges by rank ("Ġ t"), and the name llama.cpp gives the
// pre-tokenizer ("gpt-2", "llama-bpe", "bloom"; "" when it matches none of those).
struct BpeVocab {
  std::vector<std::string> tokens;
  std::vector<PieceType> types;  // Normal; Control for special added tokens; UserDefined for others
  std::vector<std::string> merges;
  std::string pre;
  std::optional<int32_t> bosId, eosId, unkId;
  bool addBos = false, addEos = false;
};

// Byte-level BPE or SentencePiece-style BPE from a Hugging Face tokenizer.json.
std::unique_ptr<Tokenizer> loadHfTokenizerJson(const std::string& path,
                                               const TokenizerOptions& options = {});
// GPT-2 style vocab.json + merges.txt (byte-level BPE, "<|endoftext|>" special when present).
std::unique_ptr<Tokenizer> loadBpeVocabMerges(const std::string& vocabPath,
                                              const std::string& mergesPath,
                                              const TokenizerOptions& options = {});
// A SentencePiece BPE model file (tokenizer.model: LLaMA, Mistral), read natively and run by
// the llama-vocab encoder; Unigram models are refused with a qs::Error.
std::unique_ptr<Tokenizer> loadSentencePieceModel(const std::string& path,
                                                  const TokenizerOptions& options = {});
// The llama vocabulary dumped as JSON (tokens/scores/token_type, as tok512_vocab.json).
LlamaVocab readLlamaVocabJson(const std::string& path);
// The llama vocabulary behind a SentencePiece-style BPE tokenizer.json (LLaMA-2, Mistral: byte
// fallback, "▁" for spaces): pieces by id, each piece's score minus the rank of the first merge
// that makes it (so merging by score is merging by rank), byte pieces and specials typed as
// SentencePiece types them. qs::Error naming the file for other tokenizers.
LlamaVocab llamaVocabFromHfBpeJson(const std::string& path);
// The llama vocabulary in GGUF metadata ("tokenizer.ggml.*"); source names the file in errors.
LlamaVocab llamaVocabFromGgufMetadata(const nlohmann::json& metadata, const std::string& source);
// The "gpt2" (byte-level BPE) vocabulary in GGUF metadata; qs::Error naming `source` for a
// missing or malformed key, or a pre-tokenizer QuantScope does not run (tokenizer.ggml.pre
// other than gpt-2, llama-bpe/llama3, bloom).
BpeVocab bpeVocabFromGgufMetadata(const nlohmann::json& metadata, const std::string& source);
// A byte-level BPE tokenizer over a BpeVocab (the pre-tokenizer its `pre` names).
std::unique_ptr<Tokenizer> makeBpeVocabTokenizer(const BpeVocab& vocab, const std::string& source,
                                                 const std::string& kind);
// llama.cpp/llama2.c-style encoder over a LlamaVocab; kind is shown by Tokenizer::kind().
std::unique_ptr<Tokenizer> makeLlamaVocabTokenizer(LlamaVocab vocab, const std::string& kind,
                                                   const TokenizerOptions& options = {});

// Finds and loads the tokenizer a model ships: in a folder tokenizer.json, tokenizer.model,
// vocab.json + merges.txt, or tok*_vocab.json (tokens/scores/types dump); for a .gguf file its
// embedded vocabulary. Throws qs::Error naming the path and the files it looked for.
// tokenizer_config.json (when present) supplies add_bos_token/add_eos_token/bos/eos tokens.
std::unique_ptr<Tokenizer> loadTokenizer(const std::string& modelPath);

}  // namespace qs::io
