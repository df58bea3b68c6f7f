// Streaming UTF-8 sanitizer for detokenized output: token pieces arrive as arbitrary byte
// chunks (a character may be split across tokens, byte-fallback tokens may be invalid); it
// emits only complete, valid UTF-8, holds back an incomplete trailing sequence until more
// bytes arrive, and replaces invalid bytes with U+FFFD: every byte that does not start a
// well-formed sequence (Unicode Table 3-7: no overlongs, surrogates or values above U+10FFFF)
// becomes one U+FFFD and decoding resumes at the next byte. That is llama.cpp's own decoding
// rule (unicode_cpts_from_utf8), and how the golden greedy_text shows invalid bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace quanta::tokenizer {

class Utf8Stream {
 public:
  // Appends to `out` what can be emitted after `bytes` (no allocation beyond `out`'s).
  void push(std::string_view bytes, std::string& out);
  std::string push(std::string_view bytes);
  // Ends the stream: each byte of an incomplete held sequence becomes U+FFFD. Reusable after.
  void flush(std::string& out);
  std::string flush();
  // Bytes held back (0..3).
  size_t pending() const { return n_pending_; }

 private:
  // Emits `data` (nothing held before it); returns how many trailing bytes form an
  // incomplete sequence.
  size_t emit(std::string_view data, std::string& out);

  char pending_[4] = {};
  size_t n_pending_ = 0;
};

// Whole-string form: every invalid sequence (including a truncated end) becomes U+FFFD.
std::string sanitize_utf8(std::string_view bytes);

}  // namespace quanta::tokenizer
