// Utf8Stream: complete characters pass through, split ones are held until complete, invalid
// bytes become U+FFFD one per byte, and flush ends a truncated tail.
#include "tokenizer/utf8_stream.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace quanta::tokenizer {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8StreamTest, PassesValidTextThrough) {
  Utf8Stream s;
  EXPECT_EQ(s.push("plain ascii"), "plain ascii");
  EXPECT_EQ(s.push("caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x99\x82"),
            "caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x99\x82");
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_EQ(s.flush(), "");
}

TEST(Utf8StreamTest, HoldsSplitCharactersUntilComplete) {
  Utf8Stream s;
  // U+1F642 split over four pushes, U+00E9 over two.
  EXPECT_EQ(s.push("a\xF0"), "a");
  EXPECT_EQ(s.pending(), 1u);
  EXPECT_EQ(s.push("\x9F"), "");
  EXPECT_EQ(s.push("\x99"), "");
  EXPECT_EQ(s.pending(), 3u);
  EXPECT_EQ(s.push("\x82!"), "\xF0\x9F\x99\x82!");
  EXPECT_EQ(s.push("\xC3"), "");
  EXPECT_EQ(s.push("\xA9"), "\xC3\xA9");
  EXPECT_EQ(s.pending(), 0u);
}

TEST(Utf8StreamTest, ReplacesEachInvalidByte) {
  Utf8Stream s;
  EXPECT_EQ(s.push("\x80x"), kFffd + "x");                   // stray continuation
  EXPECT_EQ(s.push("\xC0\xAF"), kFffd + kFffd);              // overlong lead + continuation
  EXPECT_EQ(s.push("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogate U+D800
  EXPECT_EQ(s.push("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // above U+10FFFF
  EXPECT_EQ(s.push("\xF8\xFF"), kFffd + kFffd);                          // never valid
  // A truncated sequence followed by a non-continuation: each of its bytes is replaced.
  EXPECT_EQ(s.push("\xE1\xBD u"), kFffd + kFffd + " u");
  EXPECT_EQ(s.push("\xE0\xA4"), "");
  EXPECT_EQ(s.push("1"), kFffd + kFffd + "1");
}

TEST(Utf8StreamTest, FlushReplacesTheHeldTail) {
  Utf8Stream s;
  std::string out;
  s.push("ok\xE2\x82", out);
  EXPECT_EQ(out, "ok");
  s.flush(out);
  EXPECT_EQ(out, "ok" + kFffd + kFffd);
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_EQ(s.push("\xE2\x82\xAC"), "\xE2\x82\xAC");  // reusable after flush
}

TEST(Utf8StreamTest, SanitizeWholeString) {
  EXPECT_EQ(sanitize_utf8("a\xFF"
                          "b\xC3"),
            "a" + kFffd + "b" + kFffd);
  EXPECT_EQ(sanitize_utf8(""), "");
}

// Reference: at each position take the one well-formed sequence that starts there (checked
// by decoding: minimal length, no surrogates, at most U+10FFFF), else one U+FFFD.
std::string reference_sanitize(const std::string& b) {
  std::string out;
  size_t i = 0;
  while (i < b.size()) {
    const auto u = [&](size_t k) { return static_cast<uint8_t>(b[k]); };
    size_t len = u(i) < 0x80       ? 1
                 : u(i) >> 5 == 6  ? 2
                 : u(i) >> 4 == 14 ? 3
                 : u(i) >> 3 == 30 ? 4
                                   : 0;
    bool ok = len > 0 && i + len <= b.size();
    uint32_t cpt = len == 1 ? u(i) : len == 2 ? u(i) & 0x1F : len == 3 ? u(i) & 0x0F : u(i) & 0x07;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (u(i + k) & 0xC0) == 0x80;
      cpt = (cpt << 6) | (u(i + k) & 0x3F);
    }
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cpt >= kMin[len] && cpt <= 0x10FFFF && !(cpt >= 0xD800 && cpt <= 0xDFFF);
    if (ok) {
      out.append(b, i, len);
      i += len;
    } else {
      out += kFffd;
      i++;
    }
  }
  return out;
}

TEST(Utf8StreamTest, AnyChunkingGivesTheReferenceResult) {
  std::mt19937 rng(99);
  const std::string pool[] = {
      "a",        " ",    "\xC3\xA9", "\xE6\x88\x91", "\xF0\x9F\x98\x81", "\x80",     "\xBF",
      "\xC0",     "\xC2", "\xE0",     "\xE0\xA0",     "\xED\xA0",         "\xF0\x90", "\xF4\x8F",
      "\xF4\x90", "\xF5", "\xFF",     "\xE1\xBD"};
  for (int t = 0; t < 3000; ++t) {
    std::string bytes;
    for (int k = rng() % 12; k > 0; --k) bytes += pool[rng() % std::size(pool)];
    Utf8Stream s;
    std::string out;
    for (size_t pos = 0; pos < bytes.size();) {
      const size_t n = std::min(bytes.size() - pos, static_cast<size_t>(rng() % 5));
      s.push(std::string_view(bytes).substr(pos, n), out);
      pos += n;
    }
    s.flush(out);
    const std::string expected = reference_sanitize(bytes);
    ASSERT_EQ(out, expected) << "case " << t;
    ASSERT_EQ(sanitize_utf8(bytes), expected) << "case " << t;
  }
}

}  // namespace
}  // namespace quanta::tokenizer
