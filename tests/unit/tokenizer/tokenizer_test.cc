// Tokenizer behaviour on small hand-built vocabularies (SPM merge order, byte and unknown
// fallback, special tokens, BPE merge ranks, pieces, detokenize rules) and on real ones.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
#include "testlib/shared_data.h"

namespace quanta::tokenizer {
namespace {

using Ids = std::vector<int32_t>;
const std::string kSp = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// 0 <unk>, 1 <s>, 2 </s>, 3 ▁, 4 a, 5 b, 6 ▁a, 7 ab, 8 <0x63> ('c'), 9 <|user|>
Vocab spm_vocab(float score_sp_a, float score_ab) {
  Vocab v;
  v.kind = VocabKind::kSpm;
  v.tokens = {"<unk>", "<s>", "</s>", kSp, "a", "b", kSp + "a", "ab", "<0x63>", "<|user|>"};
  v.scores = {0, 0, 0, -5, -5, -5, score_sp_a, score_ab, 0, 0};
  v.types = {TokenType::kUnknown, TokenType::kControl,    TokenType::kControl, TokenType::kNormal,
             TokenType::kNormal,  TokenType::kNormal,     TokenType::kNormal,  TokenType::kNormal,
             TokenType::kByte,    TokenType::kUserDefined};
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  v.add_bos = true;
  v.add_space_prefix = true;
  return v;
}

TEST(SpmTest, MergesHighestScoreFirst) {
  EXPECT_EQ(Tokenizer(spm_vocab(-1, -2)).encode("ab", false), (Ids{6, 5}));  // ▁a + b
  EXPECT_EQ(Tokenizer(spm_vocab(-2, -1)).encode("ab", false), (Ids{3, 7}));  // ▁ + ab
}

TEST(SpmTest, ByteAndUnknownFallback) {
  const Tokenizer tok(spm_vocab(-1, -2));
  EXPECT_EQ(tok.encode("c", false), (Ids{3, 8}));  // <0x63>
  EXPECT_EQ(tok.encode("d", false), (Ids{3, 0}));  // no <0x64>: <unk>
  EXPECT_EQ(tok.encode("", false), Ids{});
  EXPECT_EQ(tok.encode("", true), Ids{1});
}

TEST(SpmTest, SpecialTokens) {
  Vocab v = spm_vocab(-1, -2);
  const Tokenizer tok(v);
  EXPECT_EQ(tok.encode("a", true), (Ids{1, 6}));
  // User-defined tokens are always split out; the text after them gets the space prefix.
  EXPECT_EQ(tok.encode("ab<|user|>ab", false), (Ids{6, 5, 9, 6, 5}));
  // Control-token text is only parsed with parse_special.
  EXPECT_EQ(tok.encode("<s>a", false, /*parse_special=*/true), (Ids{1, 6}));
  EXPECT_EQ(tok.encode("<s>a", false), (Ids{3, 0, 0, 0, 4}));
  v.add_eos = true;
  EXPECT_EQ(Tokenizer(v).encode("a", true), (Ids{1, 6, 2}));
  v.add_space_prefix = false;
  EXPECT_EQ(Tokenizer(v).encode("ab", false), (Ids{7}));
  EXPECT_TRUE(tok.is_eog(2));
  EXPECT_FALSE(tok.is_eog(6));
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.n_vocab(), 10);
}

TEST(SpmTest, PiecesAndDecode) {
  const Tokenizer tok(spm_vocab(-1, -2));
  EXPECT_EQ(tok.token_to_piece(6), " a");
  EXPECT_EQ(tok.token_to_piece(8), "c");
  EXPECT_EQ(tok.token_to_piece(2), "");
  EXPECT_EQ(tok.token_to_piece(2, /*special=*/true), "</s>");
  EXPECT_EQ(tok.token_to_piece(0), "");
  EXPECT_EQ(tok.token_to_piece(0, true), "<unk>");
  EXPECT_EQ(tok.token_to_piece(9), "<|user|>");
  std::string appended = "x";
  tok.token_to_piece(6, appended);
  EXPECT_EQ(appended, "x a");
  EXPECT_THROW(tok.token_to_piece(10), Error);

  EXPECT_EQ(tok.decode({6, 5}), "ab");      // first piece's space dropped
  EXPECT_EQ(tok.decode({1, 6, 5}), " ab");  // ... but BOS takes that step (llama.cpp)
  EXPECT_EQ(tok.decode({1, 6, 5}, true), " ab");
  EXPECT_EQ(tok.decode({6, 2}, false, true), "a</s>");
  EXPECT_EQ(tok.decode({6, 2}), "a");
}

// 0 a, 1 b, 2 c, 3 ab, 4 abc, 5 Ġ, 6 Ġa, 7 ",", 8 <|endoftext|>
Vocab bpe_vocab(std::vector<std::string> merges, std::string pre = "gpt-2") {
  Vocab v;
  v.kind = VocabKind::kBpe;
  v.pre = std::move(pre);
  v.tokens = {"a", "b", "c", "ab", "abc", "\u0120", "\u0120a", ",", "<|endoftext|>"};
  v.merges = std::move(merges);
  return v;
}

TEST(BpeTest, MergesLowestRankFirst) {
  EXPECT_EQ(Tokenizer(bpe_vocab({"a b", "ab c", "\u0120 a"})).encode(" abc", false), (Ids{5, 4}));
  EXPECT_EQ(Tokenizer(bpe_vocab({"\u0120 a", "a b", "ab c"})).encode(" abc", false),
            (Ids{6, 1, 2}));
  // Llama-3-style pre-tokenizers take a word that is a token as is (ignore_merges).
  EXPECT_EQ(Tokenizer(bpe_vocab({"a b"}, "llama-bpe")).encode("abc", false), (Ids{4}));
  EXPECT_EQ(Tokenizer(bpe_vocab({"a b"})).encode("abc", false), (Ids{3, 2}));
  // A character with no token and no byte token is dropped, as in llama.cpp.
  EXPECT_EQ(Tokenizer(bpe_vocab({})).encode("d", false), Ids{});
}

TEST(BpeTest, SpecialTokensAndDecode) {
  const Tokenizer tok(bpe_vocab({"a b"}));
  EXPECT_EQ(tok.encode("a", true), Ids{0});  // gpt-2: no BOS by default
  EXPECT_TRUE(tok.is_eog(8));                // recognized by its text, made a control token
  EXPECT_EQ(tok.token_to_piece(8), "");
  EXPECT_EQ(tok.token_to_piece(8, true), "<|endoftext|>");
  EXPECT_EQ(tok.token_to_piece(6), " a");
  EXPECT_EQ(tok.decode({0, 5, 7}), "a,");  // clean_up_tokenization_spaces
  EXPECT_EQ(Tokenizer(bpe_vocab({"a b"}, "qwen2")).decode({0, 5, 7}), "a ,");
  Vocab with_bos = bpe_vocab({"a b"});
  with_bos.bos_id = 8;
  with_bos.add_bos = true;
  EXPECT_EQ(Tokenizer(with_bos).encode("a", true), (Ids{8, 0}));
}

Tokenizer load(const std::string& vocab) {
  const gguf::File file =
      gguf::File::open(testlib::shared_path("golden/tokenizer/ggml-vocab-" + vocab + ".gguf"));
  return Tokenizer::from_gguf(file);
}

TEST(TokenizerTest, RealVocabularies) {
  const Tokenizer spm = load("llama-spm");
  EXPECT_EQ(spm.decode(spm.encode("Hello world", false)), "Hello world");
  EXPECT_EQ(spm.decode(spm.encode("Hello world", true)), " Hello world");
  EXPECT_EQ(spm.decode(spm.encode("\xF0\x9F\xA6\x99 byte fallback", false)),
            "\xF0\x9F\xA6\x99 byte fallback");

  const Tokenizer gpt2 = load("gpt-2");
  EXPECT_EQ(gpt2.decode(gpt2.encode("Hello , world 's", false)), "Hello, world's");
  EXPECT_TRUE(gpt2.is_eog(50256));

  const Tokenizer deepseek = load("deepseek-llm");
  EXPECT_EQ(deepseek.decode(deepseek.encode("a , b", false)), "a , b");
  EXPECT_TRUE(deepseek.add_bos());
  EXPECT_EQ(deepseek.encode("a", true).front(), 100000);
}

}  // namespace
}  // namespace quanta::tokenizer
