// Modified rejection sampling for speculative decoding (see speculative_verify.h).
#include "engine/speculative_verify.h"

#include <algorithm>

#include "core/error.h"

namespace quanta {
namespace {

double total_prob(const Candidates& c) {
  double t = 0.0;
  for (int32_t i = 0; i < c.size; ++i) t += c.data[i].prob;
  return t;
}

}  // namespace

Draft::Draft(int32_t n_vocab, int32_t max_tokens) : max_tokens_(max_tokens) {
  QUANTA_ASSERT(n_vocab > 0 && max_tokens >= 0);
  tokens.reserve(max_tokens);
  q_token.reserve(max_tokens);
  q.reserve(max_tokens);
  for (int32_t i = 0; i < max_tokens; ++i) q.emplace_back(n_vocab);
}

Verifier::Verifier(int32_t n_vocab)
    : n_vocab_(n_vocab), p_(n_vocab), residual_(n_vocab), dense_(n_vocab, 0.0) {}

int32_t Verifier::verify_greedy(Sampler& sampler, const float* logits, const Draft& draft,
                                std::vector<int32_t>& out) {
  const int32_t k = draft.size();
  for (int32_t i = 0; i <= k; ++i) {
    sampler.apply(logits + static_cast<size_t>(i) * n_vocab_, p_);
    const int32_t best = p_.data[0].id;
    out.push_back(best);
    sampler.accept(best);
    if (i == k || draft.tokens[i] != best) return i;
  }
  return k;
}

// Draws from norm(max(0, p_i - q_i)), p_i in p_; leaves dense_ all zero.
int32_t Verifier::residual_draw(Sampler& sampler, const Draft& draft, int32_t i) {
  const double p_total = total_prob(p_);
  for (int32_t j = 0; j < p_.size; ++j) dense_[p_.data[j].id] = p_.data[j].prob / p_total;
  if (draft.point_mass) {
    dense_[draft.tokens[i]] = 0.0;  // max(0, p - 1)
  } else {
    const Candidates& q = draft.q[i];
    const double q_total = total_prob(q);
    for (int32_t j = 0; j < q.size; ++j) dense_[q.data[j].id] -= q.data[j].prob / q_total;
  }
  residual_.size = 0;
  residual_.sorted = false;
  for (int32_t id = 0; id < n_vocab_; ++id) {
    if (dense_[id] > 0.0) {
      residual_.data[residual_.size++] = TokenProb{id, 0.0f, static_cast<float>(dense_[id])};
    }
    dense_[id] = 0.0;
  }
  // NOTE: a rejection implies p_i(d) < q_i(d), hence some x with p_i(x) > q_i(x); an empty
  // residual can only come from rounding, and then p_i itself is the right fallback.
  return sampler.draw(residual_.size > 0 ? residual_ : p_);
}

int32_t Verifier::verify(Sampler& sampler, const float* logits, const Draft& draft,
                         std::vector<int32_t>& out) {
  QUANTA_ASSERT(sampler.n_vocab() == n_vocab_);
  QUANTA_ASSERT(draft.point_mass || draft.size() <= draft.max_tokens());  // q_i needed
  if (sampler.params().temperature <= 0.0f) return verify_greedy(sampler, logits, draft, out);
  const int32_t k = draft.size();
  for (int32_t i = 0; i <= k; ++i) {
    sampler.apply(logits + static_cast<size_t>(i) * n_vocab_, p_);
    if (i == k) {  // every draft token accepted: the bonus token
      const int32_t bonus = sampler.draw(p_);
      out.push_back(bonus);
      sampler.accept(bonus);
      return k;
    }
    const int32_t d = draft.tokens[i];
    const double p = p_.prob_of(d) / total_prob(p_);
    const double q = draft.q_token[i];
    // Accept with probability min(1, p / q): u in [0, 1), so p >= q always accepts.
    if (sampler.uniform() * q < p) {
      out.push_back(d);
      sampler.accept(d);
      continue;
    }
    const int32_t t = residual_draw(sampler, draft, i);
    out.push_back(t);
    sampler.accept(t);
    return i;
  }
  return k;
}

double acceptance_probability(const Candidates& p, const Candidates& q,
                              std::vector<double>& dense) {
  const double p_total = total_prob(p), q_total = total_prob(q);
  for (int32_t j = 0; j < p.size; ++j) dense[p.data[j].id] = p.data[j].prob / p_total;
  double sum = 0.0;
  for (int32_t j = 0; j < q.size; ++j) {
    sum += std::min(dense[q.data[j].id], q.data[j].prob / q_total);
  }
  for (int32_t j = 0; j < p.size; ++j) dense[p.data[j].id] = 0.0;
  return sum;
}

}  // namespace quanta
