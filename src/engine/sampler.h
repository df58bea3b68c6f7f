// Token sampler: repetition/frequency/presence penalties, then top-k -> top-p -> min-p ->
// temperature -> seeded categorical draw (llama.cpp's default chain). All scratch is sized at
// construction from n_vocab, so sample(), apply() and accept() never allocate.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/sampler_rng.h"

namespace quanta {

// Per-request sampling settings. Defaults are llama.cpp's (common_params_sampling).
struct SamplingParams {
  float temperature = 0.8f;        // 0 = greedy argmax; must be finite and >= 0
  int32_t top_k = 40;              // 0 = off; >= n_vocab keeps all
  float top_p = 0.95f;             // in (0, 1]; 1 = off
  float min_p = 0.05f;             // in [0, 1]; 0 = off
  float repeat_penalty = 1.0f;     // > 0; 1 = off
  int32_t repeat_last_n = 64;      // window of accepted tokens penalised; 0 = off
  float frequency_penalty = 0.0f;  // subtracted once per occurrence in the window
  float presence_penalty = 0.0f;   // subtracted once if the token occurs in the window
  // NOTE: llama.cpp replaces its default seed (0xFFFFFFFF) by a random one; quanta keeps every
  // seed as given so that runs are reproducible. Callers wanting variety pass a random seed.
  uint64_t seed = 0xFFFFFFFFull;
};

// Largest accepted repeat_last_n: guards against absurd history allocations.
inline constexpr int32_t kMaxRepeatLastN = 1 << 20;

// Throws quanta::Error naming the first invalid field (e.g. "sampling: top_p must be in (0, 1],
// got 1.5").
void validate(const SamplingParams& params);

// One candidate token. 12 bytes: {int32 id, f32 logit, f32 prob}.
struct TokenProb {
  int32_t id;
  float logit;  // after penalties (and temperature once apply() finishes)
  float prob;   // softmax over the live candidates (valid once apply() finishes)
};

// A preallocated candidate list: `data` has n_vocab entries, the first `size` are live.
struct Candidates {
  explicit Candidates(int32_t n_vocab);

  std::vector<TokenProb> data;  // [n_vocab]; capacity never changes after construction
  int32_t size = 0;             // live entries: data[0, size)
  // True when data[0, size) is ordered by logit descending, ties by id ascending; otherwise
  // the live entries are in increasing id order.
  bool sorted = false;

  // Probability of `id` among the live candidates, 0 when it was filtered out (linear scan).
  float prob_of(int32_t id) const;
};

class Sampler {
 public:
  // Validates `params` (throws quanta::Error) and sizes all scratch for n_vocab (> 0).
  Sampler(int32_t n_vocab, const SamplingParams& params);
  Sampler(const Sampler&) = delete;  // owns O(n_vocab) scratch: no implicit copies
  Sampler& operator=(const Sampler&) = delete;
  Sampler(Sampler&&) = default;
  Sampler& operator=(Sampler&&) = default;

  // Picks the next token from logits [n_vocab]. Greedy (temperature 0) returns the argmax of
  // the penalised logits, ties to the lowest id, and draws no random number. Does not accept.
  int32_t sample(const float* logits);

  // The final distribution the sampler draws from: penalties and the filter chain applied,
  // each survivor's prob normalised over the survivors, logits after penalties and temperature.
  // With temperature 0: the single argmax with prob 1. `out` must have been built for the same
  // n_vocab. NaN logits are treated as -inf.
  void apply(const float* logits, Candidates& out);

  // Categorical draw from candidates.data[0, size) by prob (need not sum to 1), using this
  // sampler's random stream. Used after apply() and by speculative decoding on residuals.
  int32_t draw(const Candidates& candidates);

  // Next uniform number in [0, 1) from this sampler's stream (speculative acceptance tests).
  double uniform() { return rng_.uniform(); }

  // Records a generated (or prompt) token in the penalty window. QUANTA_ASSERTs 0 <= token <
  // n_vocab.
  void accept(int32_t token);

  // Back to the constructed state: empty history, random stream reseeded from params.seed.
  void reset();

  // Occurrences of `token` among the last repeat_last_n accepted tokens.
  int32_t count_in_window(int32_t token) const;

  const SamplingParams& params() const { return params_; }
  int32_t n_vocab() const { return n_vocab_; }

 private:
  bool penalties_active() const;
  float penalised(float logit, int32_t count) const;
  float logit_at(const float* logits, int32_t id, bool penalise) const;  // NaN -> -inf
  void load_all(const float* logits, Candidates& c) const;
  void load_top_k(const float* logits, Candidates& c, int32_t k) const;
  TokenProb argmax(const float* logits) const;  // penalised; ties to the lowest id

  int32_t n_vocab_;
  SamplingParams params_;
  Xoshiro256 rng_;
  Candidates scratch_;            // working candidates for sample()
  std::vector<int32_t> history_;  // [repeat_last_n] ring buffer of accepted tokens
  int32_t history_head_ = 0;      // next slot to overwrite
  int32_t history_size_ = 0;      // live entries, <= repeat_last_n
  std::vector<int32_t> counts_;   // [n_vocab] occurrences within the window
};

}  // namespace quanta
