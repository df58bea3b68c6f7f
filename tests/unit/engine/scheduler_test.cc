// Scheduler with a fake model (no model code): the token budget shared by decodes and prompt
// chunks, admission waiting for blocks, preemption of the newest request and its identical
// resumption, cancellation, prefix-cache hits, siblings sharing a prompt with copy-on-write,
// stop and length finishes, and rejection of bad requests and mismatched step results.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "core/error.h"
#include "scheduler_test_util.h"
#include "testlib/alloc_counter.h"

namespace quanta {
namespace {

using testing::Harness;
using testing::StepSummary;

std::vector<int32_t> tokens(int32_t n, int32_t first) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), first);
  return t;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

SchedulerConfig config(int32_t max_batch_tokens, int32_t max_running = 8,
                       bool prefix_caching = true) {
  SchedulerConfig c;
  c.max_batch_tokens = max_batch_tokens;
  c.max_running = max_running;
  c.max_model_len = 256;
  c.prefix_caching = prefix_caching;
  return c;
}

TEST(Scheduler, LongPromptIsChunkedBetweenTheDecodesOfOthers) {
  Harness h(64, 4, config(16));
  h.add(1, tokens(3, 10), 30);
  h.add(2, tokens(5, 20), 30);
  StepSummary s = h.step();
  EXPECT_EQ(s.chunks.at(1).n, 3);
  EXPECT_EQ(s.chunks.at(2).n, 5);
  h.add(3, tokens(50, 100), 5);
  int32_t prompt_done = 0;
  for (int step = 0; prompt_done < 50; ++step) {
    s = h.step();
    ASSERT_LT(step, 10);
    EXPECT_EQ(s.chunks.at(1).n, 1);  // the decodes never wait for the prompt
    EXPECT_TRUE(s.chunks.at(1).sample);
    EXPECT_EQ(s.chunks.at(2).n, 1);
    const StepSummary::Chunk c = s.chunks.at(3);
    EXPECT_EQ(c.start, prompt_done);
    EXPECT_EQ(c.n, std::min(14, 50 - prompt_done));  // what the decodes leave of 16
    EXPECT_EQ(c.sample, c.start + c.n == 50);
    EXPECT_EQ(s.n_tokens, 2 + c.n);
    prompt_done += c.n;
  }
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
  EXPECT_EQ(h.finished.at(3).output.size(), 5u);
  EXPECT_EQ(h.finished.at(3).reason, FinishReason::kLength);
  EXPECT_EQ(h.pool.n_free(), h.pool.n_blocks());
}

TEST(Scheduler, DecodesKeepTheirTokenWhileAnOlderPromptIsChunked) {
  // Request 2 (a sibling of 1) waits for 1's prompt while the newer request 3 is admitted;
  // 1 is cancelled, so 2 computes the whole prompt itself, older than the decoding 3.
  Harness h(64, 4, config(8, 8, false));
  const std::vector<int32_t> prompt = tokens(20, 0);
  h.add(1, prompt, 4);
  h.add(2, prompt, 4, 1);
  h.add(3, tokens(2, 90), 30);
  h.step();
  h.step();
  StepSummary s = h.step();
  EXPECT_EQ(s.chunks.at(1).n, 4);
  EXPECT_FALSE(s.has(2));
  EXPECT_EQ(s.chunks.at(3).n, 2);
  h.sched.cancel(1);
  s = h.step();
  EXPECT_EQ(s.chunks.at(2).start, 0);
  int32_t done = s.chunks.at(2).n;
  while (done < 20) {
    s = h.step();
    EXPECT_EQ(s.chunks.at(3).n, 1);  // one token kept for the newer decode
    EXPECT_EQ(s.chunks.at(2).n, std::min(7, 20 - done));
    done += s.chunks.at(2).n;
  }
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
}

TEST(Scheduler, AdmissionWaitsUntilTheRequestsBlocksAreFree) {
  Harness h(10, 4, config(64));
  h.add(1, tokens(24, 0), 8);   // 6 blocks now, 8 at the end
  h.add(2, tokens(20, 50), 4);  // needs 5 blocks: only 4 are free
  StepSummary s = h.step();
  EXPECT_TRUE(s.has(1));
  EXPECT_FALSE(s.has(2));
  EXPECT_EQ(h.sched.n_waiting(), 1);
  int steps_before = 1;
  while (h.sched.find(1) != nullptr) {
    s = h.step();
    EXPECT_FALSE(s.has(2)) << "admitted while request 1 holds its blocks";
    ++steps_before;
  }
  EXPECT_EQ(steps_before, 8);  // 1 prompt step + 7 decodes
  s = h.step();
  EXPECT_EQ(s.chunks.at(2).n, 20);
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
  EXPECT_EQ(h.pool.n_free(), 10);
}

TEST(Scheduler, WatermarkKeepsBlocksForRunningRequestsExceptWhenNothingRuns) {
  SchedulerConfig c = config(64);
  c.watermark_blocks = 3;
  Harness h(8, 4, c);
  h.add(1, tokens(24, 0), 4);  // 6 of 8 blocks: allowed although 2 < 3 remain, nothing runs
  h.add(2, tokens(3, 90), 4);  // 1 block: would leave 1 < 3
  StepSummary s = h.step();
  EXPECT_TRUE(s.has(1));
  EXPECT_FALSE(s.has(2));
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
}

class PreemptionTest : public ::testing::TestWithParam<bool> {};

TEST_P(PreemptionTest, NewestIsPreemptedAndResumesWithTheSameTokens) {
  Harness h(12, 4, config(64, 8, GetParam()));
  for (int64_t id = 1; id <= 3; ++id) h.add(id, tokens(10, static_cast<int32_t>(id) * 100), 20);
  bool saw_preemption = false;
  for (int step = 0; step < 200 && h.sched.has_unfinished(); ++step) {
    const StepSummary s = h.step();
    if (!s.preempted.empty() && !saw_preemption) {
      saw_preemption = true;
      EXPECT_EQ(s.preempted, (std::vector<int64_t>{3}));  // the newest goes first
      const Request* r = h.sched.find(3);
      ASSERT_NE(r, nullptr);
      EXPECT_EQ(r->status, RequestStatus::kPreempted);
      EXPECT_EQ(r->num_computed_tokens, 0);
      EXPECT_GT(r->n_output(), 0);  // kept, to be recomputed
      EXPECT_EQ(h.sched.waiting().front(), r);
      EXPECT_EQ(r->table.n_blocks(), 0);
      EXPECT_TRUE(s.has(1) && s.has(2));
    }
  }
  EXPECT_TRUE(saw_preemption);
  EXPECT_FALSE(h.sched.has_unfinished());
  h.expect_reference_outputs();
  EXPECT_GE(h.finished.at(3).n_preemptions, 1);
  EXPECT_EQ(h.finished.at(1).n_preemptions, 0);  // the oldest is never the victim
  EXPECT_EQ(h.pool.n_free(), 12);
}

INSTANTIATE_TEST_SUITE_P(PrefixCaching, PreemptionTest, ::testing::Bool());

TEST(Scheduler, NewestRequestShortOfABlockPreemptsItself) {
  Harness h(4, 4, config(64));
  h.add(1, tokens(6, 0), 8);   // 2 blocks, room for 2 more rows
  h.add(2, tokens(8, 50), 4);  // 2 full blocks: its first decode needs a third
  StepSummary s = h.step();
  EXPECT_TRUE(s.has(1) && s.has(2));
  EXPECT_EQ(h.pool.n_free(), 0);
  s = h.step();
  EXPECT_EQ(s.preempted, (std::vector<int64_t>{2}));
  EXPECT_TRUE(s.has(1));
  EXPECT_FALSE(s.has(2));
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
  EXPECT_EQ(h.finished.at(2).n_preemptions, 1);
  EXPECT_EQ(h.pool.n_free(), 4);
}

TEST(Scheduler, CancellationFreesBlocksAtTheNextStep) {
  Harness h(16, 4, config(64, 1));
  h.add(1, tokens(9, 0), 50);
  h.add(2, tokens(9, 40), 50);  // waits: one running request at most
  h.step();
  h.step();
  const int32_t used = h.pool.n_used();
  EXPECT_EQ(used, 3);
  EXPECT_TRUE(h.sched.cancel(1));
  EXPECT_TRUE(h.sched.cancel(1));  // idempotent
  EXPECT_FALSE(h.sched.cancel(77));
  EXPECT_EQ(h.pool.n_used(), used);  // nothing happens before the next step
  StepSummary s = h.step();
  EXPECT_FALSE(s.has(1));
  EXPECT_TRUE(s.has(2));  // its slot went to the waiting request
  ASSERT_EQ(h.finished.count(1), 1u);
  EXPECT_EQ(h.finished.at(1).reason, FinishReason::kCancelled);
  EXPECT_EQ(h.finished.at(1).output.size(), 2u);
  EXPECT_EQ(h.pool.n_used(), 3);  // only request 2's blocks

  // Cancelled while its step is in flight: the step's token still lands, then it goes.
  h.add(3, tokens(2, 7), 50);  // waiting
  const SchedulerOutput& out = h.sched.schedule();
  EXPECT_TRUE(h.sched.cancel(2));
  EXPECT_TRUE(h.sched.cancel(3));
  const std::vector<StepResult> results = h.runner.run(out);
  h.sched.update(results);
  EXPECT_EQ(h.sched.find(2)->n_output(), 2);
  s = h.step();
  EXPECT_TRUE(s.chunks.empty());
  EXPECT_FALSE(h.sched.has_unfinished());
  EXPECT_EQ(h.pool.n_free(), 16);
  std::vector<FinishedRequest> done;
  h.sched.drain_finished(done);
  EXPECT_TRUE(done.empty());  // step() drained them already
  EXPECT_EQ(h.finished.at(3).reason, FinishReason::kCancelled);
  EXPECT_TRUE(h.finished.at(3).output.empty());
}

TEST(Scheduler, RepeatedSystemPromptIsComputedOnce) {
  const std::vector<int32_t> system = tokens(32, 1000);  // 8 blocks
  for (bool caching : {true, false}) {
    Harness h(64, 4, config(64, 8, caching));
    h.add(1, concat(system, tokens(5, 1)), 3);
    ASSERT_TRUE(h.run_to_completion());
    const int64_t first_cost = h.runner.computed_tokens;
    h.add(2, concat(system, tokens(6, 2)), 3);
    StepSummary s = h.step();
    EXPECT_EQ(s.chunks.at(2).start, caching ? 32 : 0);
    h.add(3, concat(system, tokens(7, 3)), 3);  // while 2 holds the blocks: shared
    s = h.step();
    EXPECT_EQ(s.chunks.at(3).start, caching ? 32 : 0);
    if (caching) {
      EXPECT_EQ(h.pool.ref_count(h.sched.find(3)->table.blocks()[0]), 2);
    }
    ASSERT_TRUE(h.run_to_completion());
    h.expect_reference_outputs();
    const int64_t total = h.runner.computed_tokens;
    EXPECT_EQ(total - first_cost, caching ? (6 + 2) + (7 + 2) : (38 + 2) + (39 + 2));
    const kv::PrefixCacheStats& stats = h.pool.prefix_stats();
    EXPECT_EQ(stats.queried_tokens, caching ? 37 + 38 + 39 : 0);
    EXPECT_EQ(stats.hit_tokens, caching ? 64 : 0);
    EXPECT_EQ(h.finished.at(2).n_cached_tokens, caching ? 32 : 0);
    EXPECT_EQ(h.pool.n_free(), 64);
  }
}

TEST(Scheduler, FullyCachedPromptStillComputesItsLastBlock) {
  Harness h(16, 4, config(64));
  h.add(1, tokens(16, 0), 1);
  ASSERT_TRUE(h.run_to_completion());
  h.add(2, tokens(16, 0), 2);
  const StepSummary s = h.step();
  EXPECT_EQ(s.chunks.at(2).start, 12);  // blocks 0-2 hit; the last one holds the last token
  EXPECT_EQ(s.chunks.at(2).n, 4);
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
}

TEST(Scheduler, SiblingsShareThePromptBlocksAndCopyOnWrite) {
  Harness h(32, 4, config(64));
  const std::vector<int32_t> prompt = tokens(10, 300);  // blocks: 4 + 4 + 2 rows
  h.add(1, prompt, 6);
  h.add(2, prompt, 6, 1);
  h.add(3, prompt, 6, 1);
  StepSummary s = h.step();
  EXPECT_EQ(s.chunks.size(), 1u);  // the siblings wait for the prompt
  EXPECT_EQ(s.chunks.at(1).n, 10);
  s = h.step();
  EXPECT_EQ(s.chunks.at(1).start, 10);
  for (int64_t id : {2, 3}) {
    EXPECT_EQ(s.chunks.at(id).start, 9);  // only the last prompt token, for its logits
    EXPECT_EQ(s.chunks.at(id).n, 1);
  }
  EXPECT_EQ(s.n_copies, 2u);  // the shared partial block, once per sibling that writes
  const int32_t first_block = h.sched.find(1)->table.blocks()[0];
  EXPECT_EQ(h.pool.ref_count(first_block), 3);
  EXPECT_EQ(h.sched.find(2)->table.blocks()[1], h.sched.find(1)->table.blocks()[1]);
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
  EXPECT_NE(h.expected.at(2), h.expected.at(3));  // distinct samples from one prompt
  EXPECT_EQ(h.runner.computed_tokens, (10 + 5) + 2 * (1 + 5));
  EXPECT_EQ(h.finished.at(2).n_cached_tokens, 9);
  EXPECT_EQ(h.pool.n_free(), 32);
}

TEST(Scheduler, SiblingOfAFinishedRequestFallsBackToThePrefixCache) {
  Harness h(32, 4, config(64));
  const std::vector<int32_t> prompt = tokens(10, 300);
  h.add(1, prompt, 1);
  h.add(2, prompt, 3, 1);
  h.step();  // 1 computes its prompt and finishes (max_tokens 1)
  EXPECT_EQ(h.sched.find(1), nullptr);
  const StepSummary s = h.step();
  EXPECT_EQ(s.chunks.at(2).start, 8);  // two cached blocks
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
}

TEST(Scheduler, StopsWhenToldOrAtMaxTokens) {
  Harness h(32, 4, config(64));
  h.runner.stop = [](int64_t id, int32_t token) { return id == 1 && token % 3 == 0; };
  h.add(1, tokens(4, 0), 40);
  h.add(2, tokens(4, 0), 7);
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
  const FinishedRequest& stopped = h.finished.at(1);
  ASSERT_FALSE(stopped.output.empty());
  EXPECT_EQ(stopped.reason, FinishReason::kStop);
  EXPECT_EQ(stopped.output.back() % 3, 0);
  EXPECT_EQ(h.finished.at(2).reason, FinishReason::kLength);
  EXPECT_EQ(h.finished.at(2).output.size(), 7u);

  h.add(3, tokens(4, 0), 5);  // finished without a token (e.g. a stop string matched)
  const std::vector<StepResult> results = {{3, -1, true}};
  h.sched.schedule();
  h.sched.update(results);
  std::vector<FinishedRequest> done;
  h.sched.drain_finished(done);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].reason, FinishReason::kStop);
  EXPECT_TRUE(done[0].output.empty());
}

TEST(Scheduler, DecodeStepsAllocateNothing) {
  kv::BlockPool pool(64);
  Scheduler s(pool, 4, config(64));
  for (int64_t id = 0; id < 4; ++id) s.add(id, tokens(5, static_cast<int32_t>(id)), 100);
  std::vector<StepResult> results;
  results.reserve(4);
  const auto run_step = [&](int32_t token) {
    const SchedulerOutput& out = s.schedule();
    results.clear();
    for (const ScheduledChunk& c : out.chunks) results.push_back({c.request_id, token, false});
    s.update(results);
  };
  run_step(1);  // admission (queue bookkeeping may allocate)
  const int64_t before = testlib::allocation_count();
  for (int32_t i = 0; i < 60; ++i) run_step(2 + i % 7);  // crosses many block boundaries
  EXPECT_EQ(testlib::allocation_count(), before);
  EXPECT_EQ(s.find(0)->n_output(), 61);
  EXPECT_GT(pool.n_cached(), 4);
}

TEST(Scheduler, RejectsBadRequests) {
  kv::BlockPool pool(4);
  Scheduler s(pool, 4, config(64));
  s.add(1, tokens(4, 0), 4);
  EXPECT_THROW(s.add(1, tokens(4, 0), 4), Error);      // duplicate id
  EXPECT_THROW(s.add(2, {}, 4), Error);                // empty prompt
  EXPECT_THROW(s.add(3, tokens(4, 0), 0), Error);      // max_tokens < 1
  EXPECT_THROW(s.add(4, tokens(250, 0), 7), Error);    // beyond max_model_len 256
  EXPECT_THROW(s.add(5, tokens(10, 0), 8), Error);     // 17 rows: 5 blocks > 4
  s.add(6, tokens(10, 0), 7);                          // 16 rows: fits
  EXPECT_THROW(s.add(7, tokens(4, 0), 4, 99), Error);  // unknown sibling
  EXPECT_THROW(s.add(8, tokens(4, 1), 4, 1), Error);   // different prompt
  EXPECT_THROW(s.add(9, tokens(5, 0), 4, 1), Error);   // longer prompt
  EXPECT_EQ(s.n_waiting(), 2);
  EXPECT_THROW(Scheduler(pool, 0, config(64)), Error);
  EXPECT_THROW(Scheduler(pool, 4, config(0)), Error);
}

TEST(Scheduler, UpdateRejectsMismatchedResultsWithoutChangingState) {
  Harness h(16, 4, config(4));
  h.add(1, tokens(3, 0), 5);
  h.add(2, tokens(6, 0), 5);  // gets 1 token of its prompt: no sample due
  const SchedulerOutput& out = h.sched.schedule();
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_THROW(h.sched.schedule(), Error);  // the step is in flight
  const std::vector<StepResult> none;
  const std::vector<StepResult> extra = {{1, 5, false}, {2, 5, false}};
  const std::vector<StepResult> twice = {{1, 5, false}, {1, 6, false}};
  const std::vector<StepResult> negative = {{1, -1, false}};
  EXPECT_THROW(h.sched.update(none), Error);
  EXPECT_THROW(h.sched.update(extra), Error);
  EXPECT_THROW(h.sched.update(twice), Error);
  EXPECT_THROW(h.sched.update(negative), Error);
  EXPECT_EQ(h.sched.find(1)->num_computed_tokens, 0);
  h.sched.update(h.runner.run(out));
  EXPECT_EQ(h.sched.find(1)->num_computed_tokens, 3);
  EXPECT_EQ(h.sched.find(2)->num_computed_tokens, 1);
  EXPECT_THROW(h.sched.update(extra), Error);  // nothing in flight
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
}

}  // namespace
}  // namespace quanta
