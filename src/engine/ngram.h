// Draft-free speculation by prompt lookup (llama.cpp's llama-lookup, vLLM's n-gram proposer):
// the last N tokens of the sequence are searched for earlier in the prompt and output, and the
// tokens that followed the latest earlier occurrence are proposed as a deterministic draft.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/speculative_draft.h"

namespace quanta {

// Finds the latest i + ngram < n with tokens[i, i + ngram) == tokens[n - ngram, n) and writes
// max_out tokens to out: tokens[i + ngram, n), continued periodically (the continuation
// repeats itself with period n - i - ngram, as the sequence would if it went on copying).
// Returns max_out, or 0 with no match or n <= ngram. ngram >= 1.
int32_t ngram_lookup(const int32_t* tokens, int32_t n, int32_t ngram, int32_t max_out,
                     int32_t* out);

class NgramDrafter : public Drafter {
 public:
  explicit NgramDrafter(int32_t ngram);  // throws quanta::Error unless ngram >= 1

  void propose(const std::vector<int32_t>& history, int32_t max_tokens, Draft& draft) override;
  void commit(const std::vector<int32_t>&) override {}

 private:
  int32_t ngram_;
};

}  // namespace quanta
