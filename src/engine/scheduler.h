// Continuous-batching scheduler: a pure state machine over requests and a KV block pool. Each
// step it says which requests compute how many tokens (decodes and prompt chunks under one
// token budget), which block copies to do first, and which requests it preempted.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/request.h"
#include "kv/block_pool.h"

namespace quanta {

// NOTE: design (vLLM v1's scheduler).
// - No phases: a request needs n_tokens() - num_computed_tokens tokens computed; a decode
//   needs 1. schedule() walks the running requests oldest first (arrival order) and gives
//   each decode 1 token, then each unfinished prompt a chunk of what budget remains after
//   reserving 1 token for every decode behind it; then, if nobody was preempted this step,
//   admits waiting requests in queue order (chunked prefill with the remaining budget).
// - Blocks: a running request whose tokens do not fit in the free blocks preempts the newest
//   running request (largest arrival; never one already scheduled this step, since the walk
//   goes oldest first), repeatedly, down to itself. A prompt chunk is first shrunk to what the
//   free blocks hold, so a chunk preempts only when it cannot progress at all. A preempted
//   request frees its blocks (cached ones stay in the prefix cache) and goes back to the front
//   of the queue with num_computed_tokens = 0, its generated tokens kept for recomputation.
// - Admission is first-come first-served and stops at the first request that does not fit:
//   it needs free blocks for all of its known tokens (less prefix-cache hits) plus
//   watermark_blocks (unless nothing runs), and a running slot. Only its first chunk is
//   allocated now.
// - Prefix caching: at admission the longest run of cached full blocks of tokens[0, n - 1) is
//   taken from the pool and counts as computed (the last token is always computed, for its
//   logits). After each step, blocks that became full are registered under their hash.
// - n > 1: a request added with fork_of = a sibling with the same prompt waits until the
//   sibling has computed n_prompt - 1 tokens, then shares its blocks for them and computes
//   only the last prompt token, copying the shared partial block on write. While it waits,
//   later requests may be admitted ahead of it.
// - Speculative decoding: set_draft() after update() gives a request draft tokens for the
//   next step. A decode with drafts gets 1 + k tokens (its last token, then d_1..d_k), k cut to
//   the budget left after reserving 1 token per decode behind it, to the room its table has
//   without preempting anyone, and to max_tokens (the step yields at most k + 1 tokens).
//   Drafts never preempt: what does not fit is dropped. The result names how many drafts were
//   accepted (j): d_1..d_j and the result's token are appended, num_computed_tokens becomes
//   start + 1 + j and the block table is truncated there, so the rejected rows are rewritten
//   later. The forward pass needs logits at all 1 + k positions of such a chunk.
// - Pure: no clocks, threads or model. The caller runs the step (block copies first, then one
//   forward pass over the chunks, then sampling) and reports tokens with update().
struct SchedulerConfig {
  int32_t max_batch_tokens = 512;  // tokens computed per step, all requests together
  int32_t max_running = 16;        // requests holding blocks at once
  int32_t max_model_len = 2048;    // prompt + generated tokens of one request
  int32_t watermark_blocks = 0;    // free blocks admission leaves for running requests to grow
  bool prefix_caching = true;
};

// One request's share of a step: compute positions [start, start + n_tokens) of its tokens.
struct ScheduledChunk {
  int64_t request_id = -1;
  int32_t start = 0;  // == num_computed_tokens before the step
  int32_t n_tokens = 0;
  const int32_t* tokens = nullptr;        // [n_tokens] token ids at those positions
  const kv::BlockTable* table = nullptr;  // holds room for every position < start + n_tokens
  bool sample = false;  // the chunk ends at the request's last token: sample from its logits
  // Draft tokens at the end of the chunk (tokens[1..n_draft]); logits are needed at every
  // position of the chunk, row i verifying tokens[i + 1]. 0 for a plain chunk.
  int32_t n_draft = 0;
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;  // running requests oldest first, then admissions
  std::vector<kv::BlockCopy> copies;   // copy src -> dst block rows, in order, before the pass
  std::vector<int64_t> preempted;      // request ids preempted this step
  int32_t n_tokens = 0;                // sum of chunks' n_tokens <= max_batch_tokens
};

// The outcome of a sampled chunk: its first n_accepted drafts, then `token`, are appended.
// token < 0 is allowed only with finished (stop without appending a token).
struct StepResult {
  int64_t request_id = -1;
  int32_t token = -1;
  bool finished = false;   // stop here (end-of-generation token, stop string: decided outside)
  int32_t n_accepted = 0;  // drafts accepted, 0..chunk's n_draft
};

struct FinishedRequest {
  int64_t id = -1;
  FinishReason reason = FinishReason::kNone;
  int32_t n_prompt = 0;
  int32_t n_cached_tokens = 0;
  int32_t n_preemptions = 0;
  std::vector<int32_t> output;
};

class Scheduler {
 public:
  // `pool` (the KV cache's) must outlive the scheduler and is used by it alone.
  Scheduler(kv::BlockPool& pool, int32_t block_size, const SchedulerConfig& config);
  ~Scheduler();  // releases the blocks of unfinished requests
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request. Throws quanta::Error for a duplicate id, an empty prompt, max_tokens
  // < 1, prompt + max_tokens > max_model_len, a request the whole pool cannot hold, or a
  // fork_of naming no unfinished request with the same prompt.
  void add(int64_t id, std::vector<int32_t> prompt, int32_t max_tokens, int64_t fork_of = -1);
  // Marks a request for cancellation; the next schedule() finishes it and frees its blocks.
  // False when no unfinished request has this id.
  bool cancel(int64_t id);

  // Plans the next step. Throws quanta::Error when the previous step's update() is missing.
  // The output and the pointers in it stay valid until update().
  const SchedulerOutput& schedule();
  // Applies the step just scheduled: every chunk's tokens become computed, and each chunk with
  // `sample` gets exactly one result (any order). Throws quanta::Error (and changes nothing)
  // for a missing, extra or duplicate result.
  void update(std::span<const StepResult> results);
  // Draft tokens for an unfinished request's next step (replacing any earlier ones; empty
  // clears them). Only a decode uses them; they are dropped after one schedule(). Throws
  // quanta::Error for an unknown id or a step in flight.
  void set_draft(int64_t id, std::span<const int32_t> draft);
  // Moves out the requests finished since the last call.
  void drain_finished(std::vector<FinishedRequest>& out);

  bool has_unfinished() const { return !requests_.empty(); }
  int32_t n_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t n_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  // An unfinished request, or null.
  const Request* find(int64_t id) const;
  const std::vector<Request*>& running() const { return running_; }  // arrival order
  const std::deque<Request*>& waiting() const { return waiting_; }   // queue order
  const SchedulerConfig& config() const { return config_; }
  const kv::BlockPool& pool() const { return pool_; }
  int32_t block_size() const { return block_size_; }

 private:
  enum class ForkPlan { kNone, kWait, kShare };

  Request* find_mutable(int64_t id);
  void apply_cancellations();
  void schedule_running(int32_t& budget);
  void admit_waiting(int32_t& budget);
  bool try_admit(Request& r, ForkPlan plan, Request* parent, int32_t& budget);
  ForkPlan fork_plan(Request& r, Request** parent);
  int32_t room(const Request& r) const;
  void add_chunk(Request& r, int32_t n, int32_t n_draft = 0);
  int32_t draft_limit(const Request& r) const;
  void preempt(Request& victim);
  void finish(Request& r, FinishReason reason);
  void validate_results(std::span<const StepResult> results);
  void apply_result(Request& r, const StepResult& result);
  void complete_chunk(Request& r, const ScheduledChunk& chunk);
  void insert_running(Request& r);
  void cache_computed_blocks(Request& r);

  kv::BlockPool& pool_;
  int32_t block_size_;
  SchedulerConfig config_;
  int64_t next_arrival_ = 0;
  int64_t step_ = 0;
  bool in_flight_ = false;  // a step with chunks awaits update()

  std::unordered_map<int64_t, std::unique_ptr<Request>> requests_;  // unfinished, by id
  std::vector<Request*> running_;                                   // sorted by arrival
  std::deque<Request*> waiting_;     // preempted at the front, then arrivals in order
  std::vector<int64_t> cancels_;     // ids given to cancel() since the last step
  std::vector<Request*> scheduled_;  // [chunks] the request of each chunk of out_
  std::vector<FinishedRequest> finished_;
  SchedulerOutput out_;
};

}  // namespace quanta
