// The vocabulary a tokenizer is built from: a plain struct holding what GGUF's tokenizer.ggml.*
// metadata says, already resolved to llama.cpp's defaults (vocab_from_gguf does that), so
// tests and other loaders can build one by hand.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace quanta::gguf {
class File;
}  // namespace quanta::gguf

namespace quanta::tokenizer {

inline constexpr int32_t kNoToken = -1;

// GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type); never renumber.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

enum class VocabKind {
  kSpm,  // tokenizer.ggml.model = "llama": SentencePiece-style, scores + byte fallback
  kBpe,  // tokenizer.ggml.model = "gpt2": byte-level BPE with merges
};

struct Vocab {
  VocabKind kind = VocabKind::kSpm;
  std::string pre;   // tokenizer.ggml.pre ("" when absent); selects the BPE pre-tokenizer
  std::string name;  // general.name (llama.cpp keys a few token-attribute quirks on it)

  std::vector<std::string> tokens;  // [n_vocab] token text as stored (SPM: spaces as U+2581)
  std::vector<float> scores;        // [n_vocab] or empty (all 0); SPM merge priority
  std::vector<TokenType> types;     // [n_vocab] or empty (all kNormal)
  std::vector<std::string> merges;  // BPE: "left right", rank = index; empty for SPM

  // Special token ids, kNoToken when the vocabulary has none.
  int32_t bos_id = kNoToken;
  int32_t eos_id = kNoToken;
  int32_t unk_id = kNoToken;
  int32_t pad_id = kNoToken;
  int32_t sep_id = kNoToken;
  int32_t eot_id = kNoToken;  // end of turn; detected from the token text when unset
  int32_t eom_id = kNoToken;  // end of message; likewise

  bool add_bos = false;           // encode(add_special=true) prepends bos_id
  bool add_eos = false;           // ... and appends eos_id
  bool add_space_prefix = false;  // SPM: a space is prepended to the text (and to text after
                                  // a special token); detokenize drops the first piece's space

  int32_t n_vocab() const { return static_cast<int32_t>(tokens.size()); }
};

// Checks that a Vocab is usable, naming the GGUF key in the quanta::Error it throws:
// a non-empty token list, scores/types of the same length (or empty), ids in range or
// kNoToken, add_bos/add_eos only with an id, BPE merges of the form "left right", and a
// known pre-tokenizer for BPE.
void validate_vocab(const Vocab& vocab);

// Reads tokenizer.ggml.* (and general.name) with llama.cpp's defaults per model kind:
// "llama": bos 1, eos 2, unk 0, add_bos, add_space_prefix; "gpt2": bos = eos = 11, add_bos
// only for Llama-3-style pre-tokenizers. Ids and flags present in the metadata override them;
// a default id outside the vocabulary becomes kNoToken, and a metadata id of 0xFFFFFFFF (-1)
// means "unset" as in llama.cpp. Throws quanta::Error naming the key for a missing or
// ill-typed key, arrays whose lengths differ from the token list, an id out of range, or an
// unsupported tokenizer model.
Vocab vocab_from_gguf(const gguf::File& file);

}  // namespace quanta::tokenizer
