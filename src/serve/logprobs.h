// Log-probabilities of a sampled token and its top alternatives under the softmax of the raw
// logits (before penalties and temperature), as the OpenAI API reports them.
#pragma once

#include <cstdint>

#include "serve/engine.h"

namespace quanta::serve {

// Fills `out` with `token`'s log-probability and the `top_n` (<= kMaxTopLogprobs) most likely
// tokens, most likely first, ties to the lower id; texts are left empty. NaN logits count as
// -inf. Allocates only `out.top`.
void token_logprobs(const float* logits, int32_t n_vocab, int32_t token, int32_t top_n,
                    TokenLogprob& out);

inline constexpr int32_t kMaxTopLogprobs = 20;

}  // namespace quanta::serve
