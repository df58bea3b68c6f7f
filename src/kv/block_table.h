// One sequence's block table: the ordered list of pool blocks holding its K/V rows.
// Append-only while generating; truncation (speculative rollback, preemption) releases
// whole tail blocks. Capacity is reserved up front so growing never allocates.
#pragma once

#include <cstdint>
#include <vector>

#include "kv/block_pool.h"

namespace quanta::kv {

// NOTE: sharing and copy-on-write. A table may share blocks with other tables (a cached
// prefix, or the prompt of a sibling sequence when a request asks for n > 1 completions).
// Full blocks are never written again, so sharing them needs nothing more. Rows are written
// only at positions >= n_tokens() after append(), so the one block a write can hit while
// shared is the table's partial last block: append() then gives the table a fresh block and
// records a (src, dst) copy in the pool (the runner copies the rows before the forward pass).
// When the table holds that block alone but it is still registered in the prefix cache (a
// truncation into a cached full block), append() removes its hash instead of copying.
class BlockTable {
 public:
  BlockTable(int32_t block_size, int32_t max_tokens);

  int32_t block_size() const { return block_size_; }
  int32_t max_tokens() const { return max_tokens_; }
  int32_t n_tokens() const { return n_tokens_; }
  int32_t n_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  const std::vector<int32_t>& blocks() const { return blocks_; }

  // Blocks that append(pool, n) takes from the pool (new blocks, plus one when it must copy
  // a shared last block), or -1 when n_tokens() + n exceeds max_tokens.
  int32_t blocks_to_append(const BlockPool& pool, int32_t n) const;
  // Makes room for n_tokens() + n more tokens, allocating blocks from `pool` (copy-on-write
  // for a shared last block), and counts them as present. False (and no change) when the pool
  // or max_tokens cannot hold them.
  bool append(BlockPool& pool, int32_t n);
  // Keeps the first n tokens; releases blocks no longer needed, last block first.
  void truncate(BlockPool& pool, int32_t n);
  // Releases everything.
  void clear(BlockPool& pool) { truncate(pool, 0); }

  // On an empty table: takes one reference to each cached block of the longest run
  // hashes[0, k) found in the pool's prefix cache; n_tokens() becomes k * block_size.
  // Returns k. (Statistics are the caller's: BlockPool::record_prefix_lookup.)
  int32_t start_from_prefix(BlockPool& pool, const uint64_t* hashes, int32_t n_hashes);
  // On an empty table: shares the blocks holding the first n tokens of `other`
  // (n <= other.n_tokens()), one more reference each.
  void share_prefix(BlockPool& pool, const BlockTable& other, int32_t n);
  // Offers full blocks [0, n_full) to the prefix cache under hashes[i]; their K/V rows must be
  // complete. A hash already held by another block leaves this block uncached.
  void cache_full_blocks(BlockPool& pool, const uint64_t* hashes, int32_t n_full);

 private:
  int32_t blocks_for(int64_t n_tokens) const {
    return static_cast<int32_t>((n_tokens + block_size_ - 1) / block_size_);
  }
  bool last_block_shared(const BlockPool& pool, int32_t n) const;

  int32_t block_size_;
  int32_t max_tokens_;
  int32_t n_tokens_ = 0;
  int32_t n_offered_ = 0;        // blocks [0, n_offered_) already offered to the prefix cache
  std::vector<int32_t> blocks_;  // capacity ceil(max_tokens / block_size)
};

}  // namespace quanta::kv
