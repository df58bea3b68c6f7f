// Scheduler test support. FakeRunner: a fake model whose "KV cache" stores one word per token
// slot (block * block_size + row) encoding (token, position); a sampled token is a hash of the
// request id and every word read back through the block table. So a request's outputs equal
// the reference (the same hash over its true token sequence) only if its block table, the
// prefix-cache hits and the copy-on-write copies gave it exactly its own rows. check_step():
// the invariants every step must keep. Harness: pool + scheduler + runner + references.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "engine/scheduler.h"

namespace quanta::testing {

inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline constexpr int32_t kFakeVocab = 1000;

// The word a slot holds once (token, pos) is computed.
inline uint64_t fake_row(int32_t token, int32_t pos) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(token)) << 32 | static_cast<uint32_t>(pos)) +
         1;
}

// The token a request samples after reading words rows[0..n) (fold order = position order).
class TokenHash {
 public:
  explicit TokenHash(int64_t request_id) : h_(mix64(static_cast<uint64_t>(request_id))) {}
  void add(uint64_t row) { h_ = mix64(h_ ^ row); }
  int32_t token() const { return static_cast<int32_t>(h_ % kFakeVocab); }

 private:
  uint64_t h_;
};

// Whether the fake model stops a request at `token` (like an end-of-generation token).
using StopRule = std::function<bool(int64_t request_id, int32_t token)>;

// What an unbatched, unpreempted run of the request produces.
inline std::vector<int32_t> reference_output(int64_t id, std::vector<int32_t> tokens,
                                             int32_t max_tokens, const StopRule& stop) {
  const size_t n_prompt = tokens.size();
  while (tokens.size() - n_prompt < static_cast<size_t>(max_tokens)) {
    TokenHash h(id);
    for (size_t p = 0; p < tokens.size(); ++p) h.add(fake_row(tokens[p], static_cast<int32_t>(p)));
    tokens.push_back(h.token());
    if (stop && stop(id, h.token())) break;
  }
  return std::vector<int32_t>(tokens.begin() + static_cast<long>(n_prompt), tokens.end());
}

class FakeRunner {
 public:
  FakeRunner(const kv::BlockPool& pool, int32_t block_size)
      : pool_(pool),
        block_size_(block_size),
        slots_(static_cast<size_t>(pool.n_blocks()) * block_size, 0) {}

  StopRule stop;
  int64_t computed_tokens = 0;  // all chunks' tokens so far
  int64_t copied_blocks = 0;
  int64_t drafted_tokens = 0;   // drafts verified
  int64_t accepted_drafts = 0;  // of them accepted

  // Runs one step: block copies, then every chunk's rows written, then sampling.
  std::vector<StepResult> run(const SchedulerOutput& out) {
    for (const kv::BlockCopy& c : out.copies) {
      for (int32_t r = 0; r < block_size_; ++r) slots_[slot(c.dst, r)] = slots_[slot(c.src, r)];
      ++copied_blocks;
    }
    for (const ScheduledChunk& chunk : out.chunks) write(chunk);
    std::vector<StepResult> results;
    for (const ScheduledChunk& chunk : out.chunks) {
      if (!chunk.sample) continue;
      TokenHash h(chunk.request_id);
      const int32_t end = chunk.start + chunk.n_tokens - chunk.n_draft;
      for (int32_t p = 0; p < end; ++p) h.add(slots_[slot_of(*chunk.table, p)]);
      StepResult res;
      res.request_id = chunk.request_id;
      res.token = h.token();
      res.finished = stop && stop(chunk.request_id, res.token);
      // Greedy verification of drafts: d_{i+1} is accepted while it equals the token the
      // model gives after position start + i.
      for (int32_t i = 0; i < chunk.n_draft && !res.finished; ++i) {
        if (chunk.tokens[i + 1] != res.token) break;
        ++res.n_accepted;
        ++accepted_drafts;
        h.add(slots_[slot_of(*chunk.table, end + i)]);
        res.token = h.token();
        res.finished = stop && stop(chunk.request_id, res.token);
      }
      drafted_tokens += chunk.n_draft;
      results.push_back(res);
    }
    return results;
  }

 private:
  size_t slot(int32_t block, int32_t row) const {
    return static_cast<size_t>(block) * block_size_ + row;
  }
  size_t slot_of(const kv::BlockTable& table, int32_t pos) const {
    return slot(table.blocks()[pos / block_size_], pos % block_size_);
  }
  void write(const ScheduledChunk& chunk) {
    EXPECT_GE(chunk.table->n_tokens(), chunk.start + chunk.n_tokens);
    for (int32_t i = 0; i < chunk.n_tokens; ++i) {
      const int32_t pos = chunk.start + i;
      const int32_t block = chunk.table->blocks()[pos / block_size_];
      // A row may only be written into a block the request holds alone and that the prefix
      // cache does not serve to others.
      EXPECT_EQ(pool_.ref_count(block), 1) << "request " << chunk.request_id << " pos " << pos;
      EXPECT_FALSE(pool_.is_cached(block)) << "request " << chunk.request_id << " pos " << pos;
      slots_[slot_of(*chunk.table, pos)] = fake_row(chunk.tokens[i], pos);
    }
    computed_tokens += chunk.n_tokens;
  }

  const kv::BlockPool& pool_;
  int32_t block_size_;
  std::vector<uint64_t> slots_;  // [n_blocks * block_size]
};

// Invariants of a freshly planned step (before it runs).
inline void check_step(const Scheduler& s, const SchedulerOutput& out) {
  const SchedulerConfig& cfg = s.config();
  const kv::BlockPool& pool = s.pool();
  int32_t total = 0;
  std::set<int64_t> ids;
  for (const ScheduledChunk& c : out.chunks) {
    total += c.n_tokens;
    ASSERT_TRUE(ids.insert(c.request_id).second) << "request scheduled twice";
    const Request* r = s.find(c.request_id);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->status, RequestStatus::kRunning);
    EXPECT_GE(c.n_tokens, 1);
    EXPECT_EQ(c.start, r->num_computed_tokens);
    EXPECT_EQ(c.table, &r->table);
    EXPECT_EQ(c.table->n_tokens(), c.start + c.n_tokens);
    if (c.n_draft > 0) {  // a decode with drafts: its last token, then d_1..d_k
      EXPECT_EQ(c.start + 1, r->n_tokens());
      EXPECT_EQ(c.n_tokens, 1 + c.n_draft);
      EXPECT_EQ(c.tokens[0], r->tokens.back());
      EXPECT_TRUE(c.sample);
      EXPECT_LE(r->n_output() + c.n_draft + 1, r->max_tokens) << "could over-generate";
    } else {
      EXPECT_EQ(c.tokens, r->tokens.data() + c.start);
      EXPECT_EQ(c.sample, c.start + c.n_tokens == r->n_tokens());
    }
  }
  EXPECT_EQ(total, out.n_tokens);
  EXPECT_LE(out.n_tokens, cfg.max_batch_tokens);
  EXPECT_LE(s.n_running(), cfg.max_running);
  // Decodes first: a running request left out means the budget ran out (or blocks did).
  for (const Request* r : s.running()) {
    if (ids.count(r->id) == 0) {
      EXPECT_TRUE(out.n_tokens == cfg.max_batch_tokens || !out.preempted.empty())
          << "request " << r->id << " left out with budget to spare";
    }
  }
  EXPECT_TRUE(
      std::is_sorted(s.running().begin(), s.running().end(),
                     [](const Request* a, const Request* b) { return a->arrival < b->arrival; }));
  // Every reference to a block comes from one running table, at most once per table.
  std::map<int32_t, int32_t> refs;
  for (const Request* r : s.running()) {
    std::set<int32_t> own(r->table.blocks().begin(), r->table.blocks().end());
    EXPECT_EQ(own.size(), r->table.blocks().size()) << "block twice in request " << r->id;
    for (int32_t b : own) ++refs[b];
  }
  for (const Request* r : s.waiting()) {
    EXPECT_EQ(r->table.n_blocks(), 0) << "waiting request " << r->id << " holds blocks";
    EXPECT_EQ(r->num_computed_tokens, 0);
  }
  for (int32_t b = 0; b < pool.n_blocks(); ++b) {
    const auto it = refs.find(b);
    ASSERT_EQ(pool.ref_count(b), it == refs.end() ? 0 : it->second) << "block " << b;
  }
  EXPECT_EQ(pool.n_free(), pool.n_blocks() - static_cast<int32_t>(refs.size()));
  pool.check_consistency();
}

// One step as the tests see it: what each request got.
struct StepSummary {
  struct Chunk {
    int32_t start = 0;
    int32_t n = 0;
    bool sample = false;
  };
  std::map<int64_t, Chunk> chunks;
  std::vector<int64_t> preempted;
  size_t n_copies = 0;
  int32_t n_tokens = 0;
  bool has(int64_t id) const { return chunks.count(id) != 0; }
};

struct Harness {
  Harness(int32_t n_blocks, int32_t block_size, const SchedulerConfig& config)
      : pool(n_blocks), sched(pool, block_size, config), runner(pool, block_size) {}

  kv::BlockPool pool;
  Scheduler sched;
  FakeRunner runner;
  std::map<int64_t, std::vector<int32_t>> expected;  // reference outputs
  std::map<int64_t, FinishedRequest> finished;

  void add(int64_t id, const std::vector<int32_t>& prompt, int32_t max_tokens,
           int64_t fork_of = -1) {
    sched.add(id, prompt, max_tokens, fork_of);
    expected[id] = reference_output(id, prompt, max_tokens, runner.stop);
  }

  StepSummary step() {
    const SchedulerOutput& out = sched.schedule();
    check_step(sched, out);
    StepSummary sum;
    for (const ScheduledChunk& c : out.chunks)
      sum.chunks[c.request_id] = {c.start, c.n_tokens, c.sample};
    sum.preempted = out.preempted;
    sum.n_copies = out.copies.size();
    sum.n_tokens = out.n_tokens;
    const std::vector<StepResult> results = runner.run(out);
    sched.update(results);
    std::vector<FinishedRequest> done;
    sched.drain_finished(done);
    for (FinishedRequest& f : done) finished[f.id] = std::move(f);
    return sum;
  }

  // Steps until nothing is left; false if that takes more than max_steps.
  bool run_to_completion(int max_steps = 10000) {
    for (int i = 0; i < max_steps && sched.has_unfinished(); ++i) step();
    return !sched.has_unfinished();
  }

  // Every finished, uncancelled request produced its reference output.
  void expect_reference_outputs() const {
    for (const auto& [id, f] : finished) {
      if (f.reason == FinishReason::kCancelled) continue;
      EXPECT_EQ(f.output, expected.at(id)) << "request " << id;
    }
  }
};

}  // namespace quanta::testing
