// Text <-> token ids, reproducing llama.cpp's tokenizers (commit c392e509, Feb 2025):
// SentencePiece-style (tokenizer.ggml.model "llama") and byte-level BPE ("gpt2") with the
// pre-tokenizers of pretokenize.h, llama.cpp's special-token handling, token_to_piece and
// detokenize. Immutable after construction; every method is const and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace quanta::gguf {
class File;
}  // namespace quanta::gguf

namespace quanta::tokenizer {

class Tokenizer {
 public:
  // vocab_from_gguf + the constructor.
  static Tokenizer from_gguf(const gguf::File& file);
  // Validates `vocab` (validate_vocab, plus no duplicate token texts); throws quanta::Error.
  explicit Tokenizer(Vocab vocab);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // llama_tokenize: with `add_special`, BOS/EOS as the vocabulary's add_bos/add_eos say.
  // Text matching a user-defined token always becomes that token; text matching a control
  // token does so only with `parse_special` (llama.cpp's parse_special).
  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special = false) const;

  // The bytes of one token (llama_token_to_piece): SPM U+2581 -> space and <0xXX> -> that
  // byte; BPE byte alphabet -> bytes; control and unknown tokens -> "" unless `special`
  // (then their text). May be a partial UTF-8 sequence; see Utf8Stream. Throws
  // quanta::Error for an id outside [0, n_vocab).
  std::string token_to_piece(int32_t id, bool special = false) const;
  // Appends the piece to `out` (no allocation once `out` has capacity).
  void token_to_piece(int32_t id, std::string& out, bool special = false) const;

  // llama_detokenize: the pieces concatenated. With add_space_prefix, one leading space of
  // the first token's piece is dropped; as in llama.cpp that is the first token whatever it
  // is, so after a BOS (rendered as nothing, or removed by `remove_special`, which also
  // drops a final EOS when add_eos) the next piece keeps its space. Control tokens are
  // rendered with `unparse_special`. BPE vocabularies whose pre-tokenizer asks for it get
  // llama.cpp's clean_up_tokenization_spaces passes (" ," -> ",", " 's" -> "'s", ...).
  std::string decode(const std::vector<int32_t>& ids, bool remove_special = false,
                     bool unparse_special = false) const;

  int32_t bos() const;
  int32_t eos() const;
  int32_t eot() const;  // from metadata or detected by text ("<|eot_id|>", "<|im_end|>", ...)
  // End of generation: EOS, EOT, EOM and the tokens llama.cpp recognizes by text.
  bool is_eog(int32_t id) const;
  // Control or unknown type (rendered only with special=true).
  bool is_control(int32_t id) const;
  bool add_bos() const;
  bool add_eos() const;
  int32_t n_vocab() const;
  const Vocab& vocab() const;

  struct Impl;  // lookup tables and caches; defined in tokenizer_impl.h

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace quanta::tokenizer
