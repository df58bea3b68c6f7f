// Scheduler: request intake, cancellation, results of a step and finishing. The planning of a
// step (schedule()) is in scheduler_step.cc.
#include "engine/scheduler.h"

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace quanta {

Scheduler::Scheduler(kv::BlockPool& pool, int32_t block_size, const SchedulerConfig& config)
    : pool_(pool), block_size_(block_size), config_(config) {
  if (block_size < 1) fail("scheduler: block_size must be >= 1, got %d", block_size);
  if (config.max_batch_tokens < 1) {
    fail("scheduler: max_batch_tokens must be >= 1, got %d", config.max_batch_tokens);
  }
  if (config.max_running < 1)
    fail("scheduler: max_running must be >= 1, got %d", config.max_running);
  if (config.max_model_len < 1) {
    fail("scheduler: max_model_len must be >= 1, got %d", config.max_model_len);
  }
  if (config.watermark_blocks < 0) {
    fail("scheduler: watermark_blocks must be >= 0, got %d", config.watermark_blocks);
  }
  running_.reserve(config.max_running);
  scheduled_.reserve(config.max_running);
  out_.chunks.reserve(config.max_running);
  out_.preempted.reserve(config.max_running);
  out_.copies.reserve(config.max_running);
}

Scheduler::~Scheduler() {
  // Newest first, like preemption, so the pool's eviction order stays meaningful.
  for (auto it = running_.rbegin(); it != running_.rend(); ++it) (*it)->table.clear(pool_);
}

void Scheduler::add(int64_t id, std::vector<int32_t> prompt, int32_t max_tokens, int64_t fork_of) {
  if (requests_.count(id) != 0) fail("request %lld: duplicate id", static_cast<long long>(id));
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt == 0) fail("request %lld: empty prompt", static_cast<long long>(id));
  if (max_tokens < 1) {
    fail("request %lld: max_tokens must be >= 1, got %d", static_cast<long long>(id), max_tokens);
  }
  if (n_prompt + max_tokens > config_.max_model_len) {
    fail("request %lld: prompt (%lld tokens) + max_tokens (%d) exceeds the context (%d tokens)",
         static_cast<long long>(id), static_cast<long long>(n_prompt), max_tokens,
         config_.max_model_len);
  }
  // K/V rows are needed for every token but the last generated one.
  const int64_t blocks = (n_prompt + max_tokens - 1 + block_size_ - 1) / block_size_;
  if (blocks > pool_.n_blocks()) {
    fail("request %lld: needs %lld KV blocks, the cache has %d", static_cast<long long>(id),
         static_cast<long long>(blocks), pool_.n_blocks());
  }
  if (fork_of >= 0) {
    const Request* sibling = find(fork_of);
    if (sibling == nullptr) {
      fail("request %lld: fork_of names no unfinished request (%lld)", static_cast<long long>(id),
           static_cast<long long>(fork_of));
    }
    if (!std::equal(prompt.begin(), prompt.end(), sibling->tokens.begin(),
                    sibling->tokens.begin() + sibling->n_prompt) ||
        sibling->n_prompt != n_prompt) {
      fail("request %lld: fork_of %lld has a different prompt", static_cast<long long>(id),
           static_cast<long long>(fork_of));
    }
  }
  auto request = std::make_unique<Request>(id, next_arrival_++, std::move(prompt), max_tokens,
                                           block_size_, config_.max_model_len);
  request->fork_of = fork_of;
  waiting_.push_back(request.get());
  requests_.emplace(id, std::move(request));
}

bool Scheduler::cancel(int64_t id) {
  Request* r = find_mutable(id);
  if (r == nullptr) return false;
  if (!r->cancel_requested) {
    r->cancel_requested = true;
    cancels_.push_back(id);
  }
  return true;
}

const Request* Scheduler::find(int64_t id) const {
  const auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : it->second.get();
}

Request* Scheduler::find_mutable(int64_t id) {
  const auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : it->second.get();
}

void Scheduler::apply_cancellations() {
  for (int64_t id : cancels_) {
    Request* r = find_mutable(id);
    if (r != nullptr) finish(*r, FinishReason::kCancelled);
  }
  cancels_.clear();
}

void Scheduler::finish(Request& r, FinishReason reason) {
  r.table.clear(pool_);
  if (r.status == RequestStatus::kRunning) {
    running_.erase(std::find(running_.begin(), running_.end(), &r));
  } else {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &r));
  }
  r.status = RequestStatus::kFinished;
  r.finish_reason = reason;
  FinishedRequest done;
  done.id = r.id;
  done.reason = reason;
  done.n_prompt = r.n_prompt;
  done.n_cached_tokens = std::max(r.n_cached_tokens, 0);
  done.n_preemptions = r.n_preemptions;
  done.output.assign(r.output(), r.output() + r.n_output());
  finished_.push_back(std::move(done));
  requests_.erase(r.id);  // destroys r
}

void Scheduler::drain_finished(std::vector<FinishedRequest>& out) {
  for (FinishedRequest& f : finished_) out.push_back(std::move(f));
  finished_.clear();
}

void Scheduler::cache_computed_blocks(Request& r) {
  if (!config_.prefix_caching) return;
  kv::extend_block_hashes(r.block_hashes, r.tokens.data(), r.num_computed_tokens, block_size_);
  r.table.cache_full_blocks(pool_, r.block_hashes.data(), r.num_computed_tokens / block_size_);
}

void Scheduler::validate_results(std::span<const StepResult> results) {
  size_t n_due = 0;
  for (const Request* r : scheduled_) n_due += r->awaiting_token ? 1 : 0;
  const char* problem = nullptr;
  int64_t bad_id = -1;
  for (const StepResult& res : results) {
    Request* r = find_mutable(res.request_id);
    bad_id = res.request_id;
    if (r == nullptr || r->scheduled_step != step_ || !r->awaiting_token) {
      problem = "was not due a token this step";
    } else if (r->result_seen) {
      problem = "has two results";
    } else if (res.token < 0 && !res.finished) {
      problem = "has a negative token";
    } else if (res.n_accepted < 0 || res.n_accepted > r->n_draft_scheduled) {
      problem = "accepts more drafts than it was given";
    }
    if (problem != nullptr) break;
    r->result_seen = true;
  }
  for (const StepResult& res : results) {  // undo the marks
    Request* r = find_mutable(res.request_id);
    if (r != nullptr) r->result_seen = false;
  }
  if (problem != nullptr) {
    fail("scheduler update: request %lld %s", static_cast<long long>(bad_id), problem);
  }
  if (results.size() != n_due) {
    fail("scheduler update: %zu results for %zu sampled chunks", results.size(), n_due);
  }
}

void Scheduler::apply_result(Request& r, const StepResult& result) {
  r.awaiting_token = false;
  if (result.token >= 0) r.tokens.push_back(result.token);
  if (result.finished) {
    finish(r, FinishReason::kStop);
  } else if (r.n_output() >= r.max_tokens || r.n_tokens() >= config_.max_model_len) {
    finish(r, FinishReason::kLength);
  }
}

void Scheduler::set_draft(int64_t id, std::span<const int32_t> draft) {
  if (in_flight_) fail("scheduler set_draft: a step is in flight");
  Request* r = find_mutable(id);
  if (r == nullptr)
    fail("scheduler set_draft: no unfinished request %lld", static_cast<long long>(id));
  r->draft.assign(draft.begin(), draft.end());
}

// The chunk's tokens become computed. With drafts: the accepted ones join the request's tokens
// (their K/V rows are right), the rows of rejected ones are cut from the block table.
void Scheduler::complete_chunk(Request& r, const ScheduledChunk& chunk) {
  if (chunk.n_draft > 0) {
    const auto first = r.spec_input.begin() + 1;
    r.tokens.insert(r.tokens.end(), first, first + r.n_accepted);
    r.num_computed_tokens += 1 + r.n_accepted;
    r.table.truncate(pool_, r.num_computed_tokens);
  } else {
    r.num_computed_tokens += chunk.n_tokens;
  }
  r.n_draft_scheduled = 0;
  QUANTA_ASSERT(r.num_computed_tokens == r.table.n_tokens());
  cache_computed_blocks(r);
}

void Scheduler::update(std::span<const StepResult> results) {
  if (!in_flight_) {
    if (!results.empty()) fail("scheduler update: no step is in flight");
    return;
  }
  validate_results(results);
  for (const StepResult& res : results) find_mutable(res.request_id)->n_accepted = res.n_accepted;
  for (size_t i = 0; i < scheduled_.size(); ++i) complete_chunk(*scheduled_[i], out_.chunks[i]);
  for (const StepResult& res : results) apply_result(*find_mutable(res.request_id), res);
  scheduled_.clear();
  in_flight_ = false;
}

}  // namespace quanta
