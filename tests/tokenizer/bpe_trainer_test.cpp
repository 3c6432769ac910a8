// Byte-level BPE training: merges of tiny corpora worked out by hand (counts and the stated
// tie-break), the written tokenizer.json read back by QuantScope's own loader (its encoding of the
// training text is the trainer's final segmentation), round trips on unseen text, determinism,
// progress and cancellation, and the option errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/io/tokenizer/bpe_trainer.h"
#include "core/io/tokenizer/tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "tests/support/test_paths.h"

namespace {

using Merges = std::vector<std::pair<std::string, std::string>>;
const std::string kG = "\xC4\xA0";  // "Ġ": the byte-level symbol of a space

qs::io::BpeTrainResult trainOn(const std::vector<std::string>& texts, const qs::io::BpeTrainOptions& o) {
  qs::io::BpeTrainer t(o);
  for (const auto& s : texts) t.addText(s, "test text");
  return t.train();
}

// A few paragraphs with the kinds of text the GPT-2 regex separates (contractions, digits,
// punctuation, runs of spaces, newlines, non-ASCII letters).
std::string corpus() {
  std::string s;
  for (int i = 0; i < 40; ++i) {
    s += "It's the " + std::to_string(i * 37) + "th time the cat sat on the mat, isn't it?\n";
    s += "  Café naïve — the theory of the thing:  they'll see there were three trees.\n\n";
  }
  return s;
}

TEST(BpeTrainer, HandWorkedMergesAndMinFrequency) {
  // Words (GPT-2 split): "ab" x1, " ab" x2, " abc" x2, " b" x1. Pair counts: (a,b) 5, (Ġ,a) 4,
  // (b,c) 2, (Ġ,b) 1 -> merge a+b; then (Ġ,ab) 4, (ab,c) 2, (Ġ,b) 1 -> Ġ+ab; then (Ġab,c) 2 ->
  // Ġab+c; (Ġ,b) occurs once, below min frequency 2.
  auto r = trainOn({"ab ab ab abc abc b"}, qs::io::BpeTrainOptions().withVocabSize(1000).withMinFrequency(2));
  EXPECT_EQ(r.merges, (Merges{{"a", "b"}, {kG, "ab"}, {kG + "ab", "c"}}));
  EXPECT_TRUE(r.stoppedByMinFrequency);
  ASSERT_EQ(r.pieces.size(), 1u + 256u + 3u);
  EXPECT_EQ(r.pieces[0], "<|endoftext|>");
  EXPECT_EQ(r.pieces[1 + 'a'], "a");
  EXPECT_EQ(r.pieces[1 + ' '], kG);
  EXPECT_EQ(r.pieces[257], "ab");
  EXPECT_EQ(r.pieces[258], kG + "ab");
  EXPECT_EQ(r.pieces[259], kG + "abc");
  EXPECT_EQ(r.words, 6);
  EXPECT_EQ(r.uniqueWords, 4);
  // With min frequency 1 the single (Ġ,b) is merged too.
  auto r1 = trainOn({"ab ab ab abc abc b"}, qs::io::BpeTrainOptions().withVocabSize(1000).withMinFrequency(1));
  EXPECT_EQ(r1.merges.back(), (std::pair<std::string, std::string>{kG, "b"}));
}

TEST(BpeTrainer, TiesGoToTheSmallerLeftIdThenRightId) {
  // Words "xy", " zw": every pair occurs once. Ids follow bytes: Ġ (0x20) < x (0x78) < z (0x7a),
  // so Ġ+z first, then x+y; the new Ġz has the largest id, so Ġz+w comes last. The vocabulary
  // size (1 + 256 + 3) stops training after exactly three merges.
  auto r = trainOn({"xy zw"}, qs::io::BpeTrainOptions().withVocabSize(260).withMinFrequency(1));
  EXPECT_EQ(r.merges, (Merges{{kG, "z"}, {"x", "y"}, {kG + "z", "w"}}));
  EXPECT_FALSE(r.stoppedByMinFrequency);
  // Equal left ids: the smaller right id wins. "ac\nab" splits into "ac", "\n", "ab": (a,c) and
  // (a,b) occur once each, so a+b (b < c) comes first whatever the text order.
  auto r2 = trainOn({"ac\nab"}, qs::io::BpeTrainOptions().withVocabSize(259).withMinFrequency(1));
  EXPECT_EQ(r2.merges, (Merges{{"a", "b"}, {"a", "c"}}));
}

TEST(BpeTrainer, RepeatedSymbolsMergeLeftToRight) {
  // "aaaa" x1: (a,a) occurs 3 times in the word; merging left to right gives [aa, aa], whose
  // pair (aa,aa) occurs once; then "aaaa".
  auto r = trainOn({"aaaa"}, qs::io::BpeTrainOptions().withVocabSize(1000).withMinFrequency(1));
  EXPECT_EQ(r.merges, (Merges{{"a", "a"}, {"aa", "aa"}}));
}

TEST(BpeTrainer, WrittenFolderLoadsAndReproducesTheTrainingSegmentation) {
  const std::string dir = qs::test::tempDir("bpe_tok_small");
  qs::io::BpeTrainOptions o = qs::io::BpeTrainOptions().withVocabSize(1000).withMinFrequency(2);
  auto r = trainOn({"ab ab ab abc abc b"}, o);
  qs::io::writeBpeTokenizer(dir, r, o);
  EXPECT_TRUE(qs::fs::exists(dir + "/tokenizer_config.json"));
  EXPECT_TRUE(qs::fs::exists(dir + "/special_tokens_map.json"));
  auto tok = qs::io::loadTokenizer(dir);
  EXPECT_EQ(tok->vocabSize(), 260);
  EXPECT_EQ(tok->bosId(), 0);
  EXPECT_EQ(tok->eosId(), 0);
  EXPECT_NE(tok->kind().find("byte-level"), std::string::npos);
  // The trainer's final words: ab | Ġab | Ġab | Ġabc | Ġabc | Ġ b.
  EXPECT_EQ(tok->encode("ab ab ab abc abc b", false),
            (std::vector<int32_t>{257, 258, 258, 259, 259, 1 + ' ', 1 + 'b'}));
  EXPECT_EQ(tok->encode("<|endoftext|>ab", false), (std::vector<int32_t>{0, 257}));
  EXPECT_EQ(tok->decode({0, 257, 259}, true), "ab abc");
}

TEST(BpeTrainer, RoundTripsOnSeenAndUnseenText) {
  const std::string dir = qs::test::tempDir("bpe_tok_round");
  qs::io::BpeTrainOptions o = qs::io::BpeTrainOptions().withVocabSize(320);
  auto r = trainOn({corpus()}, o);
  ASSERT_EQ(r.pieces.size(), 320u);
  qs::io::writeBpeTokenizer(dir, r, o);
  auto tok = qs::io::loadTokenizer(dir);
  const std::vector<std::string> samples = {
      corpus().substr(0, 300),
      "The theory: cats won't sit; 12345 mats!\n\n\tTabs  and   spaces ",
      "Unseen: \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82 \xC3\xBC\xC3\x9F, \x01 control",
      ""};
  for (const auto& s : samples) {
    const std::vector<int32_t> ids = tok->encode(s, false);
    EXPECT_EQ(tok->decode(ids, false), s);
    EXPECT_EQ(tok->encode(tok->decode(ids, false), false), ids);
  }
  // Merges were learnt: the training text takes far fewer tokens than bytes.
  const std::string text = corpus();
  EXPECT_LT(tok->encode(text, false).size() * 2, text.size());
}

TEST(BpeTrainer, DeterministicAndIndependentOfTextOrder) {
  const std::string a = corpus(), b = "another text with other words, other words again\n";
  qs::io::BpeTrainOptions o = qs::io::BpeTrainOptions().withVocabSize(380);
  const std::string j1 = qs::io::bpeTokenizerJson(trainOn({a, b}, o), o);
  const std::string j2 = qs::io::bpeTokenizerJson(trainOn({b, a}, o), o);
  EXPECT_EQ(j1, j2);
}

class RecordingProgress : public qs::jobs::Progress {
 public:
  explicit RecordingProgress(int cancelAfter) : cancelAfter_(cancelAfter) {}
  void update(double fraction, const std::string&) override { fractions.push_back(fraction); }
  bool cancelRequested() const override { return cancelAfter_ >= 0 && static_cast<int>(fractions.size()) >= cancelAfter_; }
  std::vector<double> fractions;

 private:
  int cancelAfter_;
};

TEST(BpeTrainer, ReportsProgressAndCancels) {
  qs::io::BpeTrainer t(qs::io::BpeTrainOptions().withVocabSize(600).withMinFrequency(1));
  t.addText(corpus(), "corpus");
  RecordingProgress p(-1);
  auto r = t.train(p);
  ASSERT_GE(p.fractions.size(), 2u);
  for (size_t i = 1; i < p.fractions.size(); ++i) EXPECT_GE(p.fractions[i], p.fractions[i - 1]);
  EXPECT_DOUBLE_EQ(p.fractions.back(), 1.0);
  RecordingProgress cancel(1);
  EXPECT_THROW(t.train(cancel), qs::Cancelled);
  // A cancelled run changes nothing: training again gives the same merges.
  EXPECT_EQ(t.train().merges, r.merges);
}

TEST(BpeTrainer, BadOptionsAndTextAreClearErrors) {
  try {
    qs::io::BpeTrainer t(qs::io::BpeTrainOptions().withVocabSize(200));
    FAIL() << "expected an error";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--vocab-size 200"), std::string::npos) << e.what();
  }
  EXPECT_THROW(qs::io::BpeTrainer(qs::io::BpeTrainOptions().withSpecialTokens({"<s>", "<s>"})), qs::Error);
  qs::io::BpeTrainer t(qs::io::BpeTrainOptions{});
  try {
    t.addText("ok \xFF bad", "broken.txt");
    FAIL() << "expected an error";
  } catch (const qs::Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.txt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  }
}

}  // namespace
