// Scheduler::schedule(): one step's plan. Running requests first (decodes, then prompt chunks,
// preempting the newest when blocks run out), then admission of waiting requests.
#include <algorithm>

#include "core/error.h"
#include "engine/scheduler.h"

namespace quanta {

const SchedulerOutput& Scheduler::schedule() {
  if (in_flight_) fail("scheduler: schedule() called before update() of the previous step");
  ++step_;
  out_.chunks.clear();
  out_.copies.clear();
  out_.preempted.clear();
  out_.n_tokens = 0;
  scheduled_.clear();
  apply_cancellations();
  int32_t budget = config_.max_batch_tokens;
  schedule_running(budget);
  if (out_.preempted.empty()) admit_waiting(budget);
  for (Request* r : running_) r->draft.clear();  // drafts live one step
  for (Request* r : waiting_) r->draft.clear();
  const std::vector<kv::BlockCopy>& copies = pool_.pending_copies();
  out_.copies.assign(copies.begin(), copies.end());
  pool_.clear_pending_copies();
  in_flight_ = !out_.chunks.empty();
  return out_;
}

// Tokens r's table can take without preempting anyone: the rest of its last block plus the
// free blocks (one fewer when the last block is shared and must be copied first).
int32_t Scheduler::room(const Request& r) const {
  const kv::BlockTable& t = r.table;
  const int64_t tail = static_cast<int64_t>(t.n_blocks()) * block_size_ - t.n_tokens();
  int64_t free = pool_.n_free();
  if (tail > 0 && t.blocks_to_append(pool_, 1) > 0) {  // copy-on-write needs a block
    if (free == 0) return 0;
    --free;
  }
  return static_cast<int32_t>(
      std::min<int64_t>(tail + free * block_size_, t.max_tokens() - t.n_tokens()));
}

// Drafts r may carry this step: at most k such that the k + 1 tokens the step can yield stay
// within max_tokens and the context.
int32_t Scheduler::draft_limit(const Request& r) const {
  const int32_t by_output = r.max_tokens - r.n_output() - 1;
  const int32_t by_context = config_.max_model_len - r.n_tokens() - 1;
  const int32_t k = std::min({static_cast<int32_t>(r.draft.size()), by_output, by_context});
  return std::max(k, 0);
}

void Scheduler::add_chunk(Request& r, int32_t n, int32_t n_draft) {
  QUANTA_ASSERT(n >= 1 && r.table.n_tokens() == r.num_computed_tokens + n);
  ScheduledChunk chunk;
  chunk.request_id = r.id;
  chunk.start = r.num_computed_tokens;
  chunk.n_tokens = n;
  chunk.tokens = r.tokens.data() + chunk.start;
  chunk.table = &r.table;
  chunk.sample = chunk.start + n == r.n_tokens();
  if (n_draft > 0) {  // a decode: its last token, then the drafts
    QUANTA_ASSERT(n == 1 + n_draft && chunk.start + 1 == r.n_tokens());
    r.spec_input.assign(1, r.tokens.back());
    r.spec_input.insert(r.spec_input.end(), r.draft.begin(), r.draft.begin() + n_draft);
    chunk.tokens = r.spec_input.data();
    chunk.sample = true;
    chunk.n_draft = n_draft;
  }
  r.n_draft_scheduled = n_draft;
  r.n_accepted = 0;
  r.scheduled_step = step_;
  r.awaiting_token = chunk.sample;
  out_.chunks.push_back(chunk);
  out_.n_tokens += n;
  scheduled_.push_back(&r);
}

void Scheduler::preempt(Request& victim) {
  QUANTA_ASSERT(victim.status == RequestStatus::kRunning && victim.scheduled_step != step_);
  QUANTA_ASSERT(!running_.empty() && running_.back() == &victim);
  running_.pop_back();
  victim.table.clear(pool_);
  victim.num_computed_tokens = 0;
  victim.draft.clear();
  victim.status = RequestStatus::kPreempted;
  ++victim.n_preemptions;
  waiting_.push_front(&victim);
  out_.preempted.push_back(victim.id);
}

void Scheduler::schedule_running(int32_t& budget) {
  int32_t decodes_left = 0;  // decodes not yet visited: each keeps 1 token of budget
  for (const Request* r : running_) decodes_left += r->n_tokens() - r->num_computed_tokens == 1;
  for (size_t i = 0; i < running_.size(); ++i) {
    Request& r = *running_[i];
    QUANTA_ASSERT(r.table.n_tokens() == r.num_computed_tokens);
    const int32_t remaining = r.n_tokens() - r.num_computed_tokens;
    QUANTA_ASSERT(remaining >= 1);
    const bool decode = remaining == 1;
    decodes_left -= decode;
    int32_t wanted =
        decode ? std::min(1, budget) : std::min(remaining, budget - std::min(decodes_left, budget));
    if (wanted <= 0) continue;
    if (decode) wanted += std::clamp(budget - 1 - decodes_left, 0, draft_limit(r));
    int32_t n = std::min(wanted, room(r));
    bool preempted_self = false;
    while (n == 0) {  // no room at all: preempt the newest running request
      Request& victim = *running_.back();
      if (&victim != &r && victim.n_tokens() - victim.num_computed_tokens == 1) --decodes_left;
      preempt(victim);
      if (&victim == &r) {
        preempted_self = true;
        break;
      }
      n = std::min(wanted, room(r));
    }
    if (preempted_self) break;  // r was the newest: nothing runs after it
    const bool ok = r.table.append(pool_, n);
    QUANTA_ASSERT(ok);
    add_chunk(r, n, decode ? n - 1 : 0);  // drafts that do not fit the room are dropped
    budget -= n;
  }
}

// Whether r shares a sibling's prompt blocks (n > 1), must wait for the sibling to compute
// them, or goes the usual way.
Scheduler::ForkPlan Scheduler::fork_plan(Request& r, Request** parent) {
  if (r.fork_of < 0) return ForkPlan::kNone;
  Request* sibling = find_mutable(r.fork_of);
  if (sibling == nullptr) {  // finished or cancelled: the prefix cache may still help
    r.fork_of = -1;
    return ForkPlan::kNone;
  }
  if (r.n_prompt == 1) return ForkPlan::kNone;  // nothing to share
  if (sibling->status != RequestStatus::kRunning || sibling->num_computed_tokens < r.n_prompt - 1) {
    return ForkPlan::kWait;
  }
  *parent = sibling;
  return ForkPlan::kShare;
}

void Scheduler::admit_waiting(int32_t& budget) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (budget <= 0 || n_running() >= config_.max_running) return;
    Request& r = **it;
    Request* parent = nullptr;
    const ForkPlan plan = fork_plan(r, &parent);
    if (plan == ForkPlan::kWait) {  // later requests may go ahead of it
      ++it;
      continue;
    }
    if (!try_admit(r, plan, parent, budget)) return;  // first come, first served
    it = waiting_.erase(it);
  }
}

// Admits r with its first chunk when the free blocks hold all its known tokens (less what it
// reuses) plus the watermark; false and no change otherwise.
bool Scheduler::try_admit(Request& r, ForkPlan plan, Request* parent, int32_t& budget) {
  int32_t reused_blocks = 0, reused_free = 0, shared_tokens = 0;
  if (plan == ForkPlan::kShare) {
    shared_tokens = r.n_prompt - 1;
    reused_blocks = (shared_tokens + block_size_ - 1) / block_size_;
  } else if (config_.prefix_caching) {
    // The last token is always computed (its logits are needed): look up blocks before it.
    kv::extend_block_hashes(r.block_hashes, r.tokens.data(), r.n_tokens() - 1, block_size_);
    const int32_t n_lookup = (r.n_tokens() - 1) / block_size_;
    for (; reused_blocks < n_lookup; ++reused_blocks) {
      const int32_t b = pool_.find_cached(r.block_hashes[reused_blocks]);
      if (b < 0) break;
      reused_free += pool_.ref_count(b) == 0;
    }
  }
  const int32_t n_total_blocks = (r.n_tokens() + block_size_ - 1) / block_size_;
  // A shared partial block is copied on the first write: one block more.
  const int32_t cow = plan == ForkPlan::kShare && shared_tokens % block_size_ != 0 ? 1 : 0;
  const int32_t needed = n_total_blocks - reused_blocks + cow;
  const int32_t reserve = running_.empty() ? 0 : config_.watermark_blocks;
  if (pool_.n_free() - reused_free - needed < reserve) return false;

  if (plan == ForkPlan::kShare) {
    r.table.share_prefix(pool_, parent->table, shared_tokens);
    r.num_computed_tokens = shared_tokens;
  } else if (config_.prefix_caching) {
    const int32_t hits = r.table.start_from_prefix(pool_, r.block_hashes.data(), reused_blocks);
    QUANTA_ASSERT(hits == reused_blocks);
    pool_.record_prefix_lookup(r.n_tokens(), static_cast<int64_t>(hits) * block_size_);
    r.num_computed_tokens = hits * block_size_;
  }
  if (r.n_cached_tokens < 0) r.n_cached_tokens = r.num_computed_tokens;
  const int32_t n = std::min(r.n_tokens() - r.num_computed_tokens, budget);
  const bool ok = r.table.append(pool_, n);
  QUANTA_ASSERT(ok);
  r.status = RequestStatus::kRunning;
  const auto by_arrival = [](const Request* a, const Request* b) {
    return a->arrival < b->arrival;
  };
  running_.insert(std::upper_bound(running_.begin(), running_.end(), &r, by_arrival), &r);
  add_chunk(r, n);
  budget -= n;
  return true;
}

}  // namespace quanta
