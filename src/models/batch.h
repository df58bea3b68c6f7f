// A batch of tokens for one forward pass: any mix of prompt chunks and decode tokens from
// one or more sequences. Plain arrays owned by the caller (sized once, reused every step).
#pragma once

#include <cstdint>

#include "kv/block_table.h"

namespace quanta::models {

struct Batch {
  int32_t n_tokens = 0;
  const int32_t* tokens = nullptr;     // [n_tokens] token ids
  const int32_t* positions = nullptr;  // [n_tokens] position of each token in its sequence
  const int32_t* seq = nullptr;        // [n_tokens] index into `tables`
  const uint8_t* want_logits = nullptr;  // [n_tokens] 1 = return its logits; null = last only
  const kv::BlockTable* const* tables = nullptr;  // per sequence; must already hold room for
                                                  // every position in the batch
};

}  // namespace quanta::models
