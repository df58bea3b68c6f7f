// Vocab validation (see vocab.h).
#include "tokenizer/vocab.h"

#include "core/error.h"
#include "tokenizer/pretokenize.h"

namespace quanta::tokenizer {

namespace {

void check_id(const char* key, int32_t id, int32_t n_vocab) {
  if (id != kNoToken && (id < 0 || id >= n_vocab)) {
    quanta::fail("%s: id %d is out of range for %d tokens", key, id, n_vocab);
  }
}

}  // namespace

void validate_vocab(const Vocab& v) {
  const int32_t n = v.n_vocab();
  if (n == 0) quanta::fail("tokenizer.ggml.tokens: the token list is empty");
  if (!v.scores.empty() && v.scores.size() != v.tokens.size()) {
    quanta::fail("tokenizer.ggml.scores: %zu entries for %d tokens", v.scores.size(), n);
  }
  if (!v.types.empty() && v.types.size() != v.tokens.size()) {
    quanta::fail("tokenizer.ggml.token_type: %zu entries for %d tokens", v.types.size(), n);
  }
  check_id("tokenizer.ggml.bos_token_id", v.bos_id, n);
  check_id("tokenizer.ggml.eos_token_id", v.eos_id, n);
  check_id("tokenizer.ggml.unknown_token_id", v.unk_id, n);
  check_id("tokenizer.ggml.padding_token_id", v.pad_id, n);
  check_id("tokenizer.ggml.seperator_token_id", v.sep_id, n);
  check_id("tokenizer.ggml.eot_token_id", v.eot_id, n);
  check_id("tokenizer.ggml.eom_token_id", v.eom_id, n);
  if (v.add_bos && v.bos_id == kNoToken) {
    quanta::fail(
        "tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
  }
  if (v.add_eos && v.eos_id == kNoToken) {
    quanta::fail(
        "tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set");
  }
  if (v.kind == VocabKind::kBpe) {
    for (size_t i = 0; i < v.merges.size(); ++i) {
      // llama.cpp splits at the first space after the first byte.
      const std::string& m = v.merges[i];
      const size_t space = m.find(' ', 1);
      if (space == std::string::npos || space + 1 >= m.size()) {
        quanta::fail("tokenizer.ggml.merges[%zu]: '%s' is not of the form 'left right'", i,
                     m.c_str());
      }
    }
    pre_tokenizer_config(v.pre);  // throws for an unknown pre-tokenizer
  }
}

}  // namespace quanta::tokenizer
