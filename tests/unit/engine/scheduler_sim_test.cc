// Randomized scheduler simulation with the fake model: random arrivals (shared system prompts,
// sibling groups), lengths, stops and cancellations over thousands of steps, with the step
// invariants checked every step (budget, block references, free-list consistency, writes only
// into unshared blocks); at the end every request has finished with its reference output (a
// prefix of it when cancelled) and every block is free.
#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "engine/scheduler.h"
#include "scheduler_test_util.h"

namespace quanta {
namespace {

struct SimCase {
  const char* name;
  int32_t n_blocks;
  int32_t block_size;
  int32_t max_batch_tokens;
  int32_t max_running;
  int32_t watermark_blocks;
  bool prefix_caching;
  uint32_t seed;
  bool tight;  // expected to preempt
};

void PrintTo(const SimCase& c, std::ostream* os) {
  *os << c.name;
}

class SchedulerSim : public ::testing::TestWithParam<SimCase> {};

std::vector<int32_t> random_prompt(std::mt19937& rng,
                                   const std::vector<std::vector<int32_t>>& systems) {
  std::vector<int32_t> p;
  if (rng() % 2 == 0) p = systems[rng() % systems.size()];
  const int32_t tail = 1 + static_cast<int32_t>(rng() % 40);
  for (int32_t i = 0; i < tail; ++i) p.push_back(static_cast<int32_t>(rng() % testing::kFakeVocab));
  return p;
}

TEST_P(SchedulerSim, RandomTrafficKeepsInvariantsAndEveryRequestFinishes) {
  const SimCase& c = GetParam();
  SchedulerConfig cfg;
  cfg.max_batch_tokens = c.max_batch_tokens;
  cfg.max_running = c.max_running;
  cfg.max_model_len = 256;
  cfg.watermark_blocks = c.watermark_blocks;
  cfg.prefix_caching = c.prefix_caching;
  testing::Harness h(c.n_blocks, c.block_size, cfg);
  h.runner.stop = [](int64_t id, int32_t token) { return id % 4 == 0 && token % 25 == 0; };
  std::mt19937 rng(c.seed);
  const std::vector<std::vector<int32_t>> systems = {
      std::vector<int32_t>(8, 7), std::vector<int32_t>(20, 11), std::vector<int32_t>(33, 13)};

  constexpr int kArrivalSteps = 3000;
  int64_t next_id = 1;
  int64_t n_preempted = 0, n_copies = 0;
  for (int step = 0; step < kArrivalSteps; ++step) {
    if (rng() % 100 < 30) {
      const std::vector<int32_t> prompt = random_prompt(rng, systems);
      const int32_t group = rng() % 100 < 15 ? 2 + static_cast<int32_t>(rng() % 2) : 1;
      const int64_t first = next_id;
      for (int32_t k = 0; k < group; ++k) {
        const int32_t max_tokens = 1 + static_cast<int32_t>(rng() % 40);
        h.add(next_id, prompt, max_tokens, k == 0 ? -1 : first);
        ++next_id;
      }
    }
    if (rng() % 100 < 3) {  // cancel a random unfinished request
      std::vector<int64_t> live;
      for (const Request* r : h.sched.running()) live.push_back(r->id);
      for (const Request* r : h.sched.waiting()) live.push_back(r->id);
      if (!live.empty()) {
        EXPECT_TRUE(h.sched.cancel(live[rng() % live.size()]));
      }
    }
    const testing::StepSummary s = h.step();
    n_preempted += static_cast<int64_t>(s.preempted.size());
    n_copies += static_cast<int64_t>(s.n_copies);
    if (::testing::Test::HasFailure()) FAIL() << "at step " << step;
  }
  ASSERT_TRUE(h.run_to_completion(20000));

  EXPECT_EQ(static_cast<int64_t>(h.finished.size()), next_id - 1);
  int n_cancelled = 0;
  for (const auto& [id, f] : h.finished) {
    const std::vector<int32_t>& want = h.expected.at(id);
    if (f.reason == FinishReason::kCancelled) {
      ++n_cancelled;
      ASSERT_LE(f.output.size(), want.size());
      EXPECT_TRUE(std::equal(f.output.begin(), f.output.end(), want.begin())) << "request " << id;
    } else {
      EXPECT_EQ(f.output, want) << "request " << id;
    }
  }
  EXPECT_GT(n_cancelled, 0);
  EXPECT_GT(n_copies, 0);
  if (c.tight) {
    EXPECT_GT(n_preempted, 0);
  }
  if (c.prefix_caching) {
    EXPECT_GT(h.pool.prefix_stats().hit_tokens, 0);
  }
  EXPECT_EQ(h.pool.n_free(), h.pool.n_blocks());
  h.pool.check_consistency();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SchedulerSim,
    ::testing::Values(SimCase{"tight_cached", 48, 4, 32, 8, 0, true, 1, true},
                      SimCase{"tight_uncached", 48, 4, 32, 8, 0, false, 1, true},
                      SimCase{"watermark", 24, 8, 16, 4, 2, true, 2, true},
                      SimCase{"roomy", 200, 16, 64, 16, 0, true, 3, false}),
    [](const ::testing::TestParamInfo<SimCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace quanta
