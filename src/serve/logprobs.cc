// Log-softmax with a single-pass top-N selection (N <= 20, insertion into a sorted array).
#include "serve/logprobs.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace quanta::serve {

namespace {

float clean(float x) {
  return std::isnan(x) ? -std::numeric_limits<float>::infinity() : x;
}

}  // namespace

void token_logprobs(const float* logits, int32_t n_vocab, int32_t token, int32_t top_n,
                    TokenLogprob& out) {
  QUANTA_ASSERT(token >= 0 && token < n_vocab && top_n >= 0 && top_n <= kMaxTopLogprobs);
  float max = -std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < n_vocab; ++i) max = std::fmax(max, clean(logits[i]));
  double sum = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i)
    sum += std::exp(static_cast<double>(clean(logits[i]) - max));
  const double lse = static_cast<double>(max) + std::log(sum);
  out.token = token;
  out.logprob = static_cast<float>(clean(logits[token]) - lse);
  // Top-N by logit descending, ties to the lower id: ids scanned in increasing order enter
  // only when strictly better than the current last entry.
  int32_t ids[kMaxTopLogprobs];
  float vals[kMaxTopLogprobs];
  int32_t n = 0;
  for (int32_t i = 0; i < n_vocab && top_n > 0; ++i) {
    const float v = clean(logits[i]);
    if (n == top_n && !(v > vals[n - 1])) continue;
    int32_t j = n < top_n ? n++ : n - 1;
    while (j > 0 && v > vals[j - 1]) {
      vals[j] = vals[j - 1];
      ids[j] = ids[j - 1];
      --j;
    }
    vals[j] = v;
    ids[j] = i;
  }
  out.top.resize(n);
  for (int32_t j = 0; j < n; ++j) {
    out.top[j].token = ids[j];
    out.top[j].logprob = static_cast<float>(vals[j] - lse);
  }
}

}  // namespace quanta::serve
