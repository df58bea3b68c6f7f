// Byte-level BPE pre-tokenizers, as llama.cpp's unicode_regex_split: the text is split by a
// list of regexes in turn (each one splits every current fragment into its matches and the
// gaps between them), then each word is mapped to GPT-2's byte alphabet. The GPT-2 and
// Llama-3 regexes use llama.cpp's hand-written matchers; the others run on this folder's
// regex engine over llama.cpp's "collapsed" text (one unit per code point, Unicode categories
// folded into single bytes) or over code points, exactly where llama.cpp uses std::regex or
// std::wregex.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace quanta::tokenizer {

enum class PreTokenizerType {
  kDefault,        // "default" or no tokenizer.ggml.pre
  kGpt2,           // "gpt-2", "phi-2", "mpt", "olmo", ...
  kLlama3,         // "llama3", "llama-bpe", ...
  kQwen2,          // "qwen2", "stablelm2", ...
  kFalcon,         // "falcon"
  kStarcoder,      // "starcoder", "refact", ...
  kDeepseekLlm,    // "deepseek-llm"
  kDeepseekCoder,  // "deepseek-coder"
};

// llama.cpp's per-pre-tokenizer settings.
struct PreTokenizerConfig {
  PreTokenizerType type = PreTokenizerType::kDefault;
  bool ignore_merges = false;  // a word that is itself a token skips the merges
  bool clean_spaces = true;    // detokenize applies clean_up_tokenization_spaces
  bool add_bos = false;        // default for tokenizer.ggml.add_bos_token
};

// Settings for a tokenizer.ggml.pre value ("" = absent). Throws quanta::Error naming the key
// for a pre-tokenizer this implementation does not know.
PreTokenizerConfig pre_tokenizer_config(const std::string& pre);

// The regex list llama.cpp applies for `type`, in its spelling (for tests that replay
// llama.cpp's std::regex splitting as an oracle).
std::vector<std::string> pre_tokenizer_regexes(PreTokenizerType type);

class PreTokenizer {
 public:
  explicit PreTokenizer(PreTokenizerType type);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // The words of `text`, each already mapped to the byte alphabet (invalid UTF-8 in `text`
  // has become U+FFFD first, as in llama.cpp).
  std::vector<std::string> split(std::string_view text) const;
  // The same split without the byte mapping (for tests): UTF-8 words.
  std::vector<std::string> split_words(std::string_view text) const;

  struct Step;  // one regex of the list; defined in pretokenize.cc

 private:
  std::vector<size_t> split_offsets(const std::vector<uint32_t>& cpts) const;

  std::vector<Step> steps_;
  bool needs_collapsed_ = false;
  bool needs_wide_ = false;
};

}  // namespace quanta::tokenizer
