// Incremental detokenization: UTF-8 split across tokens is released whole, invalid bytes become
// U+FFFD, stop strings (also spanning tokens, or overlapping a longer candidate) end the text
// before them and are never released; log-probabilities of the raw logits.
#include "serve/text_stream.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "serve/logprobs.h"

namespace quanta::serve {
namespace {

std::string feed(TextStream& s, const std::vector<std::string>& pieces, bool* stopped = nullptr) {
  std::string out;
  bool stop = false;
  for (const std::string& p : pieces) {
    stop = s.push(p, out);
    if (stop) break;
  }
  if (!stop) s.flush(out);
  if (stopped != nullptr) *stopped = stop;
  return out;
}

TEST(TextStream, MultiByteCharactersSplitAcrossTokensAreReleasedWhole) {
  TextStream s;
  std::string out;
  EXPECT_FALSE(s.push("a\xE6", out));  // 東 = E6 9D B1
  EXPECT_EQ(out, "a");
  EXPECT_FALSE(s.push("\x9D", out));
  EXPECT_EQ(out, "a");
  EXPECT_EQ(s.held_bytes(), 2u);
  EXPECT_FALSE(s.push("\xB1!", out));
  EXPECT_EQ(out, "a\xE6\x9D\xB1!");
  EXPECT_EQ(s.held_bytes(), 0u);
}

TEST(TextStream, InvalidBytesBecomeReplacementCharacters) {
  TextStream s;
  EXPECT_EQ(feed(s, {"x\xFF", "\x80y", "\xE6\x9D"}), "x\xEF\xBF\xBD\xEF\xBF\xBDy\xEF\xBF\xBD");
  EXPECT_EQ(utf8_sequence_length("\xED\xA0\x80"), -1);  // surrogate
  EXPECT_EQ(utf8_sequence_length("\xC0\x80"), -1);      // overlong
  EXPECT_EQ(utf8_sequence_length("\xF0\x9F"), 0);       // incomplete
  EXPECT_EQ(utf8_sequence_length("\xF0\x9F\x99\x82"), 4);
}

TEST(TextStream, StopStringSpanningTokensEndsTheTextBeforeIt) {
  const std::vector<std::string> stop = {"END"};
  TextStream s(&stop);
  std::string out;
  EXPECT_FALSE(s.push("Hello E", out));
  EXPECT_EQ(out, "Hello ");  // "E" may start the stop string
  EXPECT_FALSE(s.push("N", out));
  EXPECT_EQ(out, "Hello ");
  EXPECT_TRUE(s.push("Dless", out));
  EXPECT_EQ(out, "Hello ");
  EXPECT_TRUE(s.stopped());
  EXPECT_TRUE(s.push("more", out));
  s.flush(out);
  EXPECT_EQ(out, "Hello ");
}

TEST(TextStream, HeldPrefixIsReleasedWhenItStopsMatching) {
  const std::vector<std::string> stop = {"END"};
  TextStream s(&stop);
  bool stopped = true;
  EXPECT_EQ(feed(s, {"a E", "N", "d", " EN"}, &stopped), "a ENd EN");
  EXPECT_FALSE(stopped);
}

TEST(TextStream, EarliestOfSeveralStopStringsWins) {
  const std::vector<std::string> stop = {"world", "lo w", "zzz"};
  TextStream s(&stop);
  bool stopped = false;
  EXPECT_EQ(feed(s, {"hel", "lo", " wor", "ld"}, &stopped), "hel");
  EXPECT_TRUE(stopped);
}

TEST(TextStream, StopStringInsideOneTokenDropsTheRest) {
  const std::vector<std::string> stop = {"\n\n"};
  TextStream s(&stop);
  bool stopped = false;
  EXPECT_EQ(feed(s, {"one", " two\n", "\nthree"}, &stopped), "one two");
  EXPECT_TRUE(stopped);
}

TEST(TextStream, NonAsciiStopStringIsMatchedOnCompleteCharacters) {
  const std::vector<std::string> stop = {"\xC3\xA9!"};  // "é!"
  TextStream s(&stop);
  std::string out;
  EXPECT_FALSE(s.push("caf\xC3", out));
  EXPECT_EQ(out, "caf");
  EXPECT_FALSE(s.push("\xA9", out));
  EXPECT_EQ(out, "caf");
  EXPECT_TRUE(s.push("!", out));
  EXPECT_EQ(out, "caf");
}

TEST(Logprobs, LogSoftmaxAndTopAlternativesOrderedWithTiesToLowerIds) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, NAN, -1.0f};
  TokenLogprob lp;
  token_logprobs(logits.data(), 6, 2, 3, lp);
  double lse = 0;
  for (float x : {1.0f, 3.0f, 2.0f, 3.0f, -1.0f}) lse += std::exp(x);
  lse = std::log(lse);
  EXPECT_EQ(lp.token, 2);
  EXPECT_NEAR(lp.logprob, 2.0 - lse, 1e-6);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].token, 1);
  EXPECT_EQ(lp.top[1].token, 3);
  EXPECT_EQ(lp.top[2].token, 2);
  EXPECT_NEAR(lp.top[0].logprob, 3.0 - lse, 1e-6);
  EXPECT_EQ(lp.top[2].logprob, lp.logprob);
  token_logprobs(logits.data(), 6, 4, 0, lp);
  EXPECT_TRUE(std::isinf(lp.logprob) && lp.logprob < 0);
  EXPECT_TRUE(lp.top.empty());
}

}  // namespace
}  // namespace quanta::serve
