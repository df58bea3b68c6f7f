// Prompt-lookup drafting: latest earlier occurrence of the trailing n-gram.
#include "engine/ngram.h"

#include <algorithm>

#include "core/error.h"

namespace quanta {

int32_t ngram_lookup(const int32_t* tokens, int32_t n, int32_t ngram, int32_t max_out,
                     int32_t* out) {
  QUANTA_ASSERT(ngram >= 1);
  if (n <= ngram || max_out <= 0) return 0;
  const int32_t* tail = tokens + n - ngram;
  // Latest first: the most recent context is the best predictor of what follows.
  for (int32_t i = n - ngram - 1; i >= 0; --i) {
    if (!std::equal(tail, tail + ngram, tokens + i)) continue;
    // What followed, extended past the end of the sequence by the proposal itself (an LZ77
    // overlapping copy): a sequence stuck in a loop of period p gets max_out tokens, not p.
    const int32_t from = i + ngram;
    for (int32_t j = 0; j < max_out; ++j) {
      const int32_t at = from + j;
      out[j] = at < n ? tokens[at] : out[at - n];
    }
    return max_out;
  }
  return 0;
}

NgramDrafter::NgramDrafter(int32_t ngram) : ngram_(ngram) {
  if (ngram < 1) fail("--lookup-ngram must be >= 1 (got %d)", ngram);
}

void NgramDrafter::propose(const std::vector<int32_t>& history, int32_t max_tokens, Draft& draft) {
  draft.clear();
  draft.point_mass = true;
  max_tokens = std::min(max_tokens, draft.max_tokens());
  if (max_tokens <= 0) return;
  draft.tokens.resize(max_tokens);
  const int32_t n = ngram_lookup(history.data(), static_cast<int32_t>(history.size()), ngram_,
                                 max_tokens, draft.tokens.data());
  draft.tokens.resize(n);
  draft.q_token.assign(n, 1.0f);
}

}  // namespace quanta
