// The serving engine on stories260K: streamed deltas equal the detokenized tokens, usage,
// max_tokens and end-of-generation finishes, stop strings, n = 2 with seeds and shared prompt
// blocks, logprobs, request validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "serve/engine_impl.h"
#include "serve_test_util.h"
#include "testlib/expect_error.h"

namespace quanta::serve {
namespace {

using testing::collect;
using testing::Collected;
using testing::greedy;
using testing::stories;
using testing::stories_tokenizer;
using testing::make_engine;
using testing::test_options;


std::string pieces(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += stories_tokenizer().token_to_piece(id);
  return s;
}

// Greedy run of `text` with token ids (top_logprobs = 0) and optional stop strings.
Collected run(Engine& e, const std::string& text, int32_t max_tokens,
              std::vector<std::string> stop = {}, bool ignore_eos = true) {
  GenerationRequest r = greedy(text, max_tokens);
  r.top_logprobs = 0;
  r.stop = std::move(stop);
  r.ignore_eos = ignore_eos;
  auto stream = e.submit(std::move(r));
  return collect(*stream);
}

TEST(Engine, StreamsTheDetokenizedTokensAndReportsUsage) {
  auto e = make_engine();
  const std::string prompt = "Once upon a time, there was a little girl";
  const Collected c = run(*e, prompt, 24);
  const testing::ChoiceResult& r = c.choices.at(0);
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.n_finals, 1);
  ASSERT_EQ(r.logprobs.size(), 24u);
  EXPECT_EQ(r.text, pieces(r.tokens()));
  EXPECT_EQ(c.usage.prompt_tokens,
            static_cast<int32_t>(stories_tokenizer().encode(prompt, true).size()));
  EXPECT_EQ(c.usage.completion_tokens, 24);
  EXPECT_EQ(c.usage.cached_tokens, 0);
  const std::string metrics = e->metrics_text();
  for (const std::string& line : std::vector<std::string>{
           "quanta_requests_total{outcome=\"length\"} 1",
           "quanta_generation_tokens_total 24",
           "quanta_prompt_tokens_total " + std::to_string(c.usage.prompt_tokens),
           "quanta_time_to_first_token_seconds_count 1",
           "quanta_time_per_output_token_seconds_count 1",
           "quanta_e2e_request_latency_seconds_count 1",
           "quanta_request_queue_time_seconds_count 1",
           "quanta_requests_running 0",
           "quanta_kv_blocks_free " + std::to_string(e->kv_blocks_total()),
           // One step computes the prompt, then 23 decode steps (the last token is not fed).
           "quanta_step_prompt_tokens_total " + std::to_string(c.usage.prompt_tokens),
           "quanta_step_decode_tokens_total 23",
           "quanta_iteration_tokens_count 24",
       }) {
    EXPECT_NE(metrics.find(line + "\n"), std::string::npos) << line << "\n" << metrics;
  }
  // The same prompt again: its full blocks come from the prefix cache, same output.
  const Collected again = run(*e, prompt, 24);
  EXPECT_EQ(again.choices.at(0).text, r.text);
  EXPECT_EQ(again.usage.cached_tokens, (c.usage.prompt_tokens - 1) / 16 * 16);
  EXPECT_EQ(e->kv_blocks_free(), e->kv_blocks_total());
  EXPECT_GE(e->kv_blocks_total(), 8 * 256 / 16);
}

TEST(Engine, EndOfGenerationStopsUnlessIgnored) {
  // stories260K never generates its EOS, so a copy of its vocabulary names a token of the
  // greedy continuation as EOS: generation must stop at that token's first occurrence.
  const std::string prompt = "Once upon a time, there was a little girl named Lily.";
  auto plain = make_engine();
  const std::vector<int32_t> all = run(*plain, prompt, 60).choices.at(0).tokens();
  ASSERT_EQ(all.size(), 60u);
  tokenizer::Vocab vocab = stories_tokenizer().vocab();
  vocab.eos_id = all.at(20);
  const tokenizer::Tokenizer tok(vocab);
  const size_t first = std::find(all.begin(), all.end(), vocab.eos_id) - all.begin();
  ASSERT_LE(first, 20u);
  auto e = Engine::create(stories(), tok, test_options());
  const Collected stopped = run(*e, prompt, 60, {}, /*ignore_eos=*/false);
  const testing::ChoiceResult& r = stopped.choices.at(0);
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.tokens(), std::vector<int32_t>(all.begin(), all.begin() + first + 1));
  EXPECT_EQ(r.text, pieces(std::vector<int32_t>(all.begin(), all.begin() + first)));
  EXPECT_EQ(stopped.usage.completion_tokens, static_cast<int32_t>(first + 1));
  const Collected ignored = run(*e, prompt, 60, {}, /*ignore_eos=*/true);
  EXPECT_EQ(ignored.choices.at(0).finish, FinishReason::kLength);
  EXPECT_EQ(ignored.choices.at(0).tokens(), all);
}

TEST(Engine, StopStringsEndTheTextBeforeTheirFirstMatch) {
  auto e = make_engine();
  const std::string prompt = "Once upon a time, there was a big dog";
  const Collected plain = run(*e, prompt, 40);
  const std::vector<int32_t> ids = plain.choices.at(0).tokens();
  const std::string full = plain.choices.at(0).text;
  // A stop string spanning two tokens: the end of token 10's piece and the start of 11's.
  const std::string a = stories_tokenizer().token_to_piece(ids.at(10));
  const std::string b = stories_tokenizer().token_to_piece(ids.at(11));
  ASSERT_GE(a.size(), 2u);
  ASSERT_GE(b.size(), 2u);
  const std::string stop = a.substr(a.size() - 2) + b.substr(0, 2);
  const size_t at = full.find(stop);
  ASSERT_NE(at, std::string::npos);
  const Collected cut = run(*e, prompt, 40, {"no such text \x01", stop});
  EXPECT_EQ(cut.choices.at(0).finish, FinishReason::kStop);
  EXPECT_EQ(cut.choices.at(0).text, full.substr(0, at));
  EXPECT_EQ(cut.choices.at(0).text.find(stop), std::string::npos);
  EXPECT_LE(cut.usage.completion_tokens, 12);
  // A stop string that never occurs changes nothing.
  const Collected same = run(*e, prompt, 40, {"no such text \x01"});
  EXPECT_EQ(same.choices.at(0).finish, FinishReason::kLength);
  EXPECT_EQ(same.choices.at(0).text, full);
}

TEST(Engine, TwoChoicesWithASeedShareThePromptBlocks) {
  EngineOptions o = test_options();
  auto e = make_engine(o);
  GenerationRequest r = greedy(
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park with her friends. One day, she saw a big red ball",
      16);
  const int32_t n_prompt = static_cast<int32_t>(r.prompt.size());
  ASSERT_GT(n_prompt, 32);
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 1234;
  r.n = 2;
  auto stream = e->submit(r);
  const Collected both = collect(*stream, 2);
  ASSERT_EQ(both.choices.size(), 2u);
  for (const auto& c : both.choices) {
    EXPECT_EQ(c.finish, FinishReason::kLength);
    EXPECT_EQ(c.n_finals, 1);
  }
  EXPECT_EQ(both.usage.completion_tokens, 32);
  EXPECT_EQ(both.usage.prompt_tokens, n_prompt);
  // Prompt blocks held once: full blocks shared, the partial last block copied on write.
  const auto& impl = dynamic_cast<const EngineImpl&>(*e);
  const int32_t full = (n_prompt - 1) / 16;
  const int32_t per_choice = (n_prompt + 16 - 1 + 15) / 16 - full;
  EXPECT_LE(impl.peak_blocks_used(), full + 2 * per_choice);
  // Choice i samples with seed + i: the same as single requests with those seeds.
  for (int32_t i = 0; i < 2; ++i) {
    GenerationRequest single = r;
    single.n = 1;
    single.sampling.seed = 1234 + i;
    auto s = e->submit(single);
    EXPECT_EQ(collect(*s).choices.at(0).text, both.choices.at(i).text) << "choice " << i;
  }
  EXPECT_NE(both.choices[0].text, both.choices[1].text);
  EXPECT_EQ(e->kv_blocks_free(), e->kv_blocks_total());
}

TEST(Engine, LogprobsAreNormalisedAndOrdered) {
  auto e = make_engine();
  GenerationRequest r = greedy("The cat sat on the", 12);
  r.top_logprobs = 5;
  r.sampling.temperature = 0.9f;
  r.sampling.seed = 7;
  auto stream = e->submit(r);
  const Collected c = collect(*stream);
  const auto& lps = c.choices.at(0).logprobs;
  ASSERT_EQ(lps.size(), 12u);
  std::string text;
  for (const TokenLogprob& lp : lps) {
    ASSERT_EQ(lp.top.size(), 5u);
    double mass = 0;
    for (size_t j = 0; j < lp.top.size(); ++j) {
      EXPECT_LE(lp.top[j].logprob, 0.0f);
      if (j > 0) {
        EXPECT_LE(lp.top[j].logprob, lp.top[j - 1].logprob);
      }
      EXPECT_EQ(lp.top[j].text, stories_tokenizer().token_to_piece(lp.top[j].token));
      mass += std::exp(lp.top[j].logprob);
      if (lp.top[j].token == lp.token) {
        EXPECT_EQ(lp.top[j].logprob, lp.logprob);
      }
    }
    EXPECT_LE(mass, 1.0 + 1e-5);
    EXPECT_LE(lp.logprob, lp.top[0].logprob);
    EXPECT_EQ(lp.text, stories_tokenizer().token_to_piece(lp.token));
    text += lp.text;
  }
  EXPECT_EQ(text, c.choices.at(0).text);
  // Greedy: the chosen token is always the most likely one.
  r.sampling.temperature = 0.0f;
  auto g = e->submit(r);
  const Collected greedy_run = collect(*g);
  for (const TokenLogprob& lp : greedy_run.choices.at(0).logprobs) {
    EXPECT_EQ(lp.token, lp.top[0].token);
    EXPECT_EQ(lp.logprob, lp.top[0].logprob);
  }
}

TEST(Engine, RejectsRequestsItCannotRun) {
  auto e = make_engine();
  GenerationRequest ok = greedy("Hello", 4);
  testlib::expect_error([&] { e->submit(GenerationRequest{}); }, "prompt");
  GenerationRequest r = ok;
  r.max_tokens = 300;
  testlib::expect_error([&] { e->submit(r); }, "context length 256");
  r = ok;
  r.prompt.push_back(512);
  testlib::expect_error([&] { e->submit(r); }, "token id 512");
  r = ok;
  r.top_logprobs = 21;
  testlib::expect_error([&] { e->submit(r); }, "top_logprobs");
  r = ok;
  r.sampling.top_p = 1.5f;
  testlib::expect_error([&] { e->submit(r); }, "top_p");
  r = ok;
  r.stop = {""};
  testlib::expect_error([&] { e->submit(r); }, "stop");
  r = ok;
  r.n = 0;
  testlib::expect_error([&] { e->submit(r); }, "n: must be");
  EngineOptions tiny = test_options();
  tiny.kv_blocks = 4;  // 64 tokens < n_ctx 256
  testlib::expect_error([&] { make_engine(tiny); }, "cannot hold one full request");
}

TEST(Engine, KvPoolIsSizedFromBlocksOrMemory) {
  EngineOptions o = test_options();
  o.kv_blocks = 20;
  EXPECT_EQ(make_engine(o)->kv_blocks_total(), 20);
  o.kv_blocks = 0;
  o.max_running = 3;
  EXPECT_EQ(make_engine(o)->kv_blocks_total(), 3 * 256 / 16);  // max_running full contexts
  o.kv_memory_bytes = 1 << 20;
  models::ContextOptions c;
  c.n_ctx = 256;
  c.n_kv_blocks = 1;
  const uint64_t block_bytes = models::kv_layout_for(stories().hparams(), c).total_bytes();
  auto e = make_engine(o);
  EXPECT_EQ(e->kv_blocks_total(), static_cast<int32_t>((1 << 20) / block_bytes));
  EXPECT_EQ(e->n_ctx(), 256);
}

}  // namespace
}  // namespace quanta::serve
