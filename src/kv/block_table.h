// One sequence's block table: the ordered list of pool blocks holding its K/V rows.
// Append-only while generating; truncation (speculative rollback, preemption) releases
// whole tail blocks. Capacity is reserved up front so growing never allocates.
#pragma once

#include <cstdint>
#include <vector>

#include "kv/block_pool.h"

namespace quanta::kv {

class BlockTable {
 public:
  BlockTable(int32_t block_size, int32_t max_tokens);

  int32_t block_size() const { return block_size_; }
  int32_t max_tokens() const { return max_tokens_; }
  int32_t n_tokens() const { return n_tokens_; }
  const std::vector<int32_t>& blocks() const { return blocks_; }

  // Makes room for n_tokens() + n more tokens, allocating blocks from `pool`, and counts
  // them as present. False (and no change) when the pool or max_tokens cannot hold them.
  bool append(BlockPool& pool, int32_t n);
  // Keeps the first n tokens; releases blocks no longer needed.
  void truncate(BlockPool& pool, int32_t n);
  // Releases everything.
  void clear(BlockPool& pool) { truncate(pool, 0); }

 private:
  int32_t block_size_;
  int32_t max_tokens_;
  int32_t n_tokens_ = 0;
  std::vector<int32_t> blocks_;  // capacity ceil(max_tokens / block_size)
};

}  // namespace quanta::kv
