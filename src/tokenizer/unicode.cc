// Unicode helpers for the tokenizers (see unicode.h).
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace quanta::tokenizer {

uint8_t unicode_category(uint32_t cpt) {
  if (cpt > 0x10FFFF) return kCatUndefined;
  const uint32_t* begin = kUnicodeCategoryRanges;
  const uint32_t* end = kUnicodeCategoryRanges + kUnicodeCategoryRangeCount;
  // First entry whose start is greater than cpt; the one before it holds cpt.
  const uint32_t* it = std::upper_bound(
      begin, end, cpt, [](uint32_t c, uint32_t entry) { return c < (entry >> 8); });
  return static_cast<uint8_t>(it[-1] & 0xFF);
}

bool unicode_is_whitespace(uint32_t cpt) {
  // White_Space in PropList.txt (the set llama.cpp's gen-unicode-data.py hard-codes).
  if (cpt <= 0x20) return cpt == 0x20 || (cpt >= 0x09 && cpt <= 0x0D);
  switch (cpt) {
    case 0x0085:
    case 0x00A0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cpt >= 0x2000 && cpt <= 0x200A;
  }
}

size_t utf8_sequence_length(uint8_t lead) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

namespace {

bool is_continuation(const std::string_view text, size_t i) {
  return i < text.size() && (static_cast<uint8_t>(text[i]) & 0xC0) == 0x80;
}

// One code point at `offset` (advanced past it), or false for an invalid lead/continuation.
bool decode_one(std::string_view text, size_t& offset, uint32_t& cpt) {
  const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(text[i])); };
  const uint32_t b0 = byte(offset);
  if (!(b0 & 0x80)) {
    cpt = b0;
    offset += 1;
    return true;
  }
  if (!(b0 & 0x40)) return false;
  if (!(b0 & 0x20)) {
    if (!is_continuation(text, offset + 1)) return false;
    cpt = ((b0 & 0x1F) << 6) | (byte(offset + 1) & 0x3F);
    offset += 2;
    return true;
  }
  if (!(b0 & 0x10)) {
    if (!is_continuation(text, offset + 1) || !is_continuation(text, offset + 2)) return false;
    cpt = ((b0 & 0x0F) << 12) | ((byte(offset + 1) & 0x3F) << 6) | (byte(offset + 2) & 0x3F);
    offset += 3;
    return true;
  }
  if (!(b0 & 0x08)) {
    if (!is_continuation(text, offset + 1) || !is_continuation(text, offset + 2) ||
        !is_continuation(text, offset + 3)) {
      return false;
    }
    cpt = ((b0 & 0x07) << 18) | ((byte(offset + 1) & 0x3F) << 12) |
          ((byte(offset + 2) & 0x3F) << 6) | (byte(offset + 3) & 0x3F);
    offset += 4;
    // NOTE: llama.cpp would throw later when re-encoding such a value; we keep the
    // one-code-point-per-sequence count and substitute the replacement character.
    if (cpt > 0x10FFFF) cpt = kReplacementChar;
    return true;
  }
  return false;
}

struct ByteAlphabet {
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 324> cpt_to_byte;  // the alphabet's code points are all below 324
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet = [] {
    ByteAlphabet a;
    a.cpt_to_byte.fill(-1);
    std::array<uint32_t, 256> cpt_of{};
    std::array<bool, 256> printable{};
    for (int ch = 0x21; ch <= 0x7E; ++ch) printable[ch] = true;
    for (int ch = 0xA1; ch <= 0xAC; ++ch) printable[ch] = true;
    for (int ch = 0xAE; ch <= 0xFF; ++ch) printable[ch] = true;
    uint32_t next = 256;
    for (int ch = 0; ch < 256; ++ch) cpt_of[ch] = printable[ch] ? ch : next++;
    for (int ch = 0; ch < 256; ++ch) {
      append_utf8(cpt_of[ch], a.byte_to_utf8[ch]);
      a.cpt_to_byte[cpt_of[ch]] = static_cast<int16_t>(ch);
    }
    return a;
  }();
  return alphabet;
}

}  // namespace

std::vector<uint32_t> utf8_to_code_points(std::string_view text) {
  std::vector<uint32_t> cpts;
  cpts.reserve(text.size());
  size_t offset = 0;
  while (offset < text.size()) {
    uint32_t cpt = 0;
    if (decode_one(text, offset, cpt)) {
      cpts.push_back(cpt);
    } else {
      cpts.push_back(kReplacementChar);
      ++offset;
    }
  }
  return cpts;
}

void append_utf8(uint32_t cpt, std::string& out) {
  if (cpt <= 0x7F) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | ((cpt >> 6) & 0x1F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | ((cpt >> 12) & 0x0F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | ((cpt >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

const std::string& byte_to_unicode(uint8_t byte) {
  return byte_alphabet().byte_to_utf8[byte];
}

int unicode_to_byte(uint32_t cpt) {
  const auto& table = byte_alphabet().cpt_to_byte;
  return cpt < table.size() ? table[cpt] : -1;
}

}  // namespace quanta::tokenizer
