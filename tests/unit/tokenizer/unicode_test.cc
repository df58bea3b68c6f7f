// Unicode helpers: category table lookups, White_Space, llama.cpp-style UTF-8 decoding and
// the GPT-2 byte alphabet.
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace quanta::tokenizer {
namespace {

TEST(UnicodeTest, Categories) {
  EXPECT_EQ(unicode_category('a'), kCatLetter);
  EXPECT_EQ(unicode_category('7'), kCatNumber);
  EXPECT_EQ(unicode_category('!'), kCatPunctuation);
  EXPECT_EQ(unicode_category('~'), kCatSymbol);
  EXPECT_EQ(unicode_category(' '), kCatSeparator);
  EXPECT_EQ(unicode_category('\n'), kCatControl);
  EXPECT_EQ(unicode_category(0x0301), kCatMark);       // combining acute
  EXPECT_EQ(unicode_category(0x6211), kCatLetter);     // CJK
  EXPECT_EQ(unicode_category(0x2EBF0), kCatLetter);    // CJK Ext. I: Unicode 15.1
  EXPECT_EQ(unicode_category(0x31EF), kCatSymbol);     // new in 15.1
  EXPECT_EQ(unicode_category(0x0378), kCatUndefined);  // unassigned
  EXPECT_EQ(unicode_category(0xD800), kCatControl);    // surrogate (Cs)
  EXPECT_EQ(unicode_category(0x10FFFF), kCatUndefined);
  EXPECT_EQ(unicode_category(0x110000), kCatUndefined);
  EXPECT_EQ(unicode_category(0x1F601), kCatSymbol);
  EXPECT_EQ(unicode_category(0x00B2), kCatNumber);  // superscript two (No)
}

TEST(UnicodeTest, TableIsSortedAndCoversEverything) {
  ASSERT_GT(kUnicodeCategoryRangeCount, 1000u);
  EXPECT_EQ(kUnicodeCategoryRanges[0] >> 8, 0u);
  for (size_t i = 1; i < kUnicodeCategoryRangeCount; ++i) {
    ASSERT_LT(kUnicodeCategoryRanges[i - 1] >> 8, kUnicodeCategoryRanges[i] >> 8);
    const uint8_t flag = kUnicodeCategoryRanges[i] & 0xFF;
    ASSERT_TRUE(flag != 0 && (flag & (flag - 1)) == 0) << i;  // exactly one category
  }
}

TEST(UnicodeTest, Whitespace) {
  for (const uint32_t c : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u,
                           0x200Au, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u}) {
    EXPECT_TRUE(unicode_is_whitespace(c)) << c;
  }
  for (const uint32_t c : {0x08u, 0x1Cu, 0x1Fu, 0x200Bu, 0x180Eu, 0x61u}) {
    EXPECT_FALSE(unicode_is_whitespace(c)) << c;
  }
}

TEST(UnicodeTest, DecodesLikeLlamaCpp) {
  using Cpts = std::vector<uint32_t>;
  EXPECT_EQ(utf8_to_code_points("a\xC3\xA9\xE6\x88\x91\xF0\x9F\x98\x81"),
            (Cpts{'a', 0xE9, 0x6211, 0x1F601}));
  // Each byte that does not start a sequence with its continuation bytes becomes U+FFFD.
  EXPECT_EQ(utf8_to_code_points("\x80x\xE2\x82y\xF8"),
            (Cpts{0xFFFD, 'x', 0xFFFD, 0xFFFD, 'y', 0xFFFD}));
  EXPECT_EQ(utf8_to_code_points("\xC0\x80"), (Cpts{0}));  // overlong accepted, as llama.cpp
  std::string s;
  for (const uint32_t c : {0x41u, 0x3A9u, 0x20ACu, 0x10348u}) append_utf8(c, s);
  EXPECT_EQ(s, "A\xCE\xA9\xE2\x82\xAC\xF0\x90\x8D\x88");
}

TEST(UnicodeTest, ByteAlphabetIsABijection) {
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string& u = byte_to_unicode(static_cast<uint8_t>(b));
    ASSERT_TRUE(seen.insert(u).second);
    const std::vector<uint32_t> cpts = utf8_to_code_points(u);
    ASSERT_EQ(cpts.size(), 1u);
    EXPECT_EQ(unicode_to_byte(cpts[0]), b);
  }
  EXPECT_EQ(byte_to_unicode(' '), "\xC4\xA0");  // U+0120 'Ġ'
  EXPECT_EQ(byte_to_unicode('A'), "A");
  EXPECT_EQ(unicode_to_byte(0x4E00), -1);
}

}  // namespace
}  // namespace quanta::tokenizer
