// Engine lifecycle on stories260K: cancellation frees every block, a full queue throws
// QueueFull, shutdown drains or cancels what is in flight and refuses new work, the destructor
// ends open streams, and preemption under a tiny KV pool still completes every request with
// the greedy output of an unconstrained run; decode steps allocate nothing per token.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "core/error.h"
#include "serve/engine_impl.h"
#include "serve_test_util.h"
#include "testlib/alloc_counter.h"
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


// Waits (up to 5 s) until `pred` holds.
template <typename Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 5000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

// Waits for the first text of `stream` (the request is running).
void wait_first_delta(RequestStream& stream, std::vector<ChoiceDelta>& got) {
  for (int i = 0; i < 200 && got.empty(); ++i) stream.next(got, std::chrono::milliseconds(20));
  ASSERT_FALSE(got.empty());
}

TEST(EngineLifecycle, StreamingDeliversTextBeforeTheRequestEnds) {
  auto e = make_engine();
  // Deltas not taken yet are merged, so a fast engine may deliver a request at once; over a
  // few long requests at least one must be seen in pieces.
  bool streamed = false;
  for (int attempt = 0; attempt < 3 && !streamed; ++attempt) {
    auto s = e->submit(greedy("Once upon a time", 230));
    std::vector<ChoiceDelta> got;
    wait_first_delta(*s, got);
    streamed = got.back().finish == FinishReason::kNone;
    const Collected rest = collect(*s);
    EXPECT_EQ(rest.usage.completion_tokens, 230);
    EXPECT_GE(s->queue_seconds(), 0.0);
    EXPECT_LT(s->queue_seconds(), 5.0);
  }
  EXPECT_TRUE(streamed);
}

TEST(EngineLifecycle, CancelFreesEveryBlockAtTheNextStep) {
  EngineOptions o = test_options();
  o.prefix_caching = false;
  auto e = make_engine(o);
  GenerationRequest r = greedy("Once upon a time, there was a little girl named Lily.", 230);
  r.n = 2;
  auto s = e->submit(r);
  std::vector<ChoiceDelta> got;
  wait_first_delta(*s, got);
  // One request with two choices computing: one request, two sequences in the gauges.
  const auto shows = [&](const char* line) {
    return e->metrics_text().find(std::string(line) + "\n") != std::string::npos;
  };
  bool counted = false;
  for (int i = 0; i < 2000 && !counted; ++i) {
    counted = shows("quanta_requests_running 1") && shows("quanta_sequences_running 2");
    if (!counted) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  EXPECT_TRUE(counted) << e->metrics_text();
  s->cancel();
  const Collected c = collect(*s, 2);
  for (const auto& choice : c.choices) {
    EXPECT_EQ(choice.finish, FinishReason::kCancelled);
    EXPECT_EQ(choice.n_finals, 1);
  }
  EXPECT_LT(c.usage.completion_tokens, 2 * 230);
  EXPECT_EQ(e->kv_blocks_free(), e->kv_blocks_total());
  EXPECT_EQ(e->n_running(), 0);
  EXPECT_NE(e->metrics_text().find("quanta_requests_total{outcome=\"cancelled\"} 1\n"),
            std::string::npos);
  s->cancel();  // twice, and after the end: harmless
  const Collected after = collect(*e->submit(greedy("Hello", 4)));
  EXPECT_EQ(after.choices.at(0).finish, FinishReason::kLength);
}

TEST(EngineLifecycle, FullQueueThrowsQueueFull) {
  EngineOptions o = test_options();
  o.max_running = 1;
  o.max_queue = 2;
  auto e = make_engine(o);
  std::vector<std::shared_ptr<RequestStream>> streams;
  bool full = false;
  for (int i = 0; i < 6 && !full; ++i) {
    try {
      streams.push_back(e->submit(greedy("Once upon a time", 230)));
    } catch (const QueueFull& q) {
      full = true;
      EXPECT_GT(q.retry_after_seconds, 0.0);
    }
  }
  ASSERT_TRUE(full);
  // Two may wait; the first may or may not have been scheduled already.
  EXPECT_GE(streams.size(), 2u);
  EXPECT_LE(streams.size(), 3u);
  EXPECT_LE(e->n_waiting(), 2);
  for (auto& s : streams) s->cancel();
  for (auto& s : streams) collect(*s);
  EXPECT_EQ(e->n_waiting(), 0);
  EXPECT_EQ(collect(*e->submit(greedy("Hello", 3))).usage.completion_tokens, 3);
  e->record_error_response(429);  // what the HTTP layer does with QueueFull
  EXPECT_NE(
      e->metrics_text().find("quanta_requests_total{outcome=\"rejected\",status=\"429\"} 1\n"),
      std::string::npos);
}

TEST(EngineLifecycle, ShutdownWithoutCancelFinishesWhatRuns) {
  auto e = make_engine();
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) {
    streams.push_back(e->submit(greedy("Once upon a time " + std::to_string(i), 40)));
  }
  e->shutdown(/*cancel_running=*/false);
  for (auto& s : streams) {
    EXPECT_TRUE(s->done());
    const Collected c = collect(*s);
    EXPECT_EQ(c.choices.at(0).finish, FinishReason::kLength);
    EXPECT_EQ(c.usage.completion_tokens, 40);
  }
  testlib::expect_error([&] { e->submit(greedy("Hello", 4)); }, "shutting down");
  e->shutdown(true);  // again: a no-op
}

TEST(EngineLifecycle, ShutdownWithCancelEndsEveryStream) {
  EngineOptions o = test_options();
  o.max_running = 2;  // some requests still wait in the queue
  auto e = make_engine(o);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 5; ++i) streams.push_back(e->submit(greedy("Once upon a time", 230)));
  std::vector<ChoiceDelta> got;
  wait_first_delta(*streams[0], got);
  e->shutdown(/*cancel_running=*/true);
  for (auto& s : streams) {
    ASSERT_TRUE(s->done());
    EXPECT_EQ(collect(*s).choices.at(0).finish, FinishReason::kCancelled);
  }
  EXPECT_EQ(e->kv_blocks_free(), e->kv_blocks_total());
  EXPECT_EQ(e->n_waiting(), 0);
}

TEST(EngineLifecycle, DestroyingTheEngineEndsOpenStreams) {
  std::shared_ptr<RequestStream> s;
  {
    auto e = make_engine();
    s = e->submit(greedy("Once upon a time", 230));
  }
  EXPECT_TRUE(s->done());
  const Collected c = collect(*s);
  EXPECT_NE(c.choices.at(0).finish, FinishReason::kNone);
  s->cancel();  // the engine is gone: harmless
}

TEST(EngineLifecycle, PreemptionUnderATinyPoolKeepsGreedyOutputs) {
  const std::vector<std::string> prompts = {
      "Once upon a time", "The little dog", "Tom and Sue went", "One day, a bird",
      "Lily saw a big",   "The sun was",    "A girl named Amy", "There was a cat"};
  const auto run_all = [&](const EngineOptions& o, bool concurrent, int64_t* preemptions) {
    auto e = make_engine(o);
    std::vector<std::vector<int32_t>> out(prompts.size());
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (size_t i = 0; i < prompts.size(); ++i) {
      GenerationRequest r = greedy(prompts[i], 52);
      r.top_logprobs = 0;
      streams.push_back(e->submit(r));
      if (!concurrent) out[i] = collect(*streams[i]).choices.at(0).tokens();
    }
    for (size_t i = 0; concurrent && i < prompts.size(); ++i) {
      const Collected c = collect(*streams[i]);
      EXPECT_EQ(c.choices.at(0).finish, FinishReason::kLength);
      out[i] = c.choices.at(0).tokens();
    }
    EXPECT_EQ(e->kv_blocks_free(), e->kv_blocks_total());
    if (preemptions != nullptr) *preemptions = dynamic_cast<EngineImpl&>(*e).n_preemptions();
    return out;
  };
  const auto reference = run_all(test_options(), /*concurrent=*/false, nullptr);
  EngineOptions tiny = test_options();
  tiny.n_ctx = 64;
  tiny.kv_blocks = 6;  // 96 tokens: room for one request and a half
  tiny.max_batch_tokens = 16;
  int64_t preemptions = 0;
  const auto squeezed = run_all(tiny, /*concurrent=*/true, &preemptions);
  EXPECT_GT(preemptions, 0);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(squeezed[i], reference[i]) << "prompt " << i;
    EXPECT_EQ(squeezed[i].size(), 52u);
  }
}


// Allocations (all threads) of one greedy request of `n` tokens, from submit to done; the test
// thread only polls done() meanwhile, so undelivered deltas merge into one.
int64_t allocations_for(Engine& e, int32_t n) {
  GenerationRequest r = greedy("Once upon a time, there was a little girl named Lily.", n);
  const int64_t before = testlib::allocation_count();
  auto s = e.submit(std::move(r));
  while (!s->done()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const int64_t after = testlib::allocation_count();
  EXPECT_EQ(collect(*s).usage.completion_tokens, n);
  return after - before;
}

TEST(EngineLifecycle, DecodeStepsDoNotAllocatePerToken) {
  EngineOptions o = test_options();
  o.prefix_caching = false;
  auto e = make_engine(o);
  allocations_for(*e, 20);  // warm-up: first-use growth of engine-side buffers
  const int64_t short_run = allocations_for(*e, 20);
  const int64_t long_run = allocations_for(*e, 220);
  // 200 more tokens: only logarithmic growth (the merged delta's text), not one per token.
  EXPECT_LT(long_run - short_run, 40) << short_run << " vs " << long_run;
}

}  // namespace
}  // namespace quanta::serve
