// Scheduler speculative decoding with the fake model: drafts scheduled after the last token,
// cut to the budget, room and max_tokens, accepted prefixes kept and rejected rows rolled back.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "scheduler_test_util.h"

namespace quanta::testing {
namespace {

std::vector<int32_t> prompt_of(int32_t n, int32_t seed) {
  std::vector<int32_t> p(n);
  for (int32_t i = 0; i < n; ++i) p[i] = (seed * 31 + i * 7) % kFakeVocab;
  return p;
}

// Gives every running decode a draft of `k` tokens taken from its reference output, the
// token at index `wrong_at` (if < k) replaced by a wrong one.
void set_oracle_drafts(Harness& h, int32_t k, int32_t wrong_at) {
  for (const Request* r : h.sched.running()) {
    const std::vector<int32_t>& ref = h.expected.at(r->id);
    std::vector<int32_t> draft;
    for (int32_t i = 0; i < k && r->n_output() + i < static_cast<int32_t>(ref.size()); ++i) {
      const int32_t t = ref[r->n_output() + i];
      draft.push_back(i == wrong_at ? (t + 1) % kFakeVocab : t);
    }
    h.sched.set_draft(r->id, draft);
  }
}

TEST(SchedulerSpec, OracleDraftsGiveTheReferenceOutputsInFewerSteps) {
  SchedulerConfig cfg;
  cfg.max_batch_tokens = 24;
  cfg.max_running = 4;
  cfg.max_model_len = 128;
  for (const int32_t wrong_at : {0, 2, 5, 100}) {
    Harness h(48, 4, cfg);
    for (int64_t id = 0; id < 4; ++id) h.add(id, prompt_of(5 + 3 * id, id), 30);
    int steps = 0;
    for (; steps < 1000 && h.sched.has_unfinished(); ++steps) {
      h.step();
      set_oracle_drafts(h, 6, wrong_at);
    }
    ASSERT_FALSE(h.sched.has_unfinished());
    h.expect_reference_outputs();
    for (const auto& [id, f] : h.finished) EXPECT_EQ(f.output.size(), 30u) << id;
    EXPECT_GT(h.runner.drafted_tokens, 0);
    if (wrong_at == 0) {
      EXPECT_EQ(h.runner.accepted_drafts, 0);
    }
    if (wrong_at == 100) {
      EXPECT_EQ(h.runner.accepted_drafts, h.runner.drafted_tokens);
      EXPECT_LT(steps, 20) << "drafts of 6 should take ~5 decode steps per 30 tokens";
    }
    EXPECT_EQ(h.pool.n_used(), 0);
  }
}

TEST(SchedulerSpec, DraftsSurvivePreemptionAndRecomputation) {
  SchedulerConfig cfg;
  cfg.max_batch_tokens = 24;
  cfg.max_running = 4;
  cfg.max_model_len = 128;
  for (const int32_t wrong_at : {1, 100}) {
    Harness h(14, 4, cfg);  // too few blocks for all four: the newest get preempted
    for (int64_t id = 0; id < 4; ++id) h.add(id, prompt_of(5 + 3 * id, id), 30);
    size_t preempted = 0;
    for (int steps = 0; steps < 1000 && h.sched.has_unfinished(); ++steps) {
      preempted += h.step().preempted.size();
      set_oracle_drafts(h, 6, wrong_at);
    }
    ASSERT_FALSE(h.sched.has_unfinished());
    EXPECT_GT(preempted, 0u);
    h.expect_reference_outputs();
    for (const auto& [id, f] : h.finished) EXPECT_EQ(f.output.size(), 30u) << id;
    EXPECT_EQ(h.pool.n_used(), 0);
  }
}

TEST(SchedulerSpec, RejectedDraftsAreRolledBackAndTheirBlocksFreed) {
  SchedulerConfig cfg;
  cfg.max_batch_tokens = 64;
  cfg.max_model_len = 64;
  cfg.prefix_caching = false;
  Harness h(16, 4, cfg);
  h.add(0, prompt_of(4, 1), 20);
  h.step();  // prompt: 4 tokens, one block
  const Request* r = h.sched.find(0);
  ASSERT_EQ(r->num_computed_tokens, 4);
  ASSERT_EQ(r->table.n_blocks(), 1);
  const std::vector<int32_t> wrong(9, (h.expected[0][1] + 1) % kFakeVocab);
  h.sched.set_draft(0, wrong);
  const StepSummary s = h.step();
  EXPECT_EQ(s.chunks.at(0).n, 10);  // the last token and 9 drafts: 3 more blocks
  EXPECT_EQ(h.runner.accepted_drafts, 0);
  EXPECT_EQ(r->num_computed_tokens, 5);  // only the last token's row is kept
  EXPECT_EQ(r->table.n_tokens(), 5);
  EXPECT_EQ(r->table.n_blocks(), 2);
  EXPECT_EQ(h.pool.n_used(), 2);
  EXPECT_EQ(r->n_output(), 2);
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
}

// Ten draft tokens whose first is wrong, so the step's outcome is known: nothing accepted.
std::vector<int32_t> wrong_draft(const Harness& h, int64_t id) {
  const Request* r = h.sched.find(id);
  const int32_t next = h.expected.at(id)[r->n_output()];
  return std::vector<int32_t>(10, (next + 1) % kFakeVocab);
}

TEST(SchedulerSpec, DraftsAreCutToBudgetRoomAndMaxTokens) {
  SchedulerConfig cfg;
  cfg.max_batch_tokens = 6;
  cfg.max_model_len = 64;
  cfg.prefix_caching = false;
  Harness h(8, 4, cfg);
  h.add(0, prompt_of(3, 1), 26);
  h.add(1, prompt_of(3, 2), 3);
  h.step();  // both prompts
  h.sched.set_draft(0, wrong_draft(h, 0));
  h.sched.set_draft(1, wrong_draft(h, 1));
  StepSummary s = h.step();
  // Request 0: the budget of 6 less 1 for request 1's decode: 1 + 4 drafts. Request 1 (1
  // output of 3) may take 1 draft, but the budget has 1 token left: none.
  EXPECT_EQ(s.chunks.at(0).n, 5);
  EXPECT_EQ(s.chunks.at(1).n, 1);
  // Max tokens: request 1 has 2 outputs of 3, so no draft fits.
  h.sched.set_draft(1, wrong_draft(h, 1));
  s = h.step();
  EXPECT_EQ(s.chunks.at(1).n, 1);
  EXPECT_EQ(h.finished.count(1), 1u);
  EXPECT_EQ(h.finished.at(1).output.size(), 3u);
  // Drafts are used once: without a new set_draft the next step is a plain decode.
  s = h.step();
  EXPECT_EQ(s.chunks.at(0).n, 1);
  // Room: request 2's 18 prompt tokens leave request 0 (10 rows computed in 3 blocks) only
  // the 2 free rows of its last block, and no free block.
  h.add(2, prompt_of(18, 3), 4);
  while (h.sched.find(2)->num_computed_tokens < 18) h.step();
  const Request* r0 = h.sched.find(0);
  ASSERT_EQ(r0->num_computed_tokens, 10);
  ASSERT_EQ(h.pool.n_free(), 0);
  h.sched.set_draft(0, wrong_draft(h, 0));
  s = h.step();
  EXPECT_TRUE(s.preempted.empty()) << "drafts must never preempt";
  EXPECT_EQ(s.chunks.at(0).n, 2);
  EXPECT_EQ(s.chunks.at(2).n, 1);
  ASSERT_TRUE(h.run_to_completion());
  h.expect_reference_outputs();
}

TEST(SchedulerSpec, StopOnAnAcceptedDraftEndsThere) {
  SchedulerConfig cfg;
  cfg.max_model_len = 64;
  Harness h(16, 4, cfg);
  h.add(0, prompt_of(4, 5), 20);
  h.step();
  const std::vector<int32_t>& ref = h.expected[0];
  const std::vector<int32_t> draft(ref.begin() + 1, ref.begin() + 6);
  h.sched.set_draft(0, draft);
  const SchedulerOutput& out = h.sched.schedule();
  ASSERT_EQ(out.chunks.size(), 1u);
  ASSERT_EQ(out.chunks[0].n_draft, 5);
  StepResult res;
  res.request_id = 0;
  res.n_accepted = 6;  // more than the drafts: refused, nothing changes
  EXPECT_THROW(h.sched.update(std::span<const StepResult>(&res, 1)), Error);
  res.n_accepted = 3;  // d_1..d_3 accepted, and d_3 ends generation (a stop string)
  res.token = -1;
  res.finished = true;
  h.sched.update(std::span<const StepResult>(&res, 1));
  std::vector<FinishedRequest> done;
  h.sched.drain_finished(done);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].reason, FinishReason::kStop);
  EXPECT_EQ(done[0].output, std::vector<int32_t>(ref.begin(), ref.begin() + 4));
  EXPECT_EQ(h.pool.n_used(), 0);
}

TEST(SchedulerSpec, SetDraftRejectsUnknownRequestsAndSteps) {
  SchedulerConfig cfg;
  Harness h(16, 4, cfg);
  const std::vector<int32_t> draft{1, 2};
  EXPECT_THROW(h.sched.set_draft(9, draft), Error);
  h.add(0, prompt_of(4, 5), 8);
  h.sched.schedule();
  EXPECT_THROW(h.sched.set_draft(0, draft), Error);  // step in flight
}

}  // namespace
}  // namespace quanta::testing
