// Internal to the tokenizer folder: the tables a Tokenizer builds once from its Vocab, and
// the SPM / BPE word tokenizers (llama.cpp's llm_tokenizer_spm/bpe sessions) that use them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace quanta::tokenizer {

// llama.cpp's llama_token_attr bits.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct StringPairHash {
  size_t operator()(const std::pair<std::string, std::string>& p) const {
    const size_t h = std::hash<std::string>{}(p.first);
    return h ^ (std::hash<std::string>{}(p.second) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
  }
};

struct Tokenizer::Impl {
  Vocab vocab;
  std::vector<std::string> texts;  // [n_vocab] token text; "" stored as "[EMPTY_<id>]"
  std::vector<float> scores;       // [n_vocab]
  std::vector<uint32_t> attrs;     // [n_vocab] TokenAttr bits
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_to_id;
  std::unordered_map<std::pair<std::string, std::string>, int32_t, StringPairHash> bpe_ranks;
  std::vector<int32_t> special_tokens;  // control/user-defined/unknown, longest text first
  std::vector<std::string> pieces;      // [n_vocab] token_to_piece(id, special=true)
  std::unordered_set<int32_t> eog;
  int32_t eot_id = kNoToken;
  int32_t eom_id = kNoToken;
  PreTokenizerConfig pre_config;
  std::unique_ptr<PreTokenizer> pre;  // BPE only

  int32_t find(std::string_view text) const {
    const auto it = token_to_id.find(text);
    return it == token_to_id.end() ? kNoToken : it->second;
  }
  // BPE merge rank of (left, right), or -1.
  int32_t bpe_rank(const std::string& left, const std::string& right) const;
  // SPM byte fallback: <0xXX>, else the byte as a one-character token, else unk (kNoToken
  // when there is none; llama.cpp would throw here).
  int32_t byte_token(uint8_t byte) const;
};

// Tokenizes SPM text whose spaces are already escaped to U+2581; appends to `out`.
void spm_tokenize(const Tokenizer::Impl& t, const std::string& text, std::vector<int32_t>& out);
// Pre-tokenizes and BPE-merges one raw-text fragment; appends to `out`.
void bpe_tokenize(const Tokenizer::Impl& t, std::string_view text, std::vector<int32_t>& out);

}  // namespace quanta::tokenizer
