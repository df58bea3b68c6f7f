// Per-request speculative decoding (n-gram prompt lookup, and a draft model: stories260K's
// Q8_0 quantization) in the serving engine, stories260K: greedy outputs of concurrent
// requests, some speculative and some not, equal the outputs of the same requests without
// speculation (tokens, log-probabilities, stop strings, max_tokens, EOS), also through
// preemption; draft KV blocks are freed on finish, cancellation and preemption; the
// speculation counters in /metrics move.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "serve/engine_impl.h"
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

// How a case speculates: sets r.speculative (spec = the case is a speculative one, i = its
// index).
using SpecSetter = std::function<void(GenerationRequest& r, bool spec, size_t i)>;

// Submits every case at once and collects them.
std::vector<Result> run_with(Engine& engine, const std::vector<Case>& cs, const SpecSetter& set) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (size_t i = 0; i < cs.size(); ++i) {
    GenerationRequest r = cs[i].request;
    set(r, cs[i].speculative, i);
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

std::vector<Result> run(Engine& engine, const std::vector<Case>& cs, bool use_spec) {
  return run_with(engine, cs, [&](GenerationRequest& r, bool spec, size_t) {
    r.speculative.ngram = use_spec && spec ? 2 : 0;
    r.speculative.max_draft = 5;
  });
}

void expect_same(const std::vector<Result>& got, const std::vector<Result>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
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
  expect_same(got, want);
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

// Rolled-back rows of an F16 or Q8_0 KV cache are rewritten like F32 ones (stories260K's
// 4 heads of 8 share one Q8_0 block per token).
INSTANTIATE_TEST_SUITE_P(KvTypes, ServeSpeculativeKv,
                         ::testing::Values(GgmlType::F32, GgmlType::F16, GgmlType::Q8_0));

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

// ---- Draft-model speculation ----

const models::Model& q8_draft() {
  static const std::unique_ptr<models::Model> model =
      models::Model::load(testlib::shared_path("models/stories260K-Q8_0mix.gguf"));
  return *model;
}

std::unique_ptr<Engine> draft_engine(EngineOptions o) {
  o.draft_model = &q8_draft();
  return Engine::create(testing::stories(), testing::stories_tokenizer(), o);
}

int32_t draft_blocks_used(Engine& e) {
  return dynamic_cast<EngineImpl&>(e).draft_blocks_used();
}

// Speculative cases use the draft model (adaptive 1..8, fixed 4, and the server default) or
// 2-gram lookup, the others nothing, all in the same batches.
void draft_mix(GenerationRequest& r, bool spec, size_t i) {
  SpecParams& sp = r.speculative;
  if (!spec) {
    sp.draft = 0;  // and ngram -1: the server's lookup_ngram, 0
    return;
  }
  if (i % 4 == 0) {
    sp.draft = 1;
    sp.max_draft = 8;
  } else if (i % 4 == 1) {
    sp.draft = 1;
    sp.min_draft = sp.max_draft = 4;
  } else if (i % 4 == 2) {
    sp.ngram = 2;
  }  // else the server's default: its draft model
}

TEST_P(ServeSpeculativeKv, DraftModelGreedyOutputsOfMixedBatchesEqualNonSpeculativeOnes) {
  const std::vector<Case> cs = cases();
  EngineOptions o = testing::test_options();
  o.max_running = 10;
  o.kv_type = GetParam();
  const auto plain = Engine::create(testing::stories(), testing::stories_tokenizer(), o);
  const std::vector<Result> want = run(*plain, cs, /*use_spec=*/false);
  const auto engine = draft_engine(o);
  expect_same(run_with(*engine, cs, draft_mix), want);
  const std::string m = engine->metrics_text();
  const double drafted = metric(m, "quanta_spec_draft_tokens_total");
  const double accepted = metric(m, "quanta_spec_accepted_tokens_total");
  // The Q8_0 draft agrees with the target on ~95% of greedy tokens.
  EXPECT_GT(accepted, 0.8 * drafted) << accepted << " / " << drafted;
  EXPECT_GT(drafted, 100.0);
  EXPECT_GT(metric(m, "quanta_spec_draft_model_passes_total"), 10.0);
  EXPECT_GT(metric(m, "quanta_spec_verify_passes_total"), 10.0);
  EXPECT_EQ(metric(m, "quanta_spec_draft_kv_blocks_used"), 0.0);
  EXPECT_EQ(draft_blocks_used(*engine), 0);
  EXPECT_EQ(engine->kv_blocks_free(), engine->kv_blocks_total());
}

// A KV pool too small for all requests at once: the scheduler preempts, the engine frees the
// preempted sequences' draft rows, recomputes them after, and the outputs do not change.
TEST(ServeSpeculative, DraftModelThroughPreemptionKeepsGreedyOutputs) {
  const std::vector<std::string> prompts = {"Once upon a time", "Tom had a red ball. He liked",
                                            "The sun was hot. Lily went", "One day, a little bird"};
  std::vector<Case> cs;
  for (const std::string& p : prompts) {
    GenerationRequest r = greedy(p, 44);
    r.top_logprobs = 0;
    cs.push_back(Case{std::move(r), true});
  }
  const auto plain =
      Engine::create(testing::stories(), testing::stories_tokenizer(), testing::test_options());
  std::vector<Result> want;
  for (const Case& c : cs) want.push_back(run(*plain, {c}, /*use_spec=*/false).at(0));
  EngineOptions tiny = testing::test_options();
  tiny.n_ctx = 64;
  tiny.kv_blocks = 6;  // 96 tokens: room for one request and a half
  tiny.max_batch_tokens = 16;
  const auto engine = draft_engine(tiny);
  expect_same(
      run_with(*engine, cs, [](GenerationRequest& r, bool, size_t) { r.speculative.draft = 1; }),
      want);
  EXPECT_GT(dynamic_cast<EngineImpl&>(*engine).n_preemptions(), 0);
  EXPECT_GT(metric(engine->metrics_text(), "quanta_spec_accepted_tokens_total"), 20.0);
  EXPECT_EQ(draft_blocks_used(*engine), 0);
  EXPECT_EQ(engine->kv_blocks_free(), engine->kv_blocks_total());
}

TEST(ServeSpeculative, CancellingDraftModelRequestsFreesTheirDraftRows) {
  const auto engine = draft_engine(testing::test_options());
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int32_t i = 0; i < 3; ++i) {
    GenerationRequest r = greedy("Once upon a time, there was a little girl named Lily.", 200);
    r.n = 1 + i % 2;  // siblings speculate each with its own draft rows
    streams.push_back(engine->submit(std::move(r)));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (draft_blocks_used(*engine) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GT(draft_blocks_used(*engine), 0);
  for (auto& s : streams) s->cancel();
  for (size_t i = 0; i < streams.size(); ++i) {
    const testing::Collected c = collect(*streams[i], 1 + i % 2);
    EXPECT_EQ(c.choices.at(0).finish, FinishReason::kCancelled);
  }
  EXPECT_EQ(draft_blocks_used(*engine), 0);
  EXPECT_EQ(engine->kv_blocks_free(), engine->kv_blocks_total());
  EXPECT_EQ(metric(engine->metrics_text(), "quanta_spec_draft_kv_blocks_used"), 0.0);
}

// Sampling: the draft's q goes to the rejection sampler; every request still ends exactly at
// max_tokens, a seeded request alone with a fixed draft length is reproducible, and
// "ngram": 0 turns the default off.
TEST(ServeSpeculative, DraftModelSampledRequestsAndTheServerDefault) {
  const auto engine = draft_engine(testing::test_options());
  const auto sampled = [](int32_t i) {
    GenerationRequest r = greedy("Once upon a time, there was a little girl named Lily.", 30 + i);
    r.sampling.temperature = 0.8f;
    r.sampling.seed = 7 + i;
    r.top_logprobs = 0;
    return r;  // speculative unset: the server's default, its draft model
  };
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int32_t i = 0; i < 4; ++i) streams.push_back(engine->submit(sampled(i)));
  for (int32_t i = 0; i < 4; ++i) {
    const testing::Collected c = collect(*streams[i]);
    EXPECT_EQ(c.usage.completion_tokens, 30 + i);
    EXPECT_EQ(c.choices.at(0).logprobs.size(), static_cast<size_t>(30 + i));
    EXPECT_EQ(c.choices.at(0).finish, FinishReason::kLength);
  }
  const std::string m = engine->metrics_text();
  const double accepted = metric(m, "quanta_spec_accepted_tokens_total");
  EXPECT_GT(accepted, 10.0);
  // With a fixed draft length (the adaptive one follows timings) a seeded request run alone
  // draws the same random numbers again.
  GenerationRequest fixed = sampled(0);
  fixed.speculative.min_draft = fixed.speculative.max_draft = 4;
  const std::string once = collect(*engine->submit(fixed)).choices.at(0).text;
  EXPECT_EQ(collect(*engine->submit(fixed)).choices.at(0).text, once);
  GenerationRequest off = sampled(0);
  off.speculative.ngram = 0;
  const double drafted = metric(engine->metrics_text(), "quanta_spec_draft_tokens_total");
  collect(*engine->submit(off));
  EXPECT_EQ(metric(engine->metrics_text(), "quanta_spec_draft_tokens_total"), drafted);
}

TEST(ServeSpeculative, RejectsBadDraftModelParameters) {
  const auto plain =
      Engine::create(testing::stories(), testing::stories_tokenizer(), testing::test_options());
  GenerationRequest r = greedy("Tom", 4);
  r.speculative.draft = 1;
  EXPECT_THROW(plain->submit(r), Error);  // no draft model
  const auto engine = draft_engine(testing::test_options());
  r.speculative.ngram = 2;
  EXPECT_THROW(engine->submit(r), Error);  // both methods
  r.speculative.ngram = -1;
  r.speculative.max_draft = 4;
  r.speculative.min_draft = 5;
  EXPECT_THROW(engine->submit(r), Error);
  r.speculative.min_draft = 4;
  EXPECT_EQ(collect(*engine->submit(r)).usage.completion_tokens, 4);
  EngineOptions o = testing::test_options();
  o.lookup_ngram = 2;
  EXPECT_THROW(draft_engine(o), Error);
  o.lookup_ngram = 0;
  o.draft_min = 9;  // > draft_max 8
  EXPECT_THROW(draft_engine(o), Error);
  o.draft_min = 1;
  o.draft_model = &testing::stories();
  o.max_running = 2;
  EXPECT_NO_THROW(Engine::create(testing::stories(), testing::stories_tokenizer(), o));
}

}  // namespace
}  // namespace quanta::serve
