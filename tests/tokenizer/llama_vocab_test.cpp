// The score-based llama vocabulary encoder (GGUF / tok512_vocab.json) and the tokenizer.model
// reader, cross-checked against each other and against the LLaMA reference cases.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "core/io/tokenizer/tokenizer.h"
#include "core/util/error.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace qs::io {
namespace {

using qs::test::printable;
using qs::test::readJson;
using qs::test::sharedPath;

const std::vector<std::string> kSentences = {
    "Once upon a time",
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    "",
    " ",
    "  two  spaces",
    "line one\nline two\r\n",
    "Ünïcödé café 日本語 😀",
    "tabs\tand\t\ttabs",
    "x",
};

// A minimal SentencePiece ModelProto writer, so the tokenizer.model reader can be tested on
// the same vocabularies without a .model file in the shared data.
class ProtoWriter {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  void tag(int field, int wire) { varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire)); }
  void intField(int field, int64_t v) {
    tag(field, 0);
    varint(static_cast<uint64_t>(v));
  }
  void bytesField(int field, const std::string& s) {
    tag(field, 2);
    varint(s.size());
    out_ += s;
  }
  void floatField(int field, float f) {
    tag(field, 5);
    char b[4];
    std::memcpy(b, &f, 4);
    out_.append(b, 4);
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

std::string sentencePieceModelProto(const LlamaVocab& v, int modelType = 2) {
  ProtoWriter model;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    ProtoWriter piece;
    piece.bytesField(1, v.tokens[i]);
    piece.floatField(2, v.scores[i]);
    piece.intField(3, static_cast<int>(v.types[i]));
    model.bytesField(1, piece.str());
  }
  ProtoWriter trainer;
  trainer.intField(3, modelType);  // 2 = BPE, 1 = Unigram
  trainer.intField(4, static_cast<int64_t>(v.tokens.size()));
  trainer.intField(35, 1);  // byte_fallback
  trainer.intField(40, v.unkId.value_or(0));
  trainer.intField(41, v.bosId.value_or(-1));
  trainer.intField(42, v.eosId.value_or(-1));
  trainer.intField(43, -1);  // pad_id
  model.bytesField(2, trainer.str());
  ProtoWriter norm;
  norm.bytesField(1, "identity");
  norm.intField(3, 1);  // add_dummy_prefix
  norm.intField(4, 0);  // remove_extra_whitespaces off, as LLaMA's model
  norm.intField(5, 1);  // escape_whitespaces
  model.bytesField(3, norm.str());
  return model.str();
}

std::string writeModel(const LlamaVocab& v, const std::string& name, int modelType = 2) {
  const std::string path = qs::test::tempDir("sp_model") + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  const std::string bytes = sentencePieceModelProto(v, modelType);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  return path;
}

// LLaMA's vocabulary as a score list: score = -id reproduces its merge order (NOTES.md:
// this is how the reference ids were cross-checked against libsentencepiece).
// The LLaMA tokenizer.json's llama (SentencePiece) form, as the GGUF export writes it.
LlamaVocab llamaVocabFromTokenizerJson() { return llamaVocabFromHfBpeJson(sharedPath("tokenizers/llama_tokenizer.json")); }

TEST(LlamaVocab, Tok512JsonRoundTripsAndFindsPieces) {
  QS_REQUIRE_SHARED();
  const auto v = readLlamaVocabJson(sharedPath("models/stories260K/hf/tok512_vocab.json"));
  ASSERT_EQ(v.tokens.size(), 512u);
  EXPECT_EQ(v.bosId, 1);
  EXPECT_EQ(v.eosId, 2);
  EXPECT_EQ(v.unkId, 0);
  const auto tok = makeLlamaVocabTokenizer(v, "test");
  EXPECT_EQ(tok->vocabSize(), 512);
  for (const auto& s : kSentences) {
    const auto ids = tok->encode(s);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), 1) << printable(s);
    EXPECT_EQ(tok->decode(ids), s) << printable(s);
  }
  EXPECT_EQ(tok->encode(""), (std::vector<int32_t>{1}));
  EXPECT_TRUE(tok->encode("", false).empty());
  // "Once upon a time" is merged into multi-character pieces that decode back exactly.
  const auto ids = tok->encode("Once upon a time", false);
  EXPECT_LT(ids.size(), std::string("Once upon a time").size());
  std::string joined;
  for (int32_t id : ids) joined += tok->tokenText(id);
  EXPECT_EQ(joined, " Once upon a time");
  EXPECT_EQ(tok->decode(ids), "Once upon a time");
  EXPECT_EQ(tok->decode({1, ids[0], 2}, false), "<s> Once</s>");
}

TEST(LlamaVocab, MatchesLlamaReferenceCases) {
  QS_REQUIRE_SHARED();
  const auto tok = makeLlamaVocabTokenizer(llamaVocabFromTokenizerJson(), "llama scores");
  const auto cases = readJson(sharedPath("tokenizers/llama_cases.json"));
  int pass = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const auto got = tok->encode(text);
    EXPECT_EQ(got, c["ids"].get<std::vector<int32_t>>()) << printable(text);
    EXPECT_EQ(tok->decode(got), text) << printable(text);
    pass += got == c["ids"].get<std::vector<int32_t>>();
  }
  EXPECT_EQ(pass, 36);
}

TEST(LlamaVocab, SentencePieceModelAgreesWithScoreEncoder) {
  QS_REQUIRE_SHARED();
  const auto v = readLlamaVocabJson(sharedPath("models/stories260K/hf/tok512_vocab.json"));
  const auto sp = loadSentencePieceModel(writeModel(v, "tok512.model"));
  const auto ours = makeLlamaVocabTokenizer(v, "test");
  EXPECT_EQ(sp->vocabSize(), 512);
  EXPECT_EQ(sp->bosId(), 1);
  EXPECT_EQ(sp->eosId(), 2);
  for (const auto& s : kSentences) {
    EXPECT_EQ(sp->encode(s), ours->encode(s)) << printable(s);
    EXPECT_EQ(sp->decode(sp->encode(s)), s) << printable(s);
  }
  EXPECT_EQ(sp->kind(), "SentencePiece BPE (tokenizer.model)");
  // A Unigram model is refused by name rather than tokenized wrongly.
  try {
    loadSentencePieceModel(writeModel(v, "unigram.model", 1));
    FAIL() << "expected qs::Error";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unigram.model"), std::string::npos) << e.what();
  }
}

TEST(LlamaVocab, SentencePieceModelMatchesLlamaReferenceCases) {
  QS_REQUIRE_SHARED();
  const auto sp = loadSentencePieceModel(writeModel(llamaVocabFromTokenizerJson(), "llama.model"));
  const auto cases = readJson(sharedPath("tokenizers/llama_cases.json"));
  int pass = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const auto got = sp->encode(text);
    EXPECT_EQ(got, c["ids"].get<std::vector<int32_t>>()) << printable(text);
    pass += got == c["ids"].get<std::vector<int32_t>>();
  }
  EXPECT_EQ(pass, 36);
}

TEST(LlamaVocab, AgreesWithTokenizerJsonOnWikitext) {
  QS_REQUIRE_SHARED();
  // Both encoders cut long texts at characters no piece contains ("\n"); that must not change
  // a single id, so the two independent implementations agree on a long real text.
  const std::string text = qs::test::readFile(sharedPath("text/wikitext-2-raw-test.txt")).substr(0, 300000);
  const auto json = loadHfTokenizerJson(sharedPath("tokenizers/llama_tokenizer.json"));
  const auto scores = makeLlamaVocabTokenizer(llamaVocabFromTokenizerJson(), "llama scores");
  const auto a = json->encode(text), b = scores->encode(text);
  EXPECT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b);
  EXPECT_EQ(scores->decode(b), text);
}

TEST(LlamaVocab, ErrorsNameTheFile) {
  const std::string dir = qs::test::tempDir("llama_vocab_err");
  const std::string bad = dir + "/tok_vocab.json";
  FILE* f = std::fopen(bad.c_str(), "wb");
  std::fputs("{\"tokens\": [\"a\", \"b\"], \"scores\": [0.0]}", f);
  std::fclose(f);
  try {
    readLlamaVocabJson(bad);
    FAIL() << "expected qs::Error";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  nlohmann::json meta = {{"tokenizer.ggml.model", "gpt2"}};
  EXPECT_THROW(llamaVocabFromGgufMetadata(meta, "x.gguf"), qs::Error);
  EXPECT_THROW(loadSentencePieceModel(dir + "/missing.model"), qs::Error);
  const std::string junk = dir + "/junk.model";
  f = std::fopen(junk.c_str(), "wb");
  std::fputs("not a protobuf", f);
  std::fclose(f);
  EXPECT_THROW(loadSentencePieceModel(junk), qs::Error);
}

}  // namespace
}  // namespace qs::io
