// DraftRunner: the draft model's batched catch-up and draft passes for the serving engine.
#include "serve/draft_runner.h"

#include <algorithm>

#include "core/error.h"
#include "core/system.h"
#include "engine/speculative_draft.h"

namespace quanta::serve {

DraftSeq::DraftSeq(int32_t n_vocab, int32_t block_size, int32_t max_tokens,
                   const SamplingParams& target, int32_t min_draft, int32_t max_draft)
    : table(block_size, max_tokens),
      sampler(n_vocab, draft_sampling_params(target)),
      // Greedy verification looks at the tokens only: no distributions to keep.
      draft(n_vocab, target.temperature <= 0.0f ? 0 : max_draft),
      length(min_draft, max_draft) {
  draft.point_mass = target.temperature <= 0.0f;
  kv_tokens.reserve(max_tokens);
  draft.tokens.reserve(max_draft);
  draft.q_token.reserve(max_draft);
}

DraftRunner::DraftRunner(const models::Model& draft, int32_t target_n_vocab,
                         const models::ContextOptions& target_options, int32_t n_kv_blocks,
                         int32_t max_running)
    : n_vocab_(draft.hparams().n_vocab), greedy_(draft.hparams().n_vocab) {
  if (n_vocab_ != target_n_vocab) {
    fail("the draft model's vocabulary has %d tokens, the target's %d: they must be the same",
         n_vocab_, target_n_vocab);
  }
  // target_options.pool (the target context's pool): the engine thread runs the draft and
  // the target in turn, so they share it and no idle pool spins against the busy one.
  models::ContextOptions o = target_options;
  o.n_outputs = max_running;  // one logit row per sequence and pass
  o.n_seq = max_running;
  o.n_kv_blocks = n_kv_blocks;
  o = models::resolve_options(draft.hparams(), o);
  o.n_batch = target_options.n_batch;  // the budget, not clamped by n_ctx * n_seq
  o.n_outputs = std::min(max_running, o.n_batch);
  ctx_ = std::make_unique<models::Context>(draft, o);
  block_size_ = ctx_->kv().layout().block_size;
  n_batch_ = o.n_batch;
  tokens_.resize(n_batch_);
  positions_.resize(n_batch_);
  seq_.resize(n_batch_);
  want_.resize(n_batch_);
  tables_.reserve(max_running);
  active_.reserve(max_running);
  next_.reserve(max_running);
}

void DraftRunner::release(DraftSeq& s) {
  s.table.clear(ctx_->kv().pool());
  s.kv_tokens.clear();
}

void DraftRunner::truncate(DraftSeq& s, int32_t n) {
  if (n >= static_cast<int32_t>(s.kv_tokens.size())) return;
  s.table.truncate(ctx_->kv().pool(), n);
  s.kv_tokens.resize(n);
}

const float* DraftRunner::forward(int32_t n_tokens) {
  // Copy-on-write never happens (draft tables share nothing), but keep the pool's list empty.
  ctx_->kv().pool().clear_pending_copies();
  models::Batch batch;
  batch.n_tokens = n_tokens;
  batch.tokens = tokens_.data();
  batch.positions = positions_.data();
  batch.seq = seq_.data();
  batch.want_logits = want_.data();
  batch.tables = tables_.data();
  const double t0 = now_seconds();
  const float* logits = ctx_->forward(batch);
  seconds_ += now_seconds() - t0;
  ++n_passes_;
  return logits;
}

void DraftRunner::pick(DraftSeq& s, const float* row) {
  Draft& d = s.draft;
  if (d.point_mass) {
    s.sampler.apply(row, greedy_);  // temperature 0: the argmax
    d.tokens.push_back(greedy_.data[0].id);
    d.q_token.push_back(1.0f);
    return;
  }
  Candidates& q = d.q[d.tokens.size()];
  s.sampler.apply(row, q);
  const int32_t token = s.sampler.draw(q);
  double total = 0.0;
  for (int32_t j = 0; j < q.size; ++j) total += q.data[j].prob;
  d.tokens.push_back(token);
  d.q_token.push_back(static_cast<float>(q.prob_of(token) / total));
}

void DraftRunner::propose(std::vector<Job>& jobs) {
  kv::BlockPool& pool = ctx_->kv().pool();
  // Catch-up: each sequence's missing tokens (at least its last), logits at its last token.
  int32_t n = 0;
  tables_.clear();
  active_.clear();
  for (Job& job : jobs) {
    DraftSeq& s = *job.seq;
    s.draft.clear();
    if (job.k <= 0 || n == n_batch_) continue;
    const int32_t held = static_cast<int32_t>(s.kv_tokens.size());
    int32_t same = 0;
    const int32_t limit = std::min(held, job.n_tokens - 1);
    while (same < limit && s.kv_tokens[same] == job.tokens[same]) ++same;
    truncate(s, same);
    const int32_t take = std::min(job.n_tokens - same, n_batch_ - n);
    if (!s.table.append(pool, take)) continue;  // no draft KV room now: no draft this step
    const bool complete = same + take == job.n_tokens;
    const int32_t index = static_cast<int32_t>(tables_.size());
    for (int32_t j = 0; j < take; ++j, ++n) {
      tokens_[n] = job.tokens[same + j];
      positions_[n] = same + j;
      seq_[n] = index;
      want_[n] = complete && j == take - 1 ? 1 : 0;
    }
    s.kv_tokens.insert(s.kv_tokens.end(), job.tokens + same, job.tokens + same + take);
    tables_.push_back(&s.table);
    if (complete) active_.push_back(&job);
  }
  if (n == 0) return;
  const float* logits = forward(n);
  // Draft steps: row r of `logits` belongs to active_[r].
  while (!active_.empty()) {
    next_.clear();
    tables_.clear();
    n = 0;
    for (size_t r = 0; r < active_.size(); ++r) {
      Job& job = *active_[r];
      DraftSeq& s = *job.seq;
      pick(s, logits + r * static_cast<size_t>(n_vocab_));
      if (s.draft.size() >= job.k || !s.table.append(pool, 1)) continue;
      const int32_t d = s.draft.tokens.back();
      tokens_[n] = d;
      positions_[n] = static_cast<int32_t>(s.kv_tokens.size());
      seq_[n] = static_cast<int32_t>(tables_.size());
      want_[n] = 1;
      ++n;
      s.kv_tokens.push_back(d);
      tables_.push_back(&s.table);
      next_.push_back(&job);
    }
    active_.swap(next_);
    if (n > 0) logits = forward(n);
  }
}

}  // namespace quanta::serve
