// BPE pre-tokenizers (see pretokenize.h): the regex lists of llama.cpp's llm_tokenizer_bpe,
// its hand-written GPT-2 / Llama-3 matchers, and its category-collapsing regex fallback.
#include "tokenizer/pretokenize.h"

#include <utility>

#include "core/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace quanta::tokenizer {

namespace {

enum class StepKind { kGpt2, kLlama3, kCollapsed, kWide };

// llama.cpp's GPT-2 regex; a step with exactly this text uses the hand-written matcher.
constexpr const char* kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr const char* kLlama3Regex =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Regex =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kCjkRegex = "[一-龥ࠀ-一가-퟿]+";
// NOTE: the class lists the cased letters (Lu/Ll/Lt) as in DeepSeek's tokenizer.json; code
// points that Unicode normalization would fold into others (U+1F7D, U+1FBE, U+1FD3, U+1FDB,
// U+2126, U+212A) are written as escapes so that no editor can change them.
// clang-format off
constexpr const char* kDeepseekLlmLetters =
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ"
    "-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1F7Dᾀ-ᾴᾶ-ᾼ"
    "\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A"
    "-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰"
    "-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
// clang-format on
constexpr const char* kDeepseekLlmPunct = "\\s?[!-/:-~！-／：-～‘-‟　-。]+";

}  // namespace

// The regex list llama.cpp's llm_tokenizer_bpe uses for each pre-tokenizer.
std::vector<std::string> pre_tokenizer_regexes(PreTokenizerType type) {
  switch (type) {
    case PreTokenizerType::kDefault:
      return {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2Regex, "\\p{N}+", "[0-9][0-9][0-9]"};
    case PreTokenizerType::kGpt2:
      return {kGpt2Regex};
    case PreTokenizerType::kLlama3:
      return {kLlama3Regex};
    case PreTokenizerType::kQwen2:
      return {kQwen2Regex};
    case PreTokenizerType::kFalcon:
      return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2Regex, "[0-9][0-9][0-9]"};
    case PreTokenizerType::kStarcoder:
      return {"\\p{N}", kGpt2Regex};
    case PreTokenizerType::kDeepseekLlm:
      return {"[\r\n]", kDeepseekLlmLetters, kDeepseekLlmPunct, "\\s+$", kCjkRegex, "\\p{N}+"};
    case PreTokenizerType::kDeepseekCoder:
      return {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", kCjkRegex, "\\p{N}"};
  }
  QUANTA_ASSERT(false);
  return {};
}

namespace {

// The collapsed stand-ins for non-ASCII code points of each category (llama.cpp's values).
constexpr uint32_t kCollapsedOther = 0xD0;
constexpr uint32_t kCollapsedWhitespace = 0x0B;

uint32_t collapsed_unit(uint8_t category) {
  switch (category) {
    case kCatNumber:
      return 0xD1;
    case kCatLetter:
      return 0xD2;
    case kCatPunctuation:
      return 0xD3;
    case kCatMark:
      return 0xD4;
    case kCatSymbol:
      return 0xD5;
    default:
      return kCollapsedOther;
  }
}

// ASCII members of each category, as llama.cpp's k_ucat_map writes them into a class
// (NOTE: its symbol list lacks '~', which we keep for identical splits).
const char* ascii_members(uint8_t category) {
  switch (category) {
    case kCatNumber:
      return "\x30-\x39";
    case kCatLetter:
      return "\x41-\x5A\x61-\x7A";
    case kCatPunctuation:
      return "\x21-\x23\x25-\x2A\x2C-\x2F\x3A-\x3B\x3F-\x40\\\x5B-\\\x5D\x5F\\\x7B\\\x7D";
    case kCatSymbol:
      return "\\\x24\\\x2B\x3C-\x3E\x5E\x60\\\x7C";
    default:
      return "";
  }
}

// \p{X} name -> category, for the names llama.cpp collapses.
uint8_t category_of_name(char name) {
  switch (name) {
    case 'N':
      return kCatNumber;
    case 'L':
      return kCatLetter;
    case 'P':
      return kCatPunctuation;
    case 'M':
      return kCatMark;
    case 'S':
      return kCatSymbol;
    default:
      return 0;
  }
}

bool uses_categories(const std::string& regex) {
  for (size_t i = 0; i + 4 < regex.size(); ++i) {
    if (regex[i] == '\\' && regex[i + 1] == 'p' && regex[i + 2] == '{' && regex[i + 4] == '}' &&
        category_of_name(regex[i + 3]) != 0) {
      return true;
    }
  }
  return false;
}

// llama.cpp's rewrite of a regex for the collapsed text: each \p{X} becomes the category's
// stand-in unit plus its ASCII members (inside brackets when not already in a class).
std::vector<uint32_t> collapse_regex(const std::string& regex) {
  std::string out;
  bool inside = false;
  for (size_t i = 0; i < regex.size(); ++i) {
    const char c = regex[i];
    if (static_cast<uint8_t>(c) >= 0x80) quanta::fail("regex mixes \\p{..} and non-ASCII");
    if (c == '[' && (i == 0 || regex[i - 1] != '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && c == ']' && regex[i - 1] != '\\') {
      out += ']';
      inside = false;
      continue;
    }
    if (c == '\\' && i + 4 < regex.size() && regex[i + 1] == 'p' && regex[i + 2] == '{' &&
        regex[i + 4] == '}' && category_of_name(regex[i + 3]) != 0) {
      const uint8_t category = category_of_name(regex[i + 3]);
      if (!inside) out += '[';
      out += static_cast<char>(collapsed_unit(category));
      out += ascii_members(category);
      if (!inside) out += ']';
      i += 4;
      continue;
    }
    out += c;
  }
  std::vector<uint32_t> units;
  for (const char c : out) units.push_back(static_cast<uint8_t>(c));
  return units;
}

}  // namespace

struct PreTokenizer::Step {
  StepKind kind;
  std::unique_ptr<Regex> regex;  // kCollapsed / kWide
};

namespace {

// Per-fragment view used by the hand-written matchers: positions outside [ini, end) read as
// "out of range" (no code point, no flags), as llama.cpp's _get_cpt/_get_flags.
class Fragment {
 public:
  static constexpr uint32_t kOutOfRange = 0xFFFFFFFF;
  struct Flags {
    uint8_t category = 0;  // 0 when out of range
    bool whitespace = false;
    bool in_range() const { return category != 0; }
    bool letter() const { return category & kCatLetter; }
    bool number() const { return category & kCatNumber; }
  };

  Fragment(const std::vector<uint32_t>& cpts, size_t ini, size_t end, std::vector<size_t>& out)
      : cpts_(cpts), ini_(ini), end_(end), prev_end_(ini), out_(out) {}

  uint32_t cpt(size_t pos) const { return pos >= ini_ && pos < end_ ? cpts_[pos] : kOutOfRange; }
  Flags flags(size_t pos) const {
    if (pos < ini_ || pos >= end_) return {};
    return {unicode_category(cpts_[pos]), unicode_is_whitespace(cpts_[pos])};
  }
  // Ends the current word at `end`; returns its length (words of length 0 are dropped).
  size_t add(size_t end) {
    const size_t len = end - prev_end_;
    if (len > 0) out_.push_back(len);
    prev_end_ = end;
    return len;
  }
  size_t ini() const { return ini_; }
  size_t end() const { return end_; }

 private:
  const std::vector<uint32_t>& cpts_;
  size_t ini_;
  size_t end_;
  size_t prev_end_;
  std::vector<size_t>& out_;
};

bool is_punct_like(const Fragment::Flags& f) {
  return !(f.whitespace || f.letter() || f.number()) && f.in_range();
}

uint32_t ascii_lower(uint32_t c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

// 's|'t|'re|'ve|'m|'ll|'d (case-insensitively when `fold_case`): length matched at pos, or 0.
size_t contraction_at(const Fragment& f, size_t pos, bool fold_case) {
  if (f.cpt(pos) != '\'' || pos + 1 >= f.end()) return 0;
  const uint32_t c1 = fold_case ? ascii_lower(f.cpt(pos + 1)) : f.cpt(pos + 1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (pos + 2 >= f.end()) return 0;
  const uint32_t c2 = fold_case ? ascii_lower(f.cpt(pos + 2)) : f.cpt(pos + 2);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

// The last alternatives of both regexes at `pos`: "\s*[\r\n]+" (Llama-3 only, when
// `newline_runs`), "\s+(?!\S)", "\s+"; when none matches, the single code point at `pos`.
// Ends the word and advances `pos`.
void whitespace_or_one(Fragment& f, size_t& pos, bool newline_runs) {
  size_t num_whitespaces = 0;
  size_t last_end_r_or_n = 0;
  while (f.flags(pos + num_whitespaces).whitespace) {
    const uint32_t c = f.cpt(pos + num_whitespaces);
    if (c == '\r' || c == '\n') last_end_r_or_n = pos + num_whitespaces + 1;
    num_whitespaces++;
  }
  if (newline_runs && last_end_r_or_n > 0) {
    pos = last_end_r_or_n;
  } else if (num_whitespaces > 1 && f.cpt(pos + num_whitespaces) != Fragment::kOutOfRange) {
    pos += num_whitespaces - 1;  // \s+(?!\S): the last space goes with the next word
  } else if (num_whitespaces > 0) {
    pos += num_whitespaces;
  } else {
    ++pos;
  }
  f.add(pos);
}

// llama.cpp's unicode_regex_split_custom_gpt2 on one fragment.
void split_gpt2(Fragment&& f) {
  for (size_t pos = f.ini(); pos < f.end();) {
    const uint32_t cpt = f.cpt(pos);
    if (const size_t n = contraction_at(f, pos, /*fold_case=*/false)) {
      pos += f.add(pos + n);
      continue;
    }
    auto flags2 = cpt == ' ' ? f.flags(pos + 1) : f.flags(pos);
    if (flags2.letter() || flags2.number() || is_punct_like(flags2)) {
      // " ?\p{L}+", " ?\p{N}+" or " ?[^\s\p{L}\p{N}]+": one run of the same class.
      const bool letter = flags2.letter();
      const bool number = !letter && flags2.number();
      const auto same = [&](const Fragment::Flags& g) {
        return letter ? g.letter() : number ? g.number() : is_punct_like(g);
      };
      pos += (cpt == ' ');
      while (same(flags2)) flags2 = f.flags(++pos);
      f.add(pos);
      continue;
    }
    whitespace_or_one(f, pos, /*newline_runs=*/false);
  }
}

// llama.cpp's unicode_regex_split_custom_llama3 on one fragment.
void split_llama3(Fragment&& f) {
  for (size_t pos = f.ini(); pos < f.end();) {
    const uint32_t cpt = f.cpt(pos);
    const auto flags = f.flags(pos);
    if (const size_t n = contraction_at(f, pos, /*fold_case=*/true)) {
      pos += f.add(pos + n);
      continue;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(cpt == '\r' || cpt == '\n' || flags.number())) {
      if (flags.letter() || f.flags(pos + 1).letter()) {
        pos++;
        while (f.flags(pos).letter()) pos++;
        f.add(pos);
        continue;
      }
    }
    // \p{N}{1,3}
    if (flags.number()) {
      size_t ini = pos;
      while (f.flags(pos).number()) {
        if (++pos - ini >= 3) {
          f.add(pos);
          ini = pos;
        }
      }
      f.add(pos);
      continue;
    }
    // " ?[^\s\p{L}\p{N}]+[\r\n]*" (llama.cpp tests the first code point's range, not flags2's)
    auto flags2 = cpt == ' ' ? f.flags(pos + 1) : flags;
    if (!(flags2.whitespace || flags2.letter() || flags2.number()) && flags.in_range()) {
      pos += (cpt == ' ');
      while (is_punct_like(flags2)) flags2 = f.flags(++pos);
      uint32_t cpt2 = f.cpt(pos);
      while (cpt2 == '\r' || cpt2 == '\n') cpt2 = f.cpt(++pos);
      f.add(pos);
      continue;
    }
    whitespace_or_one(f, pos, /*newline_runs=*/true);
  }
}

// One regex over every fragment: matches and the gaps between them become fragments.
void split_regex(const Regex& regex, const std::vector<uint32_t>& units, size_t ini, size_t end,
                 std::vector<size_t>& out) {
  size_t prev = ini;
  size_t from = ini;
  size_t match_pos = 0;
  size_t match_len = 0;
  while (from < end && regex.search(units.data(), ini, end, from, match_pos, match_len)) {
    if (match_len == 0) {  // the regexes used here never match empty; skip such a match
      from = match_pos + 1;
      continue;
    }
    if (match_pos > prev) out.push_back(match_pos - prev);
    out.push_back(match_len);
    prev = from = match_pos + match_len;
  }
  if (end > prev) out.push_back(end - prev);
}

std::vector<uint32_t> decode_pattern(const std::string& regex) {
  std::vector<uint32_t> units = utf8_to_code_points(regex);
  for (const uint32_t u : units) QUANTA_ASSERT(u != kReplacementChar);
  return units;
}

}  // namespace

PreTokenizerConfig pre_tokenizer_config(const std::string& pre) {
  PreTokenizerConfig c;
  const auto is = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      if (pre == n) return true;
    }
    return false;
  };
  if (is({"", "default"})) {
    c.type = PreTokenizerType::kDefault;
  } else if (is({"llama3", "llama-v3", "llama-bpe", "falcon3"})) {
    c.type = PreTokenizerType::kLlama3;
    c.ignore_merges = true;
    c.add_bos = true;
  } else if (is({"deepseek-llm"})) {
    c.type = PreTokenizerType::kDeepseekLlm;
    c.clean_spaces = false;
  } else if (is({"deepseek-coder"})) {
    c.type = PreTokenizerType::kDeepseekCoder;
    c.clean_spaces = false;
  } else if (is({"falcon"})) {
    c.type = PreTokenizerType::kFalcon;
  } else if (is({"gpt-2", "phi-2", "mpt", "olmo", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de",
                 "gigachat"})) {
    c.type = PreTokenizerType::kGpt2;
  } else if (is({"starcoder", "refact", "codeshell", "exaone", "minerva-7b"})) {
    c.type = PreTokenizerType::kStarcoder;
  } else if (is({"command-r", "smollm"})) {
    c.type = PreTokenizerType::kStarcoder;
    c.clean_spaces = false;
  } else if (is({"qwen2", "deepseek-r1-qwen"})) {
    c.type = PreTokenizerType::kQwen2;
    c.clean_spaces = false;
  } else if (is({"stablelm2", "megrez"})) {
    c.type = PreTokenizerType::kQwen2;
  } else {
    quanta::fail("tokenizer.ggml.pre: unknown pre-tokenizer type '%s'", pre.c_str());
  }
  return c;
}

PreTokenizer::PreTokenizer(PreTokenizerType type) {
  for (const std::string& regex : pre_tokenizer_regexes(type)) {
    Step step;
    if (regex == kGpt2Regex) {
      step.kind = StepKind::kGpt2;
    } else if (regex == kLlama3Regex) {
      step.kind = StepKind::kLlama3;
    } else if (uses_categories(regex)) {
      step.kind = StepKind::kCollapsed;
      step.regex = std::make_unique<Regex>(collapse_regex(regex));
      needs_collapsed_ = true;
    } else {
      step.kind = StepKind::kWide;
      step.regex = std::make_unique<Regex>(decode_pattern(regex));
      needs_wide_ = true;
    }
    steps_.push_back(std::move(step));
  }
}

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

std::vector<size_t> PreTokenizer::split_offsets(const std::vector<uint32_t>& cpts) const {
  // Collapsed text: ASCII kept, other whitespace -> VT, other code points -> category unit.
  // Wide text: code points with non-ASCII whitespace -> VT (std::wregex's \s is ASCII-only).
  std::vector<uint32_t> collapsed;
  std::vector<uint32_t> wide;
  if (needs_collapsed_ || needs_wide_) {
    if (needs_collapsed_) collapsed.resize(cpts.size());
    if (needs_wide_) wide.resize(cpts.size());
    for (size_t i = 0; i < cpts.size(); ++i) {
      const uint32_t c = cpts[i];
      const bool ascii = c < 128;
      const bool space = !ascii && unicode_is_whitespace(c);
      if (needs_wide_) wide[i] = space ? kCollapsedWhitespace : c;
      if (needs_collapsed_) {
        collapsed[i] = ascii   ? c
                       : space ? kCollapsedWhitespace
                               : collapsed_unit(unicode_category(c));
      }
    }
  }
  std::vector<size_t> offsets = {cpts.size()};
  std::vector<size_t> next;
  for (const Step& step : steps_) {
    next.clear();
    size_t start = 0;
    for (const size_t len : offsets) {
      switch (step.kind) {
        case StepKind::kGpt2:
          split_gpt2(Fragment(cpts, start, start + len, next));
          break;
        case StepKind::kLlama3:
          split_llama3(Fragment(cpts, start, start + len, next));
          break;
        case StepKind::kCollapsed:
          split_regex(*step.regex, collapsed, start, start + len, next);
          break;
        case StepKind::kWide:
          split_regex(*step.regex, wide, start, start + len, next);
          break;
      }
      start += len;
    }
    std::swap(offsets, next);
  }
  return offsets;
}

std::vector<std::string> PreTokenizer::split_words(std::string_view text) const {
  const std::vector<uint32_t> cpts = utf8_to_code_points(text);
  std::vector<std::string> words;
  size_t start = 0;
  for (const size_t len : split_offsets(cpts)) {
    std::string& word = words.emplace_back();
    for (size_t i = start; i < start + len; ++i) append_utf8(cpts[i], word);
    start += len;
  }
  return words;
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string> words = split_words(text);
  std::string encoded;
  for (std::string& word : words) {
    encoded.clear();
    for (const char c : word) encoded += byte_to_unicode(static_cast<uint8_t>(c));
    word.swap(encoded);
  }
  return words;
}

}  // namespace quanta::tokenizer
