// loadTokenizer(): picks the tokenizer a model folder or GGUF file ships. Lives in qs_io (not
// qs_tokenizer) because the GGUF branch needs the GGUF reader; the tokenizers stay torch-free.
#include <algorithm>
#include <filesystem>

#include "core/io/gguf.h"
#include "core/io/tokenizer/json_file.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/strings.h"

namespace qs::io {

namespace {

namespace stdfs = std::filesystem;

const char* kLookedFor = "tokenizer.json, tokenizer.model, vocab.json + merges.txt or tok*_vocab.json";

// "bos_token": "<s>" or {"content": "<s>", ...} (both occur in tokenizer_config.json).
std::optional<std::string> tokenName(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

TokenizerOptions readTokenizerConfig(const std::string& folder) {
  TokenizerOptions opt;
  const std::string path = qs::fs::join(folder, "tokenizer_config.json");
  if (!qs::fs::exists(path)) return opt;
  const nlohmann::json j = readJsonFile(path);
  if (!j.is_object()) throw fileError(path, "expected a JSON object");
  for (auto [key, field] : {std::pair{"add_bos_token", &opt.addBos}, std::pair{"add_eos_token", &opt.addEos}}) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_boolean()) throw fileError(path, std::string("\"") + key + "\" must be true or false");
    *field = it->get<bool>();
  }
  opt.bosToken = tokenName(j, "bos_token");
  opt.eosToken = tokenName(j, "eos_token");
  return opt;
}

std::unique_ptr<Tokenizer> loadGguf(const std::string& path) {
  const auto gguf = GgufFile::open(path);
  if (gguf->metadata().value("tokenizer.ggml.model", std::string()) == "gpt2")
    return makeBpeVocabTokenizer(bpeVocabFromGgufMetadata(gguf->metadata(), path), path,
                                 "byte-level BPE (GGUF gpt2 vocab)");
  return makeLlamaVocabTokenizer(llamaVocabFromGgufMetadata(gguf->metadata(), path),
                                 "SentencePiece BPE (GGUF llama vocab)");
}

std::unique_ptr<Tokenizer> loadLlamaVocabJson(const std::string& path, const TokenizerOptions& opt) {
  return makeLlamaVocabTokenizer(readLlamaVocabJson(path), "SentencePiece BPE (llama vocab json)", opt);
}

// tok512_vocab.json and the like (llama2.c's tokenizer dumped as JSON); first by name.
std::optional<std::string> findVocabDump(const std::string& folder) {
  std::vector<std::string> hits;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("tok", 0) == 0 && str::endsWith(name, "_vocab.json")) hits.push_back(e.path().string());
  }
  if (hits.empty()) return std::nullopt;
  std::sort(hits.begin(), hits.end());
  return hits.front();
}

}  // namespace

std::unique_ptr<Tokenizer> loadTokenizer(const std::string& modelPath) {
  if (!qs::fs::exists(modelPath))
    throw fileError(modelPath, std::string("not found (expected a model folder with ") + kLookedFor + ", or a .gguf file)");
  if (!qs::fs::isDirectory(modelPath)) {
    const std::string name = stdfs::path(modelPath).filename().string();
    if (str::endsWith(name, ".gguf")) return loadGguf(modelPath);
    if (str::endsWith(name, ".model")) return loadSentencePieceModel(modelPath);
    if (str::endsWith(name, "_vocab.json")) return loadLlamaVocabJson(modelPath, {});
    if (str::endsWith(name, ".json")) return loadHfTokenizerJson(modelPath);
    throw fileError(modelPath, std::string("not a tokenizer file (expected a folder with ") + kLookedFor + ", or a .gguf file)");
  }
  const TokenizerOptions opt = readTokenizerConfig(modelPath);
  const auto in = [&](const char* file) { return qs::fs::join(modelPath, file); };
  if (qs::fs::exists(in("tokenizer.json"))) return loadHfTokenizerJson(in("tokenizer.json"), opt);
  if (qs::fs::exists(in("tokenizer.model"))) return loadSentencePieceModel(in("tokenizer.model"), opt);
  if (qs::fs::exists(in("vocab.json")) && qs::fs::exists(in("merges.txt")))
    return loadBpeVocabMerges(in("vocab.json"), in("merges.txt"), opt);
  if (auto dump = findVocabDump(modelPath)) return loadLlamaVocabJson(*dump, opt);
  throw fileError(modelPath, std::string("no tokenizer found (looked for ") + kLookedFor + ")");
}

}  // namespace qs::io
