// A small backtracking regular-expression matcher with the semantics of std::regex's
// ECMAScript grammar (leftmost match, ordered alternation, greedy quantifiers that
// backtrack), over sequences of 32-bit units: code points, or the one-byte "collapsed"
// units llama.cpp substitutes for Unicode categories. It reproduces what llama.cpp's
// std::regex / std::wregex pre-tokenizer splits do, without their locale dependence.
//
// Syntax: alternation |, groups ( ) (?: ), lookahead (?= ) (?! ), anchors ^ $, quantifiers
// * + ? {n} {n,} {n,m} (each optionally lazy with a trailing ?), classes [..] [^..] with
// ranges, '.', escapes \s \S \d \D \w \W \r \n \t \v \f \xHH \uHHHH and identity escapes.
// \s is ASCII whitespace only (tab, LF, VT, FF, CR, space), as std::regex in the C locale.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace quanta::tokenizer {

class Regex {
 public:
  // Parses `pattern` (one unit per element). Throws quanta::Error on a syntax error.
  explicit Regex(const std::vector<uint32_t>& pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Length of the match that starts exactly at `pos`, searching text[begin, end): '^' holds
  // only at `begin`, '$' and lookahead stop at `end`. Returns -1 when nothing matches there.
  int64_t match_at(const uint32_t* text, size_t begin, size_t end, size_t pos) const;

  // Leftmost match starting in [from, end] (positions tried from `from` upwards); false
  // when there is none, else sets `match_pos`/`match_len` (the length may be 0).
  bool search(const uint32_t* text, size_t begin, size_t end, size_t from, size_t& match_pos,
              size_t& match_len) const;

  struct Node;  // parse tree; defined in regex.cc

 private:
  std::unique_ptr<Node> root_;  // an alternation node
};

}  // namespace quanta::tokenizer
