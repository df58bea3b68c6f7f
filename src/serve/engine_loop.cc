// The engine thread: takes submissions and cancellations from the inbox, runs one scheduler
// step per iteration (block copies, one forward pass over every chunk, sampling, stop checks)
// and publishes deltas, finished choices, usage and metrics. Sleeps when there is no work.
#include <algorithm>
#include <cstdio>
#include <exception>

#include "core/error.h"
#include "core/system.h"
#include "engine/ngram.h"
#include "serve/engine_impl.h"
#include "serve/logprobs.h"

namespace quanta::serve {

namespace {

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

void EngineImpl::run() {
  try {
    while (wait_and_take_inbox()) step();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quanta engine: step failed: %s\n", e.what());
    fail_all(e.what());
  }
  publish_gauges();
}

bool EngineImpl::wait_and_take_inbox() {
  {
    std::unique_lock<std::mutex> lock(inbox_->mu);
    if (!scheduler_->has_unfinished()) {
      inbox_->cv.wait(lock, [&] {
        return !inbox_->submissions.empty() || !inbox_->cancels.empty() || inbox_->stopping;
      });
    }
    taken_.swap(inbox_->submissions);
    taken_cancels_.swap(inbox_->cancels);
    stopping_ = inbox_->stopping;
    cancel_all_ = inbox_->cancel_all;
  }
  for (Submission& s : taken_) admit(s);
  taken_.clear();
  for (int64_t id : taken_cancels_) {
    const auto it = live_.find(id);
    if (it != live_.end()) cancel_request(*it->second);
  }
  taken_cancels_.clear();
  if (cancel_all_) {
    for (auto& [id, r] : live_) cancel_request(*r);
  }
  return !(stopping_ && live_.empty());
}

void EngineImpl::admit(Submission& s) {
  auto owned = std::make_unique<LiveRequest>();
  LiveRequest& r = *owned;
  r.id = s.id;
  r.request = std::move(s.request);
  r.stream = std::move(s.stream);
  r.submitted = s.submitted;
  live_.emplace(r.id, std::move(owned));  // first, so that fail_all() sees it if add() throws
  const GenerationRequest& req = r.request;
  const int32_t n_prompt = static_cast<int32_t>(req.prompt.size());
  r.choices.reserve(req.n);
  int64_t first_id = -1;
  for (int32_t i = 0; i < req.n; ++i) {
    SamplingParams params = req.sampling;
    params.seed += static_cast<uint64_t>(i);
    const int64_t sched_id = next_sched_id_++;
    r.choices.push_back(std::make_unique<ChoiceState>(r, i, sched_id, n_vocab_, params));
    ChoiceState& c = *r.choices.back();
    // The prompt enters the penalty window, as in llama-server.
    const int32_t window = std::min(params.repeat_last_n, n_prompt);
    for (int32_t t = n_prompt - window; t < n_prompt; ++t) c.sampler.accept(req.prompt[t]);
    resolve_speculation(c, req.speculative, params);
    scheduler_->add(sched_id, req.prompt, req.max_tokens, first_id);
    if (i == 0) first_id = sched_id;
    choices_.emplace(sched_id, &c);
  }
}

// Which speculation a choice uses (SpecParams): n-gram lookup, the draft model, or none.
void EngineImpl::resolve_speculation(ChoiceState& c, const SpecParams& sp,
                                     const SamplingParams& params) {
  c.max_draft = std::min(sp.max_draft >= 0 ? sp.max_draft : options_.draft_max, kMaxSpecDraft);
  const bool use_model = sp.draft == 1 || (sp.draft < 0 && sp.ngram < 0 && drafter_ != nullptr);
  if (!use_model) {
    c.ngram = sp.ngram >= 0 ? sp.ngram : options_.lookup_ngram;
    return;
  }
  QUANTA_ASSERT(drafter_ != nullptr);
  c.ngram = 0;
  const int32_t min_draft =
      sp.min_draft >= 0 ? sp.min_draft : std::min(options_.draft_min, c.max_draft);
  c.dm = std::make_unique<DraftSeq>(n_vocab_, drafter_->block_size(), drafter_->n_ctx(), params,
                                    min_draft, c.max_draft);
}

void EngineImpl::release_draft(ChoiceState& c) {
  if (c.dm) drafter_->release(*c.dm);
}

void EngineImpl::cancel_request(LiveRequest& r) {
  if (r.cancelled) return;
  r.cancelled = true;
  for (const auto& c : r.choices) {
    if (!c->finished) scheduler_->cancel(c->sched_id);
  }
}

void EngineImpl::step() {
  const SchedulerOutput& out = scheduler_->schedule();
  const bool idle = out.chunks.empty();
  peak_used_.store(std::max(peak_used_.load(std::memory_order_relaxed), ctx_->kv().pool().n_used()),
                   std::memory_order_relaxed);
  preemptions_.fetch_add(static_cast<int64_t>(out.preempted.size()), std::memory_order_relaxed);
  for (int64_t id : out.preempted) release_draft(*choices_.at(id));  // recomputed later
  if (!idle) {
    for (const kv::BlockCopy& copy : out.copies) ctx_->kv().copy_block(copy.src, copy.dst);
    const Clock::time_point now = Clock::now();
    for (const ScheduledChunk& chunk : out.chunks) {
      LiveRequest& r = choices_.at(chunk.request_id)->owner;
      if (r.scheduled) continue;
      r.scheduled = true;
      r.queue_seconds = seconds(now - r.submitted);
      r.stream->set_queue_seconds(r.queue_seconds);
      std::lock_guard<std::mutex> lock(inbox_->mu);
      --inbox_->queued;
    }
    build_batch(out);
    models::Batch batch;
    batch.n_tokens = out.n_tokens;
    batch.tokens = tokens_.data();
    batch.positions = positions_.data();
    batch.seq = seq_.data();
    batch.want_logits = want_.data();
    batch.tables = tables_.data();
    const double t0 = now_seconds();
    const float* logits = ctx_->forward(batch);
    verify_seconds_ = now_seconds() - t0;
    metrics_.record_step(step_decode_tokens_, out.n_tokens - step_decode_tokens_, verify_seconds_);
    sample_chunks(out, logits);
    scheduler_->update(results_);
    propose_drafts();
  }
  finish_choices();
  publish_gauges();
  if (idle && scheduler_->has_unfinished()) {
    // Nothing can run now (e.g. a sibling waits for blocks): wait for news, briefly.
    std::unique_lock<std::mutex> lock(inbox_->mu);
    inbox_->cv.wait_for(lock, std::chrono::milliseconds(1),
                        [&] { return !inbox_->submissions.empty() || !inbox_->cancels.empty(); });
  }
}

void EngineImpl::build_batch(const SchedulerOutput& out) {
  int32_t k = 0;
  step_decode_tokens_ = 0;
  for (size_t i = 0; i < out.chunks.size(); ++i) {
    const ScheduledChunk& c = out.chunks[i];
    tables_[i] = c.table;
    // A decode: the sampled last token (plus drafts) of a request that has generated before.
    const Request* r = scheduler_->find(c.request_id);
    if (c.sample && c.n_tokens == 1 + c.n_draft && r != nullptr && r->n_output() > 0) {
      step_decode_tokens_ += c.n_tokens;
    }
    for (int32_t j = 0; j < c.n_tokens; ++j, ++k) {
      tokens_[k] = c.tokens[j];
      positions_[k] = c.start + j;
      seq_[k] = static_cast<int32_t>(i);
      want_[k] = c.sample && j >= c.n_tokens - 1 - c.n_draft ? 1 : 0;
    }
  }
}

void EngineImpl::sample_chunks(const SchedulerOutput& out, const float* logits) {
  results_.clear();
  int64_t row = 0;  // logit rows come in batch order, one per sampled chunk
  for (const ScheduledChunk& chunk : out.chunks) {
    if (!chunk.sample) continue;
    StepResult result;
    result.request_id = chunk.request_id;
    ChoiceState& c = *choices_.at(chunk.request_id);
    if (chunk.n_draft > 0) {
      verify_chunk(c, chunk, logits + row * n_vocab_, result);
    } else {
      sample_one(c, logits + row * n_vocab_, result);
    }
    results_.push_back(result);
    row += 1 + chunk.n_draft;
  }
}

void EngineImpl::sample_one(ChoiceState& c, const float* row, StepResult& result) {
  const int32_t token = c.sampler.sample(row);
  c.sampler.accept(token);
  result.token = token;
  result.finished = emit_token(c, row, token);
}

// rows: [1 + n_draft, n_vocab], row i the logits after chunk.tokens[0..i].
// The scheduler may have cut the draft (budget, room, max_tokens): its first n_draft tokens
// are verified.
void EngineImpl::verify_chunk(ChoiceState& c, const ScheduledChunk& chunk, const float* rows,
                              StepResult& result) {
  Draft* draft = &draft_;
  if (c.dm) {
    draft = &c.dm->draft;
    QUANTA_ASSERT(draft->size() >= chunk.n_draft);
    draft->tokens.resize(chunk.n_draft);
    draft->q_token.resize(chunk.n_draft);
    QUANTA_ASSERT(std::equal(draft->tokens.begin(), draft->tokens.end(), chunk.tokens + 1));
  } else {
    draft_.clear();
    draft_.point_mass = true;
    draft_.tokens.assign(chunk.tokens + 1, chunk.tokens + 1 + chunk.n_draft);
    draft_.q_token.assign(chunk.n_draft, 1.0f);
  }
  spec_out_.clear();
  const int32_t accepted = verifier_.verify(c.sampler, rows, *draft, spec_out_);
  if (c.dm) c.dm->length.observe(chunk.n_draft, accepted, c.dm->seconds, verify_seconds_);
  draft->clear();
  spec_drafted_ += chunk.n_draft;
  spec_accepted_ += accepted;
  ++spec_passes_;
  // spec_out_ = d_1..d_accepted, then the target's token; stop at the first that ends it.
  const int32_t n_out = static_cast<int32_t>(spec_out_.size());
  for (int32_t i = 0; i < n_out; ++i) {
    const bool stop = emit_token(c, rows + static_cast<size_t>(i) * n_vocab_, spec_out_[i]);
    if (i < accepted) {
      result.n_accepted = i + 1;  // a draft: appended via n_accepted
      if (stop) {
        result.token = -1;
        result.finished = true;
        return;
      }
    } else {
      result.token = spec_out_[i];
      result.finished = stop;
    }
  }
}

// Emits one generated token: counts, logprobs of its logits row, text with the stop-string
// check. True when generation ends at it (end-of-generation token or stop string).
bool EngineImpl::emit_token(ChoiceState& c, const float* row, int32_t token) {
  LiveRequest& r = c.owner;
  const GenerationRequest& req = r.request;
  ++c.n_generated;
  if (!r.first_token) r.first_token = Clock::now();
  ChoiceDelta delta;
  delta.index = c.index;
  if (req.top_logprobs >= 0) {
    TokenLogprob lp;
    token_logprobs(row, n_vocab_, token, req.top_logprobs, lp);
    lp.text = tokenizer_.token_to_piece(token);
    for (TopLogprob& t : lp.top) t.text = tokenizer_.token_to_piece(t.token);
    delta.logprobs.push_back(std::move(lp));
  }
  bool finished = false;
  if (!req.ignore_eos && tokenizer_.is_eog(token)) {
    finished = true;
  } else {
    piece_.clear();
    tokenizer_.token_to_piece(token, piece_);
    finished = c.text.push(piece_, delta.text);
  }
  // One delta per token, even when its text is held back (partial UTF-8, a possible stop
  // string) or empty: clients see every token as it comes (time to first token, per-token
  // latency), as OpenAI's and llama-server's streams do. Untaken deltas merge in the stream.
  r.stream->push(std::move(delta));
  return finished;
}

// Gives every choice that was just sampled and speculates a draft for the next step: n-gram
// lookup, or one batched DraftRunner::propose for all the draft-model choices.
void EngineImpl::propose_drafts() {
  draft_jobs_.clear();
  for (const StepResult& res : results_) {
    ChoiceState& c = *choices_.at(res.request_id);
    const Request* r = scheduler_->find(res.request_id);
    if (r == nullptr) continue;  // finished
    if (c.dm) {
      // Only drafts that can be verified: the step yields k + 1 tokens within max_tokens and
      // the context.
      const int32_t k = std::min(
          {c.dm->length.next(), r->max_tokens - r->n_output() - 1, n_ctx_ - r->n_tokens() - 1});
      if (k > 0)
        draft_jobs_.push_back({res.request_id, c.dm.get(), r->tokens.data(), r->n_tokens(), k});
      continue;
    }
    if (c.ngram <= 0) continue;
    const int32_t n = ngram_lookup(r->tokens.data(), r->n_tokens(), c.ngram,
                                   std::min(c.max_draft, kMaxSpecDraft), lookup_.data());
    if (n > 0) scheduler_->set_draft(res.request_id, std::span<const int32_t>(lookup_.data(), n));
  }
  if (draft_jobs_.empty()) return;
  const double t0 = now_seconds();
  drafter_->propose(draft_jobs_);
  const double seconds = now_seconds() - t0;
  for (const DraftRunner::Job& job : draft_jobs_) {
    DraftSeq& s = *job.seq;
    if (s.draft.size() == 0) continue;
    s.seconds = seconds;  // the request waits for the whole (batched) draft phase
    scheduler_->set_draft(job.id, std::span<const int32_t>(s.draft.tokens));
  }
}

void EngineImpl::finish_choices() {
  finished_.clear();
  scheduler_->drain_finished(finished_);
  for (const FinishedRequest& f : finished_) release_draft(*choices_.at(f.id));
  if (!finished_.empty()) publish_gauges();  // freed blocks visible once a stream is done
  for (FinishedRequest& f : finished_) {
    const auto it = choices_.find(f.id);
    QUANTA_ASSERT(it != choices_.end());
    ChoiceState& c = *it->second;
    choices_.erase(it);
    LiveRequest& r = c.owner;
    c.finished = true;
    ++r.n_finished;
    r.completion_tokens += static_cast<int32_t>(f.output.size());
    if (c.index == 0) r.cached_tokens = f.n_cached_tokens;
    // The request's outcome: cancelled over length over stop.
    if (r.outcome != FinishReason::kCancelled &&
        (r.outcome == FinishReason::kNone || f.reason != FinishReason::kStop)) {
      r.outcome = f.reason;
    }
    ChoiceDelta delta;
    delta.index = c.index;
    delta.finish = f.reason;
    if (f.reason != FinishReason::kCancelled) c.text.flush(delta.text);
    Usage usage;
    usage.prompt_tokens = static_cast<int32_t>(r.request.prompt.size());
    usage.completion_tokens = r.completion_tokens;
    usage.cached_tokens = r.cached_tokens;
    if (r.n_finished == r.request.n) {
      finish_request(r);  // metrics first: they are complete once the stream is done
      r.stream->finish_choice(std::move(delta), usage);
      live_.erase(r.id);  // destroys r and c
    } else {
      r.stream->finish_choice(std::move(delta), usage);
    }
  }
}

void EngineImpl::finish_request(LiveRequest& r) {
  const Clock::time_point now = Clock::now();
  RequestTimes times;
  times.queue = r.queue_seconds;
  times.e2e = seconds(now - r.submitted);
  if (r.first_token) {
    times.ttft = seconds(*r.first_token - r.submitted);
    int32_t most = 0;
    for (const auto& c : r.choices) most = std::max(most, c->n_generated);
    if (most >= 2) times.tpot = (times.e2e - times.ttft) / (most - 1);
  }
  if (!r.scheduled) {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    --inbox_->queued;
  }
  metrics_.record_request(r.outcome, static_cast<int32_t>(r.request.prompt.size()),
                          r.completion_tokens, times);
}

void EngineImpl::fail_all(const char* why) {
  std::vector<Submission> pending;
  {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    failure_ = why;
    pending.swap(inbox_->submissions);
    inbox_->queued = 0;
  }
  const auto cancel_stream = [](StreamImpl& s, int32_t index, const Usage& usage) {
    ChoiceDelta d;
    d.index = index;
    d.finish = FinishReason::kCancelled;
    s.finish_choice(std::move(d), usage);
  };
  for (auto& [id, r] : live_) {
    Usage usage;
    usage.prompt_tokens = static_cast<int32_t>(r->request.prompt.size());
    for (int32_t i = 0; i < r->request.n; ++i) {  // choices may be missing if admit() threw
      const bool done = i < static_cast<int32_t>(r->choices.size()) && r->choices[i]->finished;
      if (!done) cancel_stream(*r->stream, i, usage);
    }
  }
  for (Submission& s : pending) {
    for (int32_t i = 0; i < s.request.n; ++i) cancel_stream(*s.stream, i, Usage{});
  }
  for (Submission& s : taken_) {  // taken but not admitted yet (moved-from ones are empty)
    if (s.stream) {
      for (int32_t i = 0; i < s.request.n; ++i) cancel_stream(*s.stream, i, Usage{});
    }
  }
  taken_.clear();
  live_.clear();
  choices_.clear();
}

int32_t EngineImpl::n_running_requests() const {
  // Distinct owners without allocating (a request's choices are few; running sets are small).
  const auto owner = [this](const Request* r) -> const LiveRequest* {
    const auto it = choices_.find(r->id);
    return it == choices_.end() ? nullptr : &it->second->owner;
  };
  const auto& running = scheduler_->running();
  int32_t n = 0;
  for (size_t i = 0; i < running.size(); ++i) {
    const LiveRequest* o = owner(running[i]);
    bool seen = o == nullptr;
    for (size_t j = 0; j < i && !seen; ++j) seen = owner(running[j]) == o;
    n += seen ? 0 : 1;
  }
  return n;
}

void EngineImpl::publish_gauges() {
  const kv::BlockPool& pool = ctx_->kv().pool();
  running_.store(scheduler_->n_running(), std::memory_order_relaxed);
  blocks_free_.store(pool.n_free(), std::memory_order_relaxed);
  EngineGauges g;
  g.running = n_running_requests();
  g.running_sequences = scheduler_->n_running();
  g.waiting = n_waiting();
  g.kv_blocks_used = pool.n_used();
  g.kv_blocks_free = pool.n_free();
  g.prefix_queried_tokens = pool.prefix_stats().queried_tokens;
  g.prefix_hit_tokens = pool.prefix_stats().hit_tokens;
  g.spec_draft_tokens = spec_drafted_;
  g.spec_accepted_tokens = spec_accepted_;
  g.spec_verify_passes = spec_passes_;
  if (drafter_) {
    g.spec_draft_passes = drafter_->n_passes();
    g.spec_draft_seconds = drafter_->forward_seconds();
    g.spec_draft_kv_blocks_used = drafter_->pool().n_used();
    draft_used_.store(g.spec_draft_kv_blocks_used, std::memory_order_relaxed);
  }
  g.preemptions = preemptions_.load(std::memory_order_relaxed);  // api-ops
  metrics_.set_gauges(g);
}

}  // namespace quanta::serve
