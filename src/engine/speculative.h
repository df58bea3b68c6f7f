// Speculative decoding of one sequence: a Drafter proposes up to K tokens, the target model
// verifies all of them in one batched forward pass (Verifier: exact target distribution,
// exact greedy at temperature 0), and rejected positions are rolled back in the KV caches.
// The draft length adapts to the measured acceptance rate and draft/target cost ratio.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/generator.h"
#include "engine/speculative_draft.h"
#include "engine/speculative_verify.h"
#include "models/context.h"

namespace quanta {

struct SpecOptions {
  int32_t draft_max = 8;  // K: most tokens proposed per target pass (>= 1)
  int32_t draft_min = 1;  // least tokens proposed per pass when the drafter has a guess
};

struct SpecStats : GenerateStats {
  int32_t n_passes = 0;         // target forward passes after the prompt (verifications)
  int32_t n_drafted = 0;        // draft tokens proposed
  int32_t n_accepted = 0;       // draft tokens accepted
  int32_t n_tested = 0;         // draft tokens tested: accepted + one per rejection
  double draft_seconds = 0.0;   // time in Drafter::propose
  double verify_seconds = 0.0;  // time in target passes and acceptance
  // n_accepted / n_drafted (llama.cpp's "accept" figure); 0 when nothing was drafted.
  double acceptance() const { return n_drafted > 0 ? double(n_accepted) / n_drafted : 0.0; }
  // Tokens each target pass yields: accepted draft tokens + the target's own token.
  double tokens_per_pass() const {
    return n_passes > 0 ? double(n_accepted + n_passes) / n_passes : 0.0;
  }
};

// Expected speedup of speculative decoding over plain decoding (Leviathan et al., Theorem 3.8):
// (1 - a^(k+1)) / ((1 - a)(k c + 1)) for per-token acceptance a, draft length k and cost c of
// one draft step relative to one target pass (a = 1 taken as the limit (k + 1) / (k c + 1)).
double predicted_speedup(double a, int32_t k, double c);

// The draft-length rule: choose k in [min, max] maximising the expected tokens per second of
// the next pass, E[tokens](k) / cost(k), with E[tokens](k) = (1 - a^(k+1)) / (1 - a) (the
// papers' expectation for per-token acceptance a) and cost(k) = k t_draft + t_verify(k + 1).
// - a: accepted / tested draft tokens (a rejection ends the test, so this is the
//   maximum-likelihood estimate of a geometric acceptance), decay 0.9 per pass so it follows
//   the text, from a prior of a = 0.7 worth 4 tokens;
// - t_draft: measured draft time per proposed token (same decay);
// - t_verify(n) = t0 + t1 n: a least-squares line through the measured verify passes (batch
//   of n tokens; same decay). The papers take a verify pass to cost one decode step (t1 = 0),
//   true for memory-bound decode; on a CPU a batch of k + 1 tokens costs more, and the line
//   captures that. Until passes of two sizes were timed, the rule tries max, then min.
// Ties go to the larger k.
class DraftLength {
 public:
  DraftLength(int32_t min, int32_t max);
  int32_t next() const;
  // One pass: `drafted` tokens proposed in draft_s seconds, `accepted` of them accepted,
  // verify of drafted + 1 tokens took verify_s seconds.
  void observe(int32_t drafted, int32_t accepted, double draft_s, double verify_s);
  double acceptance() const { return accepted_ / tested_; }
  // Draft time per token over the verify time of a one-token pass (0 before any timing).
  double cost_ratio() const;
  // Fitted verify time of an n-token pass, seconds.
  double verify_time(int32_t n) const;

 private:
  int32_t min_, max_;
  double accepted_ = 2.8, tested_ = 4.0;  // prior: a = 0.7
  double draft_s_ = 0.0, drafted_ = 0.0;
  // Decayed sums for the verify-time line: weight, n, n^2, t, n t.
  double w_ = 0.0, sn_ = 0.0, snn_ = 0.0, st_ = 0.0, snt_ = 0.0;
  int32_t first_size_ = -1;
  bool two_sizes_ = false;
};

class SpeculativeGenerator {
 public:
  // The target context needs n_batch and n_outputs >= draft_max + 1 (quanta::Error otherwise).
  SpeculativeGenerator(models::Context& target, Drafter& drafter, const SpecOptions& options);

  // As Generator::generate, with speculation: the same tokens at temperature 0, the same
  // distribution otherwise. KV rows of the previous call's sequence that match the prompt's
  // start are reused rather than prefilled again.
  SpecStats generate(const std::vector<int32_t>& prompt, int32_t n_predict, Sampler& sampler,
                     const std::function<bool(int32_t)>& on_token,
                     const std::function<bool(int32_t)>& is_eog = nullptr);

  Generator& target() { return gen_; }
  const std::vector<int32_t>& history() const { return history_; }

 private:
  // One draft + verify round; appends the new tokens to out_. Returns accepted draft tokens.
  int32_t round(Sampler& sampler, int32_t k, SpecStats& stats);

  Generator gen_;
  Drafter& drafter_;
  SpecOptions options_;
  Draft draft_;
  Verifier verifier_;
  DraftLength length_;
  std::vector<int32_t> history_;  // prompt + output; the KV holds all but the last token
  std::vector<int32_t> batch_;    // [draft_max + 1] pending token + draft
  std::vector<int32_t> out_;      // tokens of the current round
};

}  // namespace quanta
