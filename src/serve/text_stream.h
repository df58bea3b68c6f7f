// Incremental detokenization of one choice: token bytes in, text out only once it is complete
// UTF-8 and can no longer turn into a stop string; a stop string ends the text before it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace quanta::serve {

// NOTE: invariant. Everything released so far is valid UTF-8 and contains no stop string, and
// no stop string can start inside it: held_ keeps the longest suffix of the valid text that is
// a proper prefix of some stop string, and tail_ the bytes of a UTF-8 sequence not complete
// yet. So a stop string completed by a later token always starts inside held_ + tail_, and
// only those few bytes are searched per token. Invalid bytes become U+FFFD at once.
class TextStream {
 public:
  // `stop` must outlive the stream; empty strings in it are ignored.
  explicit TextStream(const std::vector<std::string>* stop = nullptr);

  // Appends one token's bytes (token_to_piece) and the newly releasable text to `out`.
  // Returns true when a stop string matched: the text before it was released, the match and
  // everything after it dropped, and later calls release nothing.
  bool push(std::string_view piece, std::string& out);
  // Generation ended without a stop string: releases what is held, an incomplete final UTF-8
  // sequence as U+FFFD.
  void flush(std::string& out);
  bool stopped() const { return stopped_; }
  // Bytes held back right now (tests).
  size_t held_bytes() const { return held_.size() + tail_.size(); }

 private:
  // Moves the complete UTF-8 of tail_ + piece into held_ (invalid bytes as U+FFFD), keeping
  // an incomplete final sequence in tail_.
  void decode(std::string_view piece);
  // Releases held_ except its longest suffix that may start a stop string.
  void release(std::string& out);

  const std::vector<std::string>* stop_;
  std::string held_;  // valid UTF-8 not released yet
  std::string tail_;  // at most 3 bytes: the start of a UTF-8 sequence
  bool stopped_ = false;
};

// Byte length of the UTF-8 sequence starting at s[0] when it is complete and valid, 0 when it
// is a valid but incomplete start (more bytes needed), -1 when s[0] cannot start a valid
// sequence with the bytes that follow it. `s` must be non-empty.
int utf8_sequence_length(std::string_view s);

}  // namespace quanta::serve
