// Per-request speculative decoding (n-gram prompt lookup) in the serving engine, stories260K:
// greedy outputs of concurrent requests, some speculative and some not, equal the outputs of
// the same requests without speculation (tokens, log-probabilities, stop strings, max_tokens,
// EOS), and the draft/accepted token counters in /metrics move.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "serve_test_util.h"

namespace quanta::serve {
namespace {

using testing::collect;
using testing::greedy;

// A counter's value in the Prometheus text, -1 when absent.
double metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1.0;
}

struct Case {
  GenerationRequest request;
  bool speculative = false;
};

// Prompts that repeat themselves (so lookup finds drafts at once) and plain story starts (the
// model's own loops give drafts later); stop strings, odd max_tokens and EOS included.
std::vector<Case> cases() {
  std::vector<Case> cs;
  const auto add = [&](GenerationRequest r, bool spec) {
    r.top_logprobs = 0;  // tokens and log-probabilities come back
    cs.push_back(Case{std::move(r), spec});
  };
  const std::string repeated =
      "Tom had a red ball. He liked to play with it. Tom had a red ball. He liked to play with "
      "it. Tom had a red ball. He liked to";
  for (const bool spec : {true, false}) {
    add(greedy(repeated, 40), spec);
    add(greedy("Once upon a time, there was a little girl named Lily. She", 61), spec);
    add(greedy("The dog ran and ran. The dog ran and ran. The dog", 13), spec);
    GenerationRequest stop = greedy(repeated, 60);
    stop.stop = {"ball. He"};
    add(stop, spec);
    GenerationRequest eos = greedy("Lily and Ben were friends. Lily and Ben", 120);
    eos.ignore_eos = false;
    add(eos, spec);
  }
  return cs;
}

struct Result {
  std::string text;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  FinishReason finish = FinishReason::kNone;
  int32_t completion_tokens = 0;
};

// Submits every case at once and collects them.
std::vector<Result> run(Engine& engine, const std::vector<Case>& cs, bool use_spec) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const Case& c : cs) {
    GenerationRequest r = c.request;
    r.speculative.ngram = use_spec && c.speculative ? 2 : 0;
    r.speculative.max_draft = 5;
    streams.push_back(engine.submit(std::move(r)));
  }
  std::vector<Result> out;
  for (auto& s : streams) {
    const testing::Collected got = collect(*s);
    Result res;
    res.text = got.choices.at(0).text;
    res.finish = got.choices.at(0).finish;
    res.completion_tokens = got.usage.completion_tokens;
    for (const TokenLogprob& lp : got.choices.at(0).logprobs) {
      res.tokens.push_back(lp.token);
      res.logprobs.push_back(lp.logprob);
    }
    out.push_back(std::move(res));
  }
  return out;
}

class ServeSpeculativeKv : public ::testing::TestWithParam<GgmlType> {};

TEST_P(ServeSpeculativeKv, GreedyOutputsOfMixedBatchesEqualNonSpeculativeOnes) {
  const std::vector<Case> cs = cases();
  EngineOptions o = testing::test_options();
  o.max_running = 10;
  o.kv_type = GetParam();
  const auto plain = Engine::create(testing::stories(), testing::stories_tokenizer(), o);
  const std::vector<Result> want = run(*plain, cs, /*use_spec=*/false);
  EXPECT_EQ(metric(plain->metrics_text(), "quanta_spec_draft_tokens_total"), 0.0);

  const auto engine = Engine::create(testing::stories(), testing::stories_tokenizer(), o);
  const std::vector<Result> got = run(*engine, cs, /*use_spec=*/true);
  for (size_t i = 0; i < cs.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    EXPECT_EQ(got[i].tokens, want[i].tokens);
    EXPECT_EQ(got[i].text, want[i].text);
    EXPECT_EQ(got[i].finish, want[i].finish);
    EXPECT_EQ(got[i].completion_tokens, want[i].completion_tokens);
    ASSERT_EQ(got[i].logprobs.size(), want[i].logprobs.size());
    for (size_t t = 0; t < got[i].logprobs.size(); ++t) {
      EXPECT_EQ(got[i].logprobs[t], want[i].logprobs[t]) << "token " << t;
    }
  }
  // The cases exercise what they mean to: max_tokens, a stop string, and EOS.
  EXPECT_EQ(want[2].completion_tokens, 13);
  EXPECT_EQ(want[3].finish, FinishReason::kStop);
  EXPECT_EQ(want[3].text.find("ball. He"), std::string::npos);
  const std::string m = engine->metrics_text();
  const double drafted = metric(m, "quanta_spec_draft_tokens_total");
  const double accepted = metric(m, "quanta_spec_accepted_tokens_total");
  EXPECT_GT(accepted, 10.0) << "repeated prompts should have drafts accepted";
  EXPECT_GE(drafted, accepted);
  EXPECT_EQ(engine->kv_blocks_free(), engine->kv_blocks_total());
}

// Rolled-back rows of an F16 KV cache are rewritten like F32 ones (stories260K's head size
// of 8 rules out Q8_0/Q4_0).
INSTANTIATE_TEST_SUITE_P(KvTypes, ServeSpeculativeKv,
                         ::testing::Values(GgmlType::F32, GgmlType::F16));

TEST(ServeSpeculative, EngineDefaultAppliesUnlessTheRequestTurnsItOff) {
  EngineOptions o = testing::test_options();
  o.lookup_ngram = 2;
  o.draft_max = 4;
  const auto engine = Engine::create(testing::stories(), testing::stories_tokenizer(), o);
  GenerationRequest off = greedy("The dog ran and ran. The dog ran and ran. The dog", 24);
  off.speculative.ngram = 0;
  collect(*engine->submit(off));
  EXPECT_EQ(metric(engine->metrics_text(), "quanta_spec_draft_tokens_total"), 0.0);
  GenerationRequest on = greedy("The dog ran and ran. The dog ran and ran. The dog", 24);
  const testing::Collected c = collect(*engine->submit(on));
  EXPECT_EQ(c.usage.completion_tokens, 24);
  const double drafted = metric(engine->metrics_text(), "quanta_spec_draft_tokens_total");
  EXPECT_GT(drafted, 0.0);
}

TEST(ServeSpeculative, SampledSpeculativeRequestsGenerateExactlyMaxTokens) {
  const auto engine =
      Engine::create(testing::stories(), testing::stories_tokenizer(), testing::test_options());
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int32_t i = 0; i < 4; ++i) {
    GenerationRequest r = greedy("The dog ran and ran. The dog ran and ran. The dog", 17 + i);
    r.sampling.temperature = 0.7f;
    r.sampling.seed = 100 + i;
    r.top_logprobs = 0;
    r.speculative.ngram = 1 + i % 2;
    r.speculative.max_draft = 6;
    streams.push_back(engine->submit(std::move(r)));
  }
  for (int32_t i = 0; i < 4; ++i) {
    const testing::Collected c = collect(*streams[i]);
    EXPECT_EQ(c.usage.completion_tokens, 17 + i);
    EXPECT_EQ(c.choices.at(0).logprobs.size(), static_cast<size_t>(17 + i));
    EXPECT_EQ(c.choices.at(0).finish, FinishReason::kLength);
  }
  EXPECT_GT(metric(engine->metrics_text(), "quanta_spec_draft_tokens_total"), 0.0);
}

TEST(ServeSpeculative, RejectsBadSpeculativeParameters) {
  const auto engine =
      Engine::create(testing::stories(), testing::stories_tokenizer(), testing::test_options());
  GenerationRequest r = greedy("Tom", 4);
  r.speculative.max_draft = kMaxSpecDraft + 1;
  EXPECT_THROW(engine->submit(r), Error);
  r.speculative.max_draft = 4;
  r.speculative.ngram = kMaxSpecNgram + 1;
  EXPECT_THROW(engine->submit(r), Error);
  EngineOptions o = testing::test_options();
  o.draft_max = 0;
  EXPECT_THROW(Engine::create(testing::stories(), testing::stories_tokenizer(), o), Error);
}

}  // namespace
}  // namespace quanta::serve
