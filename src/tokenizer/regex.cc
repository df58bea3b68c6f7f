// Backtracking ECMAScript-style regex matcher over 32-bit units (see regex.h).
#include "tokenizer/regex.h"

#include <utility>

#include "core/error.h"

namespace quanta::tokenizer {

namespace {

enum ClassFlag : uint8_t {
  kClassSpace = 1,
  kClassNotSpace = 2,
  kClassDigit = 4,
  kClassNotDigit = 8,
  kClassWord = 16,
  kClassNotWord = 32,
  kClassDot = 64,  // anything but a line terminator
};

bool is_space(uint32_t u) {
  return u == ' ' || (u >= 9 && u <= 13);
}
bool is_digit(uint32_t u) {
  return u >= '0' && u <= '9';
}
bool is_word(uint32_t u) {
  return is_digit(u) || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_';
}

// A set of units: explicit ranges plus class escapes, optionally negated.
struct CharSet {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive
  uint8_t classes = 0;
  bool negate = false;

  bool contains(uint32_t u) const {
    bool in = false;
    for (const auto& [lo, hi] : ranges) {
      if (u >= lo && u <= hi) {
        in = true;
        break;
      }
    }
    if (!in && classes) {
      in = ((classes & kClassSpace) && is_space(u)) ||
           ((classes & kClassNotSpace) && !is_space(u)) ||
           ((classes & kClassDigit) && is_digit(u)) ||
           ((classes & kClassNotDigit) && !is_digit(u)) || ((classes & kClassWord) && is_word(u)) ||
           ((classes & kClassNotWord) && !is_word(u)) ||
           ((classes & kClassDot) && u != '\n' && u != '\r' && u != 0x2028 && u != 0x2029);
    }
    return in != negate;
  }
};

enum class TermKind { kSet, kGroup, kLookahead, kNegLookahead, kBegin, kEnd };

constexpr int kUnbounded = -1;

}  // namespace

struct Term;

// An alternation of sequences of quantified terms.
struct Regex::Node {
  std::vector<std::vector<Term>> alternatives;
};

struct Term {
  TermKind kind = TermKind::kSet;
  CharSet set;                         // kSet
  std::unique_ptr<Regex::Node> group;  // kGroup and lookaheads
  int min = 1;
  int max = 1;  // kUnbounded for no limit
  bool greedy = true;
};

namespace {

class Parser {
 public:
  explicit Parser(const std::vector<uint32_t>& p) : p_(p) {}

  std::unique_ptr<Regex::Node> parse() {
    auto node = parse_alternation();
    if (i_ != p_.size()) fail_at("unmatched ')'");
    return node;
  }

 private:
  [[noreturn]] void fail_at(const char* what) const {
    quanta::fail("regex: %s at position %zu", what, i_);
  }
  bool at_end() const { return i_ >= p_.size(); }
  uint32_t peek() const { return p_[i_]; }
  bool accept(uint32_t u) {
    if (!at_end() && p_[i_] == u) {
      ++i_;
      return true;
    }
    return false;
  }

  std::unique_ptr<Regex::Node> parse_alternation() {
    auto node = std::make_unique<Regex::Node>();
    node->alternatives.emplace_back();
    while (!at_end() && peek() != ')') {
      if (accept('|')) {
        node->alternatives.emplace_back();
        continue;
      }
      node->alternatives.back().push_back(parse_term());
    }
    return node;
  }

  Term parse_term() {
    Term t = parse_atom();
    if (at_end()) return t;
    const uint32_t q = peek();
    if (q == '*' || q == '+' || q == '?') {
      ++i_;
      t.min = q == '+' ? 1 : 0;
      t.max = q == '?' ? 1 : kUnbounded;
    } else if (q == '{') {
      ++i_;
      t.min = parse_number();
      t.max = t.min;
      if (accept(',')) t.max = (!at_end() && peek() == '}') ? kUnbounded : parse_number();
      if (!accept('}')) fail_at("bad {} quantifier");
      if (t.max != kUnbounded && t.max < t.min) fail_at("bad {} quantifier bounds");
    } else {
      return t;
    }
    if (t.kind == TermKind::kBegin || t.kind == TermKind::kEnd || t.kind == TermKind::kLookahead ||
        t.kind == TermKind::kNegLookahead) {
      fail_at("quantifier after an assertion");
    }
    if (accept('?')) t.greedy = false;
    return t;
  }

  int parse_number() {
    if (at_end() || !is_digit(peek())) fail_at("expected a number");
    int n = 0;
    while (!at_end() && is_digit(peek())) {
      n = n * 10 + static_cast<int>(peek() - '0');
      if (n > 100000) fail_at("repeat count too large");
      ++i_;
    }
    return n;
  }

  Term parse_atom() {
    Term t;
    const uint32_t c = p_[i_++];
    switch (c) {
      case '(': {
        if (accept('?')) {
          if (accept(':')) {
            t.kind = TermKind::kGroup;
          } else if (accept('=')) {
            t.kind = TermKind::kLookahead;
          } else if (accept('!')) {
            t.kind = TermKind::kNegLookahead;
          } else {
            fail_at("unsupported group");
          }
        } else {
          t.kind = TermKind::kGroup;  // capturing groups are matched like (?:...)
        }
        t.group = parse_alternation();
        if (!accept(')')) fail_at("missing ')'");
        return t;
      }
      case '[':
        t.set = parse_class();
        return t;
      case '.':
        t.set.classes = kClassDot;
        return t;
      case '^':
        t.kind = TermKind::kBegin;
        return t;
      case '$':
        t.kind = TermKind::kEnd;
        return t;
      case '\\':
        parse_escape(t.set, /*in_class=*/false);
        return t;
      case '*':
      case '+':
      case '?':
      case '{':
        --i_;
        fail_at("nothing to repeat");
      default:
        t.set.ranges.push_back({c, c});
        return t;
    }
  }

  uint32_t parse_hex(int digits) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      if (at_end()) fail_at("truncated hex escape");
      const uint32_t h = p_[i_++];
      uint32_t d = 0;
      if (h >= '0' && h <= '9') {
        d = h - '0';
      } else if (h >= 'a' && h <= 'f') {
        d = h - 'a' + 10;
      } else if (h >= 'A' && h <= 'F') {
        d = h - 'A' + 10;
      } else {
        fail_at("bad hex escape");
      }
      v = v * 16 + d;
    }
    return v;
  }

  // After a backslash: adds a class escape to `set` and returns false, or returns true
  // with the single unit in `unit`.
  bool parse_escape_unit(uint8_t& class_flag, uint32_t& unit, bool in_class) {
    if (at_end()) fail_at("trailing backslash");
    const uint32_t e = p_[i_++];
    class_flag = 0;
    switch (e) {
      case 's':
        class_flag = kClassSpace;
        return false;
      case 'S':
        class_flag = kClassNotSpace;
        return false;
      case 'd':
        class_flag = kClassDigit;
        return false;
      case 'D':
        class_flag = kClassNotDigit;
        return false;
      case 'w':
        class_flag = kClassWord;
        return false;
      case 'W':
        class_flag = kClassNotWord;
        return false;
      case 'r':
        unit = '\r';
        return true;
      case 'n':
        unit = '\n';
        return true;
      case 't':
        unit = '\t';
        return true;
      case 'v':
        unit = '\v';
        return true;
      case 'f':
        unit = '\f';
        return true;
      case '0':
        unit = 0;
        return true;
      case 'x':
        unit = parse_hex(2);
        return true;
      case 'u':
        unit = parse_hex(4);
        return true;
      case 'b':
        if (in_class) {
          unit = '\b';
          return true;
        }
        fail_at("word boundaries are not supported");
      case 'p':
      case 'P':
        fail_at("\\p{..} must be collapsed before compiling");
      default:
        if (e >= '1' && e <= '9') fail_at("back-references are not supported");
        unit = e;  // identity escape
        return true;
    }
  }

  void parse_escape(CharSet& set, bool in_class) {
    uint8_t flag = 0;
    uint32_t unit = 0;
    if (parse_escape_unit(flag, unit, in_class)) {
      set.ranges.push_back({unit, unit});
    } else {
      set.classes |= flag;
    }
  }

  CharSet parse_class() {
    CharSet set;
    set.negate = accept('^');
    while (true) {
      if (at_end()) fail_at("missing ']'");
      if (accept(']')) return set;
      uint32_t lo = p_[i_++];
      if (lo == '\\') {
        uint8_t flag = 0;
        if (!parse_escape_unit(flag, lo, /*in_class=*/true)) {
          set.classes |= flag;
          continue;
        }
      }
      if (i_ + 1 < p_.size() && peek() == '-' && p_[i_ + 1] != ']') {
        ++i_;
        uint32_t hi = p_[i_++];
        if (hi == '\\') {
          uint8_t flag = 0;
          if (!parse_escape_unit(flag, hi, /*in_class=*/true)) fail_at("class escape in a range");
        }
        if (hi < lo) fail_at("range out of order");
        set.ranges.push_back({lo, hi});
      } else {
        set.ranges.push_back({lo, lo});
      }
    }
  }

  const std::vector<uint32_t>& p_;
  size_t i_ = 0;
};

// What to do after the current sequence ends.
struct Cont {
  enum class Kind { kSequence, kRepeat, kFinal, kAccept };
  Kind kind;
  const std::vector<Term>* seq = nullptr;  // kSequence/kRepeat: continue seq at idx
  size_t idx = 0;
  const Term* term = nullptr;  // kRepeat: the repeated group
  int count = 0;               // kRepeat: iterations completed
  size_t iter_start = 0;       // kRepeat: where the last iteration began
  const Cont* next = nullptr;
};

class Matcher {
 public:
  Matcher(const uint32_t* text, size_t begin, size_t end) : text_(text), begin_(begin), end_(end) {}

  int64_t run(const Regex::Node& root, size_t pos) {
    const Cont final_cont{Cont::Kind::kFinal};
    if (!alternation(root, pos, &final_cont)) return -1;
    return static_cast<int64_t>(match_end_ - pos);
  }

 private:
  bool alternation(const Regex::Node& node, size_t pos, const Cont* k) {
    for (const auto& alt : node.alternatives) {
      if (sequence(alt, 0, pos, k)) return true;
    }
    return false;
  }

  bool resume(const Cont* k, size_t pos) {
    switch (k->kind) {
      case Cont::Kind::kFinal:
        match_end_ = pos;
        return true;
      case Cont::Kind::kAccept:
        return true;
      case Cont::Kind::kSequence:
        return sequence(*k->seq, k->idx, pos, k->next);
      case Cont::Kind::kRepeat:
        // An optional iteration that matched nothing fails (ECMAScript RepeatMatcher).
        if (pos == k->iter_start && k->count > k->term->min) return false;
        return repeat(*k->term, k->count, pos, k->seq, k->idx, k->next);
    }
    return false;
  }

  bool repeat(const Term& t, int count, size_t pos, const std::vector<Term>* seq, size_t idx,
              const Cont* k) {
    const Cont again{Cont::Kind::kRepeat, seq, idx, &t, count + 1, pos, k};
    const bool can_more = t.max == kUnbounded || count < t.max;
    if (t.greedy) {
      if (can_more && alternation(*t.group, pos, &again)) return true;
      return count >= t.min && sequence(*seq, idx + 1, pos, k);
    }
    if (count >= t.min && sequence(*seq, idx + 1, pos, k)) return true;
    return can_more && alternation(*t.group, pos, &again);
  }

  bool sequence(const std::vector<Term>& seq, size_t i, size_t pos, const Cont* k) {
    if (i == seq.size()) return resume(k, pos);
    const Term& t = seq[i];
    switch (t.kind) {
      case TermKind::kBegin:
        return pos == begin_ && sequence(seq, i + 1, pos, k);
      case TermKind::kEnd:
        return pos == end_ && sequence(seq, i + 1, pos, k);
      case TermKind::kLookahead:
      case TermKind::kNegLookahead: {
        const Cont accept{Cont::Kind::kAccept};
        const bool matched = alternation(*t.group, pos, &accept);
        if (matched != (t.kind == TermKind::kLookahead)) return false;
        return sequence(seq, i + 1, pos, k);
      }
      case TermKind::kGroup: {
        if (t.min == 1 && t.max == 1) {
          const Cont after{Cont::Kind::kSequence, &seq, i + 1, nullptr, 0, 0, k};
          return alternation(*t.group, pos, &after);
        }
        return repeat(t, 0, pos, &seq, i, k);
      }
      case TermKind::kSet:
        break;
    }
    // A single-unit set: count the run once, then try the lengths in greedy/lazy order.
    size_t n = 0;
    const size_t limit = t.max == kUnbounded ? end_ - pos : static_cast<size_t>(t.max);
    while (n < limit && pos + n < end_ && t.set.contains(text_[pos + n])) ++n;
    const size_t min = static_cast<size_t>(t.min);
    if (n < min) return false;
    if (t.greedy) {
      for (size_t c = n + 1; c-- > min;) {
        if (sequence(seq, i + 1, pos + c, k)) return true;
      }
      return false;
    }
    for (size_t c = min; c <= n; ++c) {
      if (sequence(seq, i + 1, pos + c, k)) return true;
    }
    return false;
  }

  const uint32_t* text_;
  size_t begin_;
  size_t end_;
  size_t match_end_ = 0;
};

}  // namespace

Regex::Regex(const std::vector<uint32_t>& pattern) : root_(Parser(pattern).parse()) {}
Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

int64_t Regex::match_at(const uint32_t* text, size_t begin, size_t end, size_t pos) const {
  Matcher matcher(text, begin, end);
  return matcher.run(*root_, pos);
}

bool Regex::search(const uint32_t* text, size_t begin, size_t end, size_t from, size_t& match_pos,
                   size_t& match_len) const {
  for (size_t pos = from; pos <= end; ++pos) {
    const int64_t len = match_at(text, begin, end, pos);
    if (len >= 0) {
      match_pos = pos;
      match_len = static_cast<size_t>(len);
      return true;
    }
  }
  return false;
}

}  // namespace quanta::tokenizer
