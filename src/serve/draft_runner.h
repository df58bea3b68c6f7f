// Draft-model speculative decoding inside the serving engine: the draft model's own Context
// (paged KV pool), each speculating sequence's draft state (block table, sampler, proposal,
// adaptive length), and batched proposals: one draft forward pass per draft position for all
// speculating sequences. Engine thread only. Private to the serve layer.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/sampler.h"
#include "engine/speculative.h"
#include "engine/speculative_verify.h"
#include "kv/block_table.h"
#include "models/context.h"

namespace quanta::serve {

// One sequence's draft-model state. The draft KV holds rows for kv_tokens, a prefix of the
// sequence (possibly followed by draft tokens the target rejected: the next proposal drops
// them); rows are freed on finish, cancellation and preemption (recomputed afterwards).
struct DraftSeq {
  // `target` = the request's sampling settings; the draft samples with them minus penalties
  // on its own random stream (draft_sampling_params). Draft length adapts in [min, max].
  DraftSeq(int32_t n_vocab, int32_t block_size, int32_t max_tokens, const SamplingParams& target,
           int32_t min_draft, int32_t max_draft);

  kv::BlockTable table;            // the draft KV cache's rows of this sequence
  std::vector<int32_t> kv_tokens;  // [table.n_tokens()] the tokens those rows hold
  Sampler sampler;
  Draft draft;  // proposal for the next step: q kept when sampling, a point mass when greedy
  DraftLength length;
  double seconds = 0.0;  // wall time of the draft phase that made `draft`
};

// The draft model's forward passes for every speculating sequence of a step.
class DraftRunner {
 public:
  // Throws quanta::Error when the draft's vocabulary size differs from the target's.
  // `target_options`: the target context's (n_ctx, n_batch, thread pool, KV block size and
  // type: the draft context runs on the same pool, so calls must come from one thread);
  // the draft KV pool gets n_kv_blocks blocks.
  DraftRunner(const models::Model& draft, int32_t target_n_vocab,
              const models::ContextOptions& target_options, int32_t n_kv_blocks,
              int32_t max_running);

  // A sequence that wants up to k (>= 1) draft tokens continuing tokens[0, n_tokens).
  struct Job {
    int64_t id = -1;  // the caller's
    DraftSeq* seq = nullptr;
    const int32_t* tokens = nullptr;
    int32_t n_tokens = 0;
    int32_t k = 0;
  };

  // Clears every job's draft, then: one catch-up pass feeding each sequence the tokens its
  // draft KV lacks (always at least its last token, whose logits are needed; at most n_batch
  // tokens in all: a sequence that does not finish catching up proposes nothing this time and
  // goes on next time), then one pass per draft position with one token per sequence still
  // drafting. A sequence whose draft KV cannot grow (pool full) stops where it is.
  void propose(std::vector<Job>& jobs);
  // Frees a sequence's draft KV rows.
  void release(DraftSeq& seq);

  const kv::BlockPool& pool() { return ctx_->kv().pool(); }
  int32_t block_size() const { return block_size_; }
  int32_t n_ctx() const { return ctx_->n_ctx(); }
  int64_t n_passes() const { return n_passes_; }       // draft forward passes run
  double forward_seconds() const { return seconds_; }  // time in them

 private:
  void truncate(DraftSeq& s, int32_t n);
  const float* forward(int32_t n_tokens);
  void pick(DraftSeq& s, const float* row);  // appends one draft token drawn from `row`

  std::unique_ptr<models::Context> ctx_;
  int32_t n_vocab_;
  int32_t block_size_;
  int32_t n_batch_;
  int64_t n_passes_ = 0;
  double seconds_ = 0.0;
  Candidates greedy_;  // apply() scratch of greedy sequences
  // Batch arrays [n_batch] and per-sequence tables [max_running], reused every pass.
  std::vector<int32_t> tokens_, positions_, seq_;
  std::vector<uint8_t> want_;
  std::vector<const kv::BlockTable*> tables_;
  std::vector<Job*> active_, next_;  // sequences drafting, in logit-row order
};

}  // namespace quanta::serve
