// The BPE pre-tokenizers against an oracle that replays llama.cpp's unicode_regex_split with
// std::regex / std::wregex (the engines llama.cpp ran) for every regex of the list, on the
// golden test strings, hand-written cases and random mixed-script text; plus a few splits
// written out by hand.
#include "tokenizer/pretokenize.h"

#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <string>
#include <vector>

#include "core/error.h"
#include "testlib/shared_data.h"
#include "tokenizer/unicode.h"
#include "unit/tokenizer/golden_files.h"

namespace quanta::tokenizer {
namespace {

bool has_category_escape(const std::string& re) {
  for (const char* cat : {"\\p{N}", "\\p{L}", "\\p{P}", "\\p{M}", "\\p{S}"}) {
    if (re.find(cat) != std::string::npos) return true;
  }
  return false;
}

// llama.cpp's collapsed stand-in for one code point.
char collapse(uint32_t c) {
  if (c < 128) return static_cast<char>(c);
  if (unicode_is_whitespace(c)) return 0x0B;
  switch (unicode_category(c)) {
    case kCatNumber:
      return static_cast<char>(0xD1);
    case kCatLetter:
      return static_cast<char>(0xD2);
    case kCatPunctuation:
      return static_cast<char>(0xD3);
    case kCatMark:
      return static_cast<char>(0xD4);
    case kCatSymbol:
      return static_cast<char>(0xD5);
    default:
      return static_cast<char>(0xD0);
  }
}

// llama.cpp's rewrite of \p{X} for the collapsed text.
std::string collapse_pattern(const std::string& re) {
  const auto members = [](char cat) -> std::string {
    switch (cat) {
      case 'N':
        return "\xD1\x30-\x39";
      case 'L':
        return "\xD2\x41-\x5A\x61-\x7A";
      case 'P':
        return "\xD3\x21-\x23\x25-\x2A\x2C-\x2F\x3A-\x3B\x3F-\x40\\\x5B-\\\x5D\x5F\\\x7B\\\x7D";
      case 'M':
        return "\xD4";
      default:
        return "\xD5\\\x24\\\x2B\x3C-\x3E\x5E\x60\\\x7C";
    }
  };
  std::string out;
  bool inside = false;
  for (size_t i = 0; i < re.size(); ++i) {
    if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) {
      inside = true;
    } else if (inside && re[i] == ']' && re[i - 1] != '\\') {
      inside = false;
    } else if (re.compare(i, 3, "\\p{") == 0 && i + 4 < re.size() && re[i + 4] == '}') {
      out += inside ? members(re[i + 3]) : "[" + members(re[i + 3]) + "]";
      i += 4;
      continue;
    }
    out += re[i];
  }
  return out;
}

template <typename CharT>
std::vector<size_t> split_stl(const std::basic_string<CharT>& text,
                              const std::basic_regex<CharT>& re,
                              const std::vector<size_t>& offsets) {
  std::vector<size_t> out;
  size_t start = 0;
  for (const size_t len : offsets) {
    std::regex_iterator<const CharT*> it(text.data() + start, text.data() + start + len, re);
    size_t prev = 0;
    for (; it != std::regex_iterator<const CharT*>(); ++it) {
      const size_t pos = static_cast<size_t>(it->position(0));
      if (pos > prev) out.push_back(pos - prev);
      out.push_back(static_cast<size_t>(it->length(0)));
      prev = pos + static_cast<size_t>(it->length(0));
    }
    if (len > prev) out.push_back(len - prev);
    start += len;
  }
  return out;
}

// llama.cpp's unicode_regex_split with std::regex (collapsed text) / std::wregex.
class Oracle {
 public:
  explicit Oracle(const std::vector<std::string>& regexes) {
    const auto flags = std::regex_constants::optimize | std::regex_constants::nosubs;
    for (const std::string& re : regexes) {
      Step& step = steps_.emplace_back();
      step.collapsed = has_category_escape(re);
      if (step.collapsed) {
        step.narrow = std::regex(collapse_pattern(re), flags);
      } else {
        const std::vector<uint32_t> p = utf8_to_code_points(re);
        step.wide = std::wregex(std::wstring(p.begin(), p.end()), flags);
      }
    }
  }

  std::vector<std::string> split(const std::string& text) const {
    const std::vector<uint32_t> cpts = utf8_to_code_points(text);
    std::string collapsed;
    std::wstring wide;
    for (const uint32_t c : cpts) {
      collapsed += collapse(c);
      wide += static_cast<wchar_t>(c > 0x7F && unicode_is_whitespace(c) ? 0x0B : c);
    }
    std::vector<size_t> offsets = {cpts.size()};
    for (const Step& step : steps_) {
      offsets = step.collapsed ? split_stl(collapsed, step.narrow, offsets)
                               : split_stl(wide, step.wide, offsets);
    }
    std::vector<std::string> words;
    size_t start = 0;
    for (const size_t len : offsets) {
      std::string& w = words.emplace_back();
      for (size_t i = start; i < start + len; ++i) append_utf8(cpts[i], w);
      start += len;
    }
    return words;
  }

 private:
  struct Step {
    bool collapsed = false;
    std::regex narrow;
    std::wregex wide;
  };
  std::vector<Step> steps_;
};

std::vector<std::string> corpus() {
  std::vector<std::string> texts = {"Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
                                    "  leading and trailing  ",
                                    "\t\n \r\n\r\n  x",
                                    "It's 'quoted' -- I'LL we'RE they've",
                                    "3.14159 + 2,718 = 12345678",
                                    "naïve café — Ünïcödé\u00A0nbsp\u3000ideo",
                                    "e\u0301\u0301 marks \u0378 undefined \u2028 sep",
                                    "(a) [b] {c} <d> $e ^f |g `h ~i",
                                    "line1\nline2\r\nline3\n\n\n",
                                    "\xFF\xFE invalid \xC3 bytes \xE2\x82",
                                    ""};
  for (const char* vocab : testing::kGoldenVocabs) {
    const std::string path =
        testlib::shared_path(std::string("golden/tokenizer/ggml-vocab-") + vocab + ".gguf.inp");
    for (std::string& t : testing::split_inputs(testlib::read_file(path))) texts.push_back(t);
  }
  // Random text over an alphabet mixing every category the regexes distinguish.
  const std::u32string alphabet =
      U"aZq 09 \t\r\n'sSltR.,!?-$+<=>^~|`_\\[]{}()\"#%&*/:;@\u00E9\u00DF\u0416\u6211\uAC00"
      U"\u0661\u00B2\u2167\u0301\u20AC\u00A9\U0001F601\uFF5E\u3002\u00A0\u3000\u2028\u0085"
      U"\u0378\u200B\u00B5\u1F7D\U00010400\u212A";
  std::mt19937 rng(7);
  for (int i = 0; i < 1500; ++i) {
    std::string t;
    const size_t len = rng() % 40;
    for (size_t k = 0; k < len; ++k) append_utf8(alphabet[rng() % alphabet.size()], t);
    texts.push_back(t);
  }
  return texts;
}

class PreTokenizerOracleTest : public ::testing::TestWithParam<PreTokenizerType> {};

TEST_P(PreTokenizerOracleTest, SplitsLikeLlamaCppsStdRegex) {
  const PreTokenizer pre(GetParam());
  const Oracle oracle(pre_tokenizer_regexes(GetParam()));
  for (const std::string& text : corpus()) {
    ASSERT_EQ(pre.split_words(text), oracle.split(text)) << "text: '" << text << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(Types, PreTokenizerOracleTest,
                         ::testing::Values(PreTokenizerType::kDefault, PreTokenizerType::kGpt2,
                                           PreTokenizerType::kLlama3, PreTokenizerType::kQwen2,
                                           PreTokenizerType::kFalcon, PreTokenizerType::kStarcoder,
                                           PreTokenizerType::kDeepseekLlm,
                                           PreTokenizerType::kDeepseekCoder));

using Words = std::vector<std::string>;

TEST(PreTokenizerTest, HandWrittenSplits) {
  const std::string text = "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～";
  EXPECT_EQ(PreTokenizer(PreTokenizerType::kLlama3).split_words(text),
            (Words{"Hello", ",", " y", "'all", "!", " How", " are", " you", " 😁", " ?",
                   "我想在apple工作", "131", "415", "1", "天", "～"}));
  EXPECT_EQ(PreTokenizer(PreTokenizerType::kQwen2).split_words(text),
            (Words{"Hello",           ",", " y", "'all", "!", " How", " are", " you", " 😁", " ?",
                   "我想在apple工作", "1", "3",  "1",    "4", "1",    "5",    "1",    "天", "～"}));
  EXPECT_EQ(PreTokenizer(PreTokenizerType::kGpt2).split_words("I'm  here\n\n 42x"),
            (Words{"I", "'m", " ", " here", "\n\n", " 42", "x"}));
}

TEST(PreTokenizerTest, WordsAreByteEncoded) {
  // GPT-2's alphabet: space -> U+0120 'Ġ', newline -> U+010A 'Ċ'.
  EXPECT_EQ(PreTokenizer(PreTokenizerType::kGpt2).split(" a\n"), (Words{"\u0120a", "\u010A"}));
}

TEST(PreTokenizerTest, ConfigFollowsLlamaCpp) {
  EXPECT_TRUE(pre_tokenizer_config("llama-bpe").ignore_merges);
  EXPECT_TRUE(pre_tokenizer_config("llama3").add_bos);
  EXPECT_FALSE(pre_tokenizer_config("gpt-2").add_bos);
  EXPECT_FALSE(pre_tokenizer_config("qwen2").clean_spaces);
  EXPECT_TRUE(pre_tokenizer_config("").clean_spaces);
  EXPECT_EQ(pre_tokenizer_config("default").type, PreTokenizerType::kDefault);
  EXPECT_THROW(pre_tokenizer_config("no-such-pre"), Error);
}

}  // namespace
}  // namespace quanta::tokenizer
