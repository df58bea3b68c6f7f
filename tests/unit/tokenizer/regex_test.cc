// The backtracking regex engine against std::wregex (what llama.cpp's pre-tokenizers ran on):
// same leftmost match and length from every start position, on many patterns and random
// texts; plus parse errors.
#include "tokenizer/regex.h"

#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace quanta::tokenizer {
namespace {

std::vector<uint32_t> units(const std::string& utf8) {
  return utf8_to_code_points(utf8);
}

struct Found {
  bool found = false;
  size_t pos = 0;
  size_t len = 0;
  bool operator==(const Found& o) const {
    return found == o.found && (!found || (pos == o.pos && len == o.len));
  }
};

Found oracle(const std::wregex& re, const std::wstring& text, size_t from) {
  std::wsmatch m;
  const auto flags =
      from > 0 ? std::regex_constants::match_prev_avail : std::regex_constants::match_default;
  if (!std::regex_search(text.begin() + from, text.end(), m, re, flags)) return {};
  return {true, from + static_cast<size_t>(m.position(0)), static_cast<size_t>(m.length(0))};
}

Found ours(const Regex& re, const std::vector<uint32_t>& text, size_t from) {
  Found f;
  f.found = re.search(text.data(), 0, text.size(), from, f.pos, f.len);
  return f;
}

TEST(RegexTest, MatchesStdRegexOnRandomTexts) {
  const std::vector<std::string> patterns = {"a|ab",
                                             "ab|a",
                                             "(a|ab)(c|bcd)(d*)",
                                             "\\s+(?!\\S)|\\s+",
                                             "x*$",
                                             "(?:ab)+?c",
                                             "[^a-c\\s]+",
                                             "a{2,3}",
                                             "a{2,}b",
                                             "a{0,2}?b",
                                             "(?:a|b)*c",
                                             "(?=ab)a",
                                             "(?!a)\\w+",
                                             "^a",
                                             "b$",
                                             "[\\r\\n]+",
                                             " ?[^\\s\\w]+[\\r\\n]*",
                                             "\\s*[\\r\\n]+",
                                             "[\\x41-\\x43]+",
                                             "\\u00e9+",
                                             "(a*)*b",
                                             "(a|)+b",
                                             "[-a]+",
                                             "[a-]+",
                                             "\\d+\\D",
                                             "[\\]\\[]+",
                                             "a.c",
                                             "\\s?[a-d]+",
                                             "(?:'[sS]|'[tT])|[^\\r\\n\\w]?[a-z]+|\\d{1,3}| "
                                             "?[^\\s\\w]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                                             "\\s+$",
                                             "[é-ë]+"};
  const std::u32string alphabet = U"ab cd\r\n x\t-[]é1'Ss.\u00EB";
  std::mt19937 rng(1234);
  int checked = 0;
  for (const std::string& p : patterns) {
    const std::vector<uint32_t> pu = units(p);
    const std::wstring wp(pu.begin(), pu.end());
    const std::wregex expected(wp, std::regex_constants::ECMAScript);
    const Regex actual(pu);
    for (int t = 0; t < 300; ++t) {
      const size_t len = rng() % 14;
      std::wstring wtext;
      std::vector<uint32_t> text;
      for (size_t i = 0; i < len; ++i) {
        const uint32_t c = alphabet[rng() % alphabet.size()];
        wtext.push_back(static_cast<wchar_t>(c));
        text.push_back(c);
      }
      for (size_t from = 0; from < len; ++from) {
        const Found e = oracle(expected, wtext, from);
        const Found a = ours(actual, text, from);
        ASSERT_EQ(a, e) << "pattern '" << p << "' from " << from << " found " << a.found << " at "
                        << a.pos << "+" << a.len << ", std::regex " << e.found << " at " << e.pos
                        << "+" << e.len;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10000);
}

TEST(RegexTest, MatchAtIsAnchoredAndRespectsBounds) {
  const Regex re(units("[a-z]+$"));
  const std::vector<uint32_t> text = units("ab cd ef");
  EXPECT_EQ(re.match_at(text.data(), 0, text.size(), 0), -1);  // "ab" is not at the end
  EXPECT_EQ(re.match_at(text.data(), 0, text.size(), 6), 2);
  EXPECT_EQ(re.match_at(text.data(), 0, 5, 3), 2);  // '$' at the fragment end
}

TEST(RegexTest, RejectsMalformedPatterns) {
  for (const char* bad :
       {"(a", "a)", "[a", "*a", "a{3,2}", "[z-a]", "\\p{L}", "\\1", "a{", "(?<x>a)"}) {
    EXPECT_THROW(Regex{units(bad)}, Error) << bad;
  }
}

}  // namespace
}  // namespace quanta::tokenizer
