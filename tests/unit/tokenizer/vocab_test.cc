// Loading and validation: vocab_from_gguf applies llama.cpp's defaults and metadata, and bad
// vocabularies (in a Vocab or in GGUF metadata) throw quanta::Error naming the key.
#include "tokenizer/vocab.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/value.h"
#include "gguf/writer.h"
#include "tokenizer/tokenizer.h"

namespace quanta::tokenizer {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

#define EXPECT_ERROR_NAMES(expr, key)                                            \
  do {                                                                           \
    const std::string message = error_of([&] { (void)(expr); });                 \
    EXPECT_NE(message.find(key), std::string::npos) << "error was: " << message; \
  } while (0)

Vocab small_spm() {
  Vocab v;
  v.kind = VocabKind::kSpm;
  v.tokens = {"<unk>", "<s>", "</s>",
              "\xE2\x96\x81"
              "a",
              "b"};
  v.scores = {0, 0, 0, -1, -2};
  v.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl, TokenType::kNormal,
             TokenType::kNormal};
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  v.add_bos = true;
  v.add_space_prefix = true;
  return v;
}

Vocab small_bpe() {
  Vocab v;
  v.kind = VocabKind::kBpe;
  v.pre = "gpt-2";
  v.tokens = {"a", "b", "ab"};
  v.merges = {"a b"};
  return v;
}

TEST(VocabTest, ValidatesVocabStruct) {
  EXPECT_NO_THROW(Tokenizer{small_spm()});
  EXPECT_NO_THROW(Tokenizer{small_bpe()});
  EXPECT_ERROR_NAMES(Tokenizer(Vocab{}), "tokenizer.ggml.tokens");

  Vocab v = small_spm();
  v.scores.pop_back();
  EXPECT_ERROR_NAMES(Tokenizer(v), "tokenizer.ggml.scores");
  v = small_spm();
  v.types.push_back(TokenType::kNormal);
  EXPECT_ERROR_NAMES(Tokenizer(v), "tokenizer.ggml.token_type");
  v = small_spm();
  v.eos_id = 5;
  EXPECT_ERROR_NAMES(Tokenizer(v), "tokenizer.ggml.eos_token_id");
  v = small_spm();
  v.bos_id = kNoToken;
  EXPECT_ERROR_NAMES(Tokenizer(v), "tokenizer.ggml.add_bos_token");
  v = small_spm();
  v.tokens[4] =
      "\xE2\x96\x81"
      "a";
  EXPECT_ERROR_NAMES(Tokenizer(v), "duplicate token");

  Vocab b = small_bpe();
  b.merges = {"ab"};
  EXPECT_ERROR_NAMES(Tokenizer(b), "tokenizer.ggml.merges[0]");
  b.merges = {"a "};
  EXPECT_ERROR_NAMES(Tokenizer(b), "tokenizer.ggml.merges[0]");
  b = small_bpe();
  b.pre = "unknown-pre";
  EXPECT_ERROR_NAMES(Tokenizer(b), "tokenizer.ggml.pre");
}

// A vocab-only GGUF image in memory.
class GgufVocab {
 public:
  GgufVocab() {
    w_.set("general.name", gguf::Value::string("tiny"));
    w_.set("tokenizer.ggml.model", gguf::Value::string("llama"));
    w_.set("tokenizer.ggml.tokens", gguf::Value::string_array({"<unk>", "<s>", "</s>",
                                                               "\xE2\x96\x81"
                                                               "a",
                                                               "b"}));
    w_.set("tokenizer.ggml.scores", gguf::Value::f32_array({0, 0, 0, -1, -2}));
    w_.set("tokenizer.ggml.token_type", gguf::Value::i32_array({2, 3, 3, 1, 1}));
  }
  GgufVocab& set(const std::string& key, gguf::Value value) {
    w_.set(key, std::move(value));
    return *this;
  }
  Vocab load() const { return vocab_from_gguf(gguf::File::from_bytes(w_.to_bytes())); }

 private:
  gguf::Writer w_;
};

TEST(VocabTest, GgufDefaultsFollowLlamaCpp) {
  const Vocab spm = GgufVocab().load();
  EXPECT_EQ(spm.kind, VocabKind::kSpm);
  EXPECT_EQ(spm.bos_id, 1);
  EXPECT_EQ(spm.eos_id, 2);
  EXPECT_EQ(spm.unk_id, 0);
  EXPECT_TRUE(spm.add_bos);
  EXPECT_FALSE(spm.add_eos);
  EXPECT_TRUE(spm.add_space_prefix);
  EXPECT_EQ(spm.name, "tiny");

  const Vocab overridden = GgufVocab()
                               .set("tokenizer.ggml.bos_token_id", gguf::Value::u32(3))
                               .set("tokenizer.ggml.padding_token_id", gguf::Value::u32(0xFFFFFFFF))
                               .set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(false))
                               .set("tokenizer.ggml.add_space_prefix", gguf::Value::boolean(false))
                               .load();
  EXPECT_EQ(overridden.bos_id, 3);
  EXPECT_EQ(overridden.pad_id, kNoToken);  // 0xFFFFFFFF means unset
  EXPECT_FALSE(overridden.add_bos);
  EXPECT_FALSE(overridden.add_space_prefix);

  // BPE: llama.cpp's default bos/eos 11 falls outside a 3-token vocabulary.
  const Vocab bpe = GgufVocab()
                        .set("tokenizer.ggml.model", gguf::Value::string("gpt2"))
                        .set("tokenizer.ggml.pre", gguf::Value::string("llama-bpe"))
                        .set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b", "ab"}))
                        .set("tokenizer.ggml.scores", gguf::Value::f32_array({0, 0, 0}))
                        .set("tokenizer.ggml.token_type", gguf::Value::i32_array({1, 1, 1}))
                        .set("tokenizer.ggml.merges", gguf::Value::string_array({"a b"}))
                        .set("tokenizer.ggml.bos_token_id", gguf::Value::u32(2))
                        .load();
  EXPECT_EQ(bpe.kind, VocabKind::kBpe);
  EXPECT_EQ(bpe.bos_id, 2);
  EXPECT_EQ(bpe.eos_id, kNoToken);
  EXPECT_TRUE(bpe.add_bos);  // llama3-style pre-tokenizers add BOS by default
  EXPECT_FALSE(bpe.add_space_prefix);
  EXPECT_EQ(bpe.merges, std::vector<std::string>{"a b"});
}

TEST(VocabTest, GgufErrorsNameTheKey) {
  EXPECT_ERROR_NAMES(GgufVocab().set("tokenizer.ggml.model", gguf::Value::string("bert")).load(),
                     "tokenizer.ggml.model");
  EXPECT_ERROR_NAMES(GgufVocab().set("tokenizer.ggml.model", gguf::Value::u32(1)).load(),
                     "tokenizer.ggml.model");
  EXPECT_ERROR_NAMES(
      GgufVocab().set("tokenizer.ggml.tokens", gguf::Value::i32_array({1, 2, 3, 4, 5})).load(),
      "tokenizer.ggml.tokens");
  EXPECT_ERROR_NAMES(
      GgufVocab().set("tokenizer.ggml.scores", gguf::Value::string_array({"x"})).load(),
      "tokenizer.ggml.scores");
  EXPECT_ERROR_NAMES(
      GgufVocab().set("tokenizer.ggml.scores", gguf::Value::f32_array({0, 0})).load(),
      "tokenizer.ggml.scores");
  EXPECT_ERROR_NAMES(
      GgufVocab().set("tokenizer.ggml.token_type", gguf::Value::f32_array({1, 1, 1, 1, 1})).load(),
      "tokenizer.ggml.token_type");
  EXPECT_ERROR_NAMES(GgufVocab().set("tokenizer.ggml.bos_token_id", gguf::Value::u32(99)).load(),
                     "tokenizer.ggml.bos_token_id");
  EXPECT_ERROR_NAMES(
      GgufVocab().set("tokenizer.ggml.add_bos_token", gguf::Value::string("yes")).load(),
      "tokenizer.ggml.add_bos_token");
  EXPECT_ERROR_NAMES(GgufVocab().set("tokenizer.ggml.model", gguf::Value::string("gpt2")).load(),
                     "tokenizer.ggml.merges");
  gguf::Writer empty;
  empty.set("tokenizer.ggml.model", gguf::Value::string("llama"));
  EXPECT_ERROR_NAMES(vocab_from_gguf(gguf::File::from_bytes(empty.to_bytes())),
                     "tokenizer.ggml.tokens");
}

}  // namespace
}  // namespace quanta::tokenizer
