// Token sampler: parameter validation, penalty window, the filter chain (top-k, top-p, min-p,
// temperature) over preallocated candidates, and the seeded categorical draw.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace quanta {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

// Total order used everywhere candidates are ranked: logit descending, then id ascending. A
// total order makes nth_element/sort results unique, so they match on every standard library.
bool ranks_before(const TokenProb& a, const TokenProb& b) {
  if (a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

float max_logit(const Candidates& c) {
  if (c.sorted) return c.data[0].logit;
  float best = kNegInf;
  for (int32_t i = 0; i < c.size; ++i) best = std::max(best, c.data[i].logit);
  return best;
}

// prob = softmax(logit) over the live entries. Infinite maxima are handled as limits: a +inf
// maximum shares all mass among the +inf entries, an all -inf list becomes uniform.
// NOTE: the sum is accumulated in double so that the result (and top-p's cut) does not depend,
// beyond double rounding, on whether the candidates happen to be sorted when this runs.
void softmax(Candidates& c) {
  const float max = max_logit(c);
  TokenProb* d = c.data.data();
  double sum = 0.0;
  for (int32_t i = 0; i < c.size; ++i) {
    if (max == kPosInf) {
      d[i].prob = d[i].logit == kPosInf ? 1.0f : 0.0f;
    } else if (max == kNegInf) {
      d[i].prob = 1.0f;
    } else {
      d[i].prob = std::exp(d[i].logit - max);
    }
    sum += d[i].prob;
  }
  for (int32_t i = 0; i < c.size; ++i) d[i].prob = static_cast<float>(d[i].prob / sum);
}

// Keeps live entries with logit >= threshold, preserving their order.
void keep_at_least(Candidates& c, float threshold) {
  int32_t n = 0;
  for (int32_t i = 0; i < c.size; ++i) {
    if (c.data[i].logit >= threshold) c.data[n++] = c.data[i];
  }
  c.size = n;
}

// Keeps all candidates, sorted best-first, when k >= their count; k <= 0 is off.
// NOTE: 0 < k < n_vocab never reaches here: it is fused into the load (Sampler::load_top_k).
void top_k_all(Candidates& c, int32_t k) {
  if (k <= 0) return;
  QUANTA_ASSERT(k >= c.size);
  if (!c.sorted) std::sort(c.data.begin(), c.data.begin() + c.size, ranks_before);
  c.sorted = true;
}

// Sorts c.data[from, size) just enough that [from, end) holds its best entries, best-first.
void sort_next_block(Candidates& c, int32_t from, int32_t end) {
  auto begin = c.data.begin();
  if (end < c.size) std::nth_element(begin + from, begin + (end - 1), begin + c.size, ranks_before);
  std::sort(begin + from, begin + end, ranks_before);
}

// Keeps the shortest best-first prefix whose probability (at temperature 1, over the current
// candidates) reaches p; at least one token. p >= 1 is off.
// NOTE: an unsorted list is ordered lazily, in blocks of doubling size, until the prefix is
// found, so a peaked distribution never pays for a full sort. When min-p follows, its threshold
// is applied first: both filters keep a best-first prefix measured against the same maximum
// (top-p always keeps it), so the result is identical and fewer entries need ordering.
void top_p(Candidates& c, float p, float min_p) {
  if (p >= 1.0f) return;
  softmax(c);
  if (!c.sorted && min_p > 0.0f) keep_at_least(c, max_logit(c) + std::log(min_p));
  double cum = 0.0;
  int32_t ordered = c.sorted ? c.size : 0;  // entries [0, ordered) are in final order
  for (int32_t i = 0, block = 64; i < c.size; ++i) {
    if (i == ordered) {
      ordered = std::min(c.size, ordered + block);
      sort_next_block(c, i, ordered);
      block *= 2;
    }
    cum += c.data[i].prob;
    if (cum >= p) {
      c.size = i + 1;
      break;
    }
  }
  c.sorted = true;
}

// Keeps candidates whose probability is at least p times the largest (logit >= max + log p).
void min_p(Candidates& c, float p) {
  if (p <= 0.0f) return;
  keep_at_least(c, max_logit(c) + std::log(p));
}

void scale_by_temperature(Candidates& c, float temperature) {
  if (temperature == 1.0f) return;
  for (int32_t i = 0; i < c.size; ++i) c.data[i].logit /= temperature;
}

const SamplingParams& validated(const SamplingParams& params) {
  validate(params);
  return params;
}

}  // namespace

void validate(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    fail("sampling: temperature must be finite and >= 0 (0 = greedy), got %g",
         static_cast<double>(p.temperature));
  }
  if (p.top_k < 0) fail("sampling: top_k must be >= 0 (0 = off), got %d", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    fail("sampling: top_p must be in (0, 1], got %g", static_cast<double>(p.top_p));
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    fail("sampling: min_p must be in [0, 1], got %g", static_cast<double>(p.min_p));
  }
  if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0.0f) {
    fail("sampling: repeat_penalty must be finite and > 0 (1 = off), got %g",
         static_cast<double>(p.repeat_penalty));
  }
  if (p.repeat_last_n < 0 || p.repeat_last_n > kMaxRepeatLastN) {
    fail("sampling: repeat_last_n must be in [0, %d], got %d", kMaxRepeatLastN, p.repeat_last_n);
  }
  if (!std::isfinite(p.frequency_penalty)) {
    fail("sampling: frequency_penalty must be finite, got %g",
         static_cast<double>(p.frequency_penalty));
  }
  if (!std::isfinite(p.presence_penalty)) {
    fail("sampling: presence_penalty must be finite, got %g",
         static_cast<double>(p.presence_penalty));
  }
}

Candidates::Candidates(int32_t n_vocab) {
  if (n_vocab <= 0) fail("sampling: n_vocab must be > 0, got %d", n_vocab);
  data.resize(static_cast<size_t>(n_vocab));
}

float Candidates::prob_of(int32_t id) const {
  for (int32_t i = 0; i < size; ++i) {
    if (data[i].id == id) return data[i].prob;
  }
  return 0.0f;
}

Sampler::Sampler(int32_t n_vocab, const SamplingParams& params)
    : n_vocab_(n_vocab), params_(validated(params)), rng_(params.seed), scratch_(n_vocab) {
  history_.resize(static_cast<size_t>(params.repeat_last_n));
  counts_.assign(static_cast<size_t>(n_vocab), 0);
}

bool Sampler::penalties_active() const {
  return history_size_ > 0 &&
         (params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
          params_.presence_penalty != 0.0f);
}

// llama.cpp semantics: the repetition penalty shrinks positive logits and grows negative ones;
// then count * frequency + presence is subtracted. `count` > 0.
float Sampler::penalised(float logit, int32_t count) const {
  logit = logit <= 0.0f ? logit * params_.repeat_penalty : logit / params_.repeat_penalty;
  return logit - static_cast<float>(count) * params_.frequency_penalty - params_.presence_penalty;
}

float Sampler::logit_at(const float* logits, int32_t id, bool penalise) const {
  const float logit = std::isnan(logits[id]) ? kNegInf : logits[id];
  return penalise && counts_[id] > 0 ? penalised(logit, counts_[id]) : logit;
}

void Sampler::load_all(const float* logits, Candidates& c) const {
  const bool penalise = penalties_active();
  TokenProb* d = c.data.data();
  for (int32_t i = 0; i < n_vocab_; ++i) d[i] = {i, logit_at(logits, i, penalise), 0.0f};
  c.size = n_vocab_;
  c.sorted = false;
}

// Fused load and top-k for 0 < k < n_vocab: one pass keeping the k best in a bounded heap
// (worst on top) in c.data[0, k), then sorted best-first. Most tokens cost one comparison.
void Sampler::load_top_k(const float* logits, Candidates& c, int32_t k) const {
  const bool penalise = penalties_active();
  TokenProb* heap = c.data.data();
  for (int32_t i = 0; i < k; ++i) heap[i] = {i, logit_at(logits, i, penalise), 0.0f};
  std::make_heap(heap, heap + k, ranks_before);
  for (int32_t i = k; i < n_vocab_; ++i) {
    const TokenProb t{i, logit_at(logits, i, penalise), 0.0f};
    if (!ranks_before(t, heap[0])) continue;
    std::pop_heap(heap, heap + k, ranks_before);
    heap[k - 1] = t;
    std::push_heap(heap, heap + k, ranks_before);
  }
  std::sort_heap(heap, heap + k, ranks_before);
  c.size = k;
  c.sorted = true;
}

TokenProb Sampler::argmax(const float* logits) const {
  const bool penalise = penalties_active();
  TokenProb best{0, logit_at(logits, 0, penalise), 1.0f};
  for (int32_t i = 1; i < n_vocab_; ++i) {
    const float logit = logit_at(logits, i, penalise);
    if (logit > best.logit) best = {i, logit, 1.0f};  // strict: ties keep the lowest id
  }
  return best;
}

void Sampler::apply(const float* logits, Candidates& out) {
  QUANTA_ASSERT(static_cast<int32_t>(out.data.size()) == n_vocab_);
  if (params_.temperature <= 0.0f) {
    out.data[0] = argmax(logits);
    out.size = 1;
    out.sorted = true;
    return;
  }
  if (params_.top_k > 0 && params_.top_k < n_vocab_) {
    load_top_k(logits, out, params_.top_k);
  } else {
    load_all(logits, out);
    top_k_all(out, params_.top_k);
  }
  top_p(out, params_.top_p, params_.min_p);
  min_p(out, params_.min_p);
  scale_by_temperature(out, params_.temperature);
  softmax(out);
}

int32_t Sampler::draw(const Candidates& c) {
  QUANTA_ASSERT(c.size > 0);
  double total = 0.0;
  for (int32_t i = 0; i < c.size; ++i) total += c.data[i].prob;
  const double target = rng_.uniform() * total;
  double cum = 0.0;
  int32_t last_positive = 0;
  for (int32_t i = 0; i < c.size; ++i) {
    if (c.data[i].prob <= 0.0f) continue;
    cum += c.data[i].prob;
    last_positive = i;
    if (target < cum) return c.data[i].id;
  }
  return c.data[last_positive].id;  // rounding left target at the very top of the range
}

int32_t Sampler::sample(const float* logits) {
  if (params_.temperature <= 0.0f) return argmax(logits).id;
  apply(logits, scratch_);
  return draw(scratch_);
}

void Sampler::accept(int32_t token) {
  QUANTA_ASSERT(token >= 0 && token < n_vocab_);
  const int32_t window = params_.repeat_last_n;
  if (window == 0) return;
  if (history_size_ == window) {
    --counts_[history_[history_head_]];
  } else {
    ++history_size_;
  }
  history_[history_head_] = token;
  ++counts_[token];
  history_head_ = history_head_ + 1 == window ? 0 : history_head_ + 1;
}

void Sampler::reset() {
  for (int32_t i = 0; i < history_size_; ++i) --counts_[history_[i]];
  history_head_ = 0;
  history_size_ = 0;
  rng_.reseed(params_.seed);
}

int32_t Sampler::count_in_window(int32_t token) const {
  QUANTA_ASSERT(token >= 0 && token < n_vocab_);
  return counts_[token];
}

}  // namespace quanta
