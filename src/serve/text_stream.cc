// UTF-8 assembly and stop-string hold-back for streamed choices.
#include "serve/text_stream.h"

#include <algorithm>
#include <cstdint>

namespace quanta::serve {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool is_continuation(uint8_t b) {
  return (b & 0xC0) == 0x80;
}

}  // namespace

int utf8_sequence_length(std::string_view s) {
  const auto b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) return 1;
  int len = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629 table)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    return -1;
  }
  for (int i = 1; i < len; ++i) {
    if (static_cast<size_t>(i) >= s.size()) return 0;
    const auto b = static_cast<uint8_t>(s[i]);
    if (i == 1 ? (b < lo || b > hi) : !is_continuation(b)) return -1;
  }
  return len;
}

TextStream::TextStream(const std::vector<std::string>* stop) : stop_(stop) {}

void TextStream::decode(std::string_view piece) {
  tail_.append(piece);
  std::string_view rest = tail_;
  while (!rest.empty()) {
    const int len = utf8_sequence_length(rest);
    if (len == 0) break;  // incomplete: wait for more bytes
    if (len < 0) {
      held_.append(kReplacement);
      rest.remove_prefix(1);
    } else {
      held_.append(rest.substr(0, len));
      rest.remove_prefix(len);
    }
  }
  tail_.erase(0, tail_.size() - rest.size());
}

void TextStream::release(std::string& out) {
  size_t keep = 0;  // longest suffix of held_ that is a proper prefix of a stop string
  if (stop_ != nullptr) {
    for (const std::string& s : *stop_) {
      const size_t max_len = std::min(s.size() - (s.empty() ? 0 : 1), held_.size());
      for (size_t len = max_len; len > keep; --len) {
        if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
          keep = len;
          break;
        }
      }
    }
  }
  out.append(held_, 0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
}

bool TextStream::push(std::string_view piece, std::string& out) {
  if (stopped_) return true;
  decode(piece);
  if (stop_ != nullptr) {
    size_t first = std::string::npos;  // earliest match of any stop string
    for (const std::string& s : *stop_) {
      if (s.empty()) continue;
      first = std::min(first, held_.find(s));
    }
    if (first != std::string::npos) {
      out.append(held_, 0, first);
      held_.clear();
      tail_.clear();
      stopped_ = true;
      return true;
    }
  }
  release(out);
  return false;
}

void TextStream::flush(std::string& out) {
  if (stopped_) return;
  out.append(held_);
  held_.clear();
  if (!tail_.empty()) out.append(kReplacement);
  tail_.clear();
}

}  // namespace quanta::serve
