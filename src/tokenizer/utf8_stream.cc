// Streaming UTF-8 sanitizer (see utf8_stream.h).
#include "tokenizer/utf8_stream.h"

#include <cstdint>

#include "core/error.h"

namespace quanta::tokenizer {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// For a lead byte: the number of continuation bytes and the allowed range of the first one
// (Unicode Table 3-7, well-formed UTF-8 byte sequences). need = -1: not a lead byte.
struct LeadInfo {
  int need;
  uint8_t lo;
  uint8_t hi;
};

LeadInfo lead_info(uint8_t b) {
  if (b >= 0xC2 && b <= 0xDF) return {1, 0x80, 0xBF};
  if (b == 0xE0) return {2, 0xA0, 0xBF};
  if (b == 0xED) return {2, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {2, 0x80, 0xBF};
  if (b == 0xF0) return {3, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {3, 0x80, 0xBF};
  if (b == 0xF4) return {3, 0x80, 0x8F};
  return {-1, 0, 0};
}

}  // namespace

size_t Utf8Stream::emit(std::string_view data, std::string& out) {
  size_t i = 0;
  while (i < data.size()) {
    const uint8_t b0 = static_cast<uint8_t>(data[i]);
    if (b0 < 0x80) {
      out.push_back(static_cast<char>(b0));
      i++;
      continue;
    }
    const LeadInfo info = lead_info(b0);
    if (info.need < 0) {
      out += kReplacement;
      i++;
      continue;
    }
    int k = 1;
    for (; k <= info.need; ++k) {
      if (i + k >= data.size()) return data.size() - i;  // incomplete: hold back
      const uint8_t b = static_cast<uint8_t>(data[i + k]);
      const uint8_t lo = k == 1 ? info.lo : 0x80;
      const uint8_t hi = k == 1 ? info.hi : 0xBF;
      if (b < lo || b > hi) break;
    }
    if (k <= info.need) {  // ill-formed: replace the lead byte only, resume after it
      out += kReplacement;
      i++;
      continue;
    }
    out.append(data.substr(i, info.need + 1));
    i += info.need + 1;
  }
  return 0;
}

void Utf8Stream::push(std::string_view bytes, std::string& out) {
  // The held bytes are a valid proper prefix of a sequence: extend it byte by byte (no
  // allocation), completing it or, at the first byte that does not fit, replacing each
  // held byte (the lead and its continuation bytes, none of which starts a sequence).
  while (n_pending_ > 0 && !bytes.empty()) {
    const LeadInfo info = lead_info(static_cast<uint8_t>(pending_[0]));
    const size_t k = n_pending_;  // index of the continuation byte wanted next
    const uint8_t b = static_cast<uint8_t>(bytes[0]);
    const uint8_t lo = k == 1 ? info.lo : 0x80;
    const uint8_t hi = k == 1 ? info.hi : 0xBF;
    if (b < lo || b > hi) {
      for (size_t i = 0; i < n_pending_; ++i) out += kReplacement;
      n_pending_ = 0;
      break;
    }
    pending_[n_pending_++] = static_cast<char>(b);
    bytes.remove_prefix(1);
    if (n_pending_ == static_cast<size_t>(info.need) + 1) {
      out.append(pending_, n_pending_);
      n_pending_ = 0;
    }
  }
  if (n_pending_ > 0) return;  // still incomplete: `bytes` was all consumed
  const size_t held = emit(bytes, out);
  QUANTA_ASSERT(held < sizeof(pending_));
  for (size_t i = 0; i < held; ++i) pending_[i] = bytes[bytes.size() - held + i];
  n_pending_ = held;
}

std::string Utf8Stream::push(std::string_view bytes) {
  std::string out;
  push(bytes, out);
  return out;
}

void Utf8Stream::flush(std::string& out) {
  for (size_t i = 0; i < n_pending_; ++i) out += kReplacement;
  n_pending_ = 0;
}

std::string Utf8Stream::flush() {
  std::string out;
  flush(out);
  return out;
}

std::string sanitize_utf8(std::string_view bytes) {
  Utf8Stream stream;
  std::string out = stream.push(bytes);
  stream.flush(out);
  return out;
}

}  // namespace quanta::tokenizer
