// Speculative decoding's acceptance step (Leviathan et al. 2023, Chen et al. 2023): given a
// draft and the target's logits for every drafted position, keeps the longest accepted prefix
// and adds one token from the target, so that the output is distributed exactly as the target
// sampler's. Pure (no forward pass): the generator and, later, the server's batch runner share it.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/sampler.h"

namespace quanta {

// A proposal of up to max_tokens tokens and the distribution each was drawn from.
struct Draft {
  Draft(int32_t n_vocab, int32_t max_tokens);

  std::vector<int32_t> tokens;  // proposed tokens d_1..d_k, k = tokens.size() <= max_tokens
  std::vector<float> q_token;   // [k] q_i(d_i), normalised over q_i's candidates
  // [max_tokens] q_i as the draft sampler's apply() left it (unused when point_mass: a
  // point-mass draft may be made with max_tokens 0 and hold any number of tokens).
  std::vector<Candidates> q;
  // True when every q_i is a point mass on d_i (n-gram lookup, or any deterministic proposal).
  bool point_mass = false;

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  int32_t max_tokens() const { return max_tokens_; }
  void clear() { tokens.clear(), q_token.clear(); }

 private:
  int32_t max_tokens_;
};

class Verifier {
 public:
  explicit Verifier(int32_t n_vocab);

  // `logits` is [draft.size() + 1, n_vocab]: row i holds the target's logits after the
  // sequence extended by d_1..d_i. For i = 0.., d_{i+1} is accepted with probability
  // min(1, p_i(d) / q_i(d)) (p_i = sampler.apply() of row i); on the first rejection one token
  // is drawn from norm(max(0, p_i - q_i)) and the rest of the draft is dropped; when all are
  // accepted a bonus token is drawn from the last row. At temperature 0 this is exactly greedy:
  // d accepted iff it is the target's argmax, else the argmax; no random numbers drawn.
  // Appends the accepted tokens and the final one to `out`, each sampler.accept()ed in turn
  // (so penalties see them); returns the number of accepted draft tokens.
  int32_t verify(Sampler& sampler, const float* logits, const Draft& draft,
                 std::vector<int32_t>& out);

 private:
  int32_t verify_greedy(Sampler& sampler, const float* logits, const Draft& draft,
                        std::vector<int32_t>& out);
  int32_t residual_draw(Sampler& sampler, const Draft& draft, int32_t i);

  int32_t n_vocab_;
  Candidates p_;               // target distribution of the current row
  Candidates residual_;        // norm(max(0, p - q)) candidates
  std::vector<double> dense_;  // [n_vocab] p - q scratch, all zero between calls
};

// sum_x min(p(x), q(x)) over two apply()-style candidate lists: the probability that one
// draft token drawn from q is accepted against p (the papers' alpha for one position).
double acceptance_probability(const Candidates& p, const Candidates& q, std::vector<double>& dense);

}  // namespace quanta
