// ModelDrafter: draft-model proposals with KV catch-up and rollback.
#include "engine/speculative_draft.h"

#include <algorithm>

#include "core/error.h"

namespace quanta {

SamplingParams draft_sampling_params(SamplingParams p) {
  p.repeat_penalty = 1.0f;
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 0.0f;
  p.seed = p.seed ^ 0x9E3779B97F4A7C15ull;  // a stream apart from the target sampler's
  return p;
}

ModelDrafter::ModelDrafter(models::Context& draft_ctx, int32_t target_n_vocab,
                           const SamplingParams& params)
    : gen_(draft_ctx), sampler_(draft_ctx.n_vocab(), draft_sampling_params(params)) {
  if (draft_ctx.n_vocab() != target_n_vocab) {
    fail("the draft model's vocabulary has %d tokens, the target's %d: they must be the same",
         draft_ctx.n_vocab(), target_n_vocab);
  }
  kv_tokens_.reserve(draft_ctx.n_ctx());
}

void ModelDrafter::commit(const std::vector<int32_t>& history) {
  const size_t n = std::min(kv_tokens_.size(), history.size());
  size_t same = 0;
  while (same < n && kv_tokens_[same] == history[same]) ++same;
  if (same < kv_tokens_.size()) {
    gen_.truncate(static_cast<int32_t>(same));
    kv_tokens_.resize(same);
  }
}

void ModelDrafter::propose(const std::vector<int32_t>& history, int32_t max_tokens, Draft& draft) {
  draft.clear();
  draft.point_mass = false;
  commit(history);
  // The last token's logits are needed, so at least that token is fed again.
  if (kv_tokens_.size() == history.size()) {
    kv_tokens_.pop_back();
    gen_.truncate(static_cast<int32_t>(kv_tokens_.size()));
  }
  const int32_t n_ctx = gen_.context().n_ctx();
  const int32_t n_hist = static_cast<int32_t>(history.size());
  max_tokens = std::min({max_tokens, draft.max_tokens(), n_ctx - n_hist + 1});
  if (max_tokens <= 0) return;
  const int32_t start = static_cast<int32_t>(kv_tokens_.size());
  const int32_t n_batch = gen_.context().options().n_batch;
  const float* logits = nullptr;
  for (int32_t done = start; done < n_hist; done += n_batch) {
    const int32_t chunk = std::min(n_batch, n_hist - done);
    logits = gen_.prefill(history.data() + done, chunk);
    ++n_passes_;
  }
  kv_tokens_.assign(history.begin(), history.end());
  const bool greedy = sampler_.params().temperature <= 0.0f;
  for (int32_t i = 0; i < max_tokens; ++i) {
    Candidates& q = draft.q[i];
    sampler_.apply(logits, q);
    const int32_t d = greedy ? q.data[0].id : sampler_.draw(q);
    double total = 0.0;
    for (int32_t j = 0; j < q.size; ++j) total += q.data[j].prob;
    draft.tokens.push_back(d);
    draft.q_token.push_back(static_cast<float>(q.prob_of(d) / total));
    if (i + 1 == max_tokens) break;
    logits = gen_.decode(d);
    kv_tokens_.push_back(d);
    ++n_passes_;
  }
}

}  // namespace quanta
