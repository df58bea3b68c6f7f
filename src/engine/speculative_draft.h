// Draft proposers for speculative decoding: the Drafter interface and ModelDrafter, which runs
// a smaller (or more quantized) model with its own KV cache and sampler and keeps the
// distribution of every token it proposes. (N-gram lookup: engine/ngram.h.)
#pragma once

#include <cstdint>
#include <vector>

#include "engine/generator.h"
#include "engine/sampler.h"
#include "engine/speculative_verify.h"
#include "models/context.h"

namespace quanta {

// The draft sampler's settings for a target sampler's: penalties off (a draft sampler cannot
// take back the history of rejected tokens), seeded apart from the target's random stream.
SamplingParams draft_sampling_params(SamplingParams target);

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Proposes up to max_tokens (>= 1) tokens continuing `history` (the whole sequence, prompt
  // and output, non-empty) into `draft` (cleared first); fewer or none when it has no guess.
  virtual void propose(const std::vector<int32_t>& history, int32_t max_tokens, Draft& draft) = 0;
  // The sequence is now `history`: drop any state about tokens that are no longer in it (the
  // rejected part of the last draft, or a different sequence altogether).
  virtual void commit(const std::vector<int32_t>& history) = 0;
};

// A draft model over its own Context (same vocabulary as the target). Its KV cache holds a
// prefix of the sequence; propose() first feeds the missing tokens (one batch), then decodes
// one token per draft step. Draws from its own Sampler: the target's settings without
// penalties, seeded apart from the target's stream so that proposals and acceptance tests are
// independent.
// NOTE: penalties are left out of the draft because its sampler cannot take back the history
// of rejected tokens; q need not match p for the output to be exact, only for acceptance.
class ModelDrafter : public Drafter {
 public:
  // Throws quanta::Error when the draft's vocabulary size differs from target_n_vocab.
  ModelDrafter(models::Context& draft_ctx, int32_t target_n_vocab, const SamplingParams& params);

  void propose(const std::vector<int32_t>& history, int32_t max_tokens, Draft& draft) override;
  void commit(const std::vector<int32_t>& history) override;

  Generator& generator() { return gen_; }
  int32_t n_draft_passes() const { return n_passes_; }

 private:
  Generator gen_;
  Sampler sampler_;
  std::vector<int32_t> kv_tokens_;  // the tokens in the draft's KV cache, [gen_.n_past()]
  int32_t n_passes_ = 0;            // forward passes run (catch-up batches and draft steps)
};

}  // namespace quanta
