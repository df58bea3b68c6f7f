// BlockTable: grows and shrinks a sequence's block list against a BlockPool, with prefix
// sharing and copy-on-write of a shared partial last block.
#include "kv/block_table.h"

#include <algorithm>

#include "core/error.h"

namespace quanta::kv {

BlockTable::BlockTable(int32_t block_size, int32_t max_tokens)
    : block_size_(block_size), max_tokens_(max_tokens) {
  QUANTA_ASSERT(block_size > 0 && max_tokens > 0);
  blocks_.reserve(blocks_for(max_tokens));
}

// True when appending n > 0 tokens writes into a partial last block that others hold.
bool BlockTable::last_block_shared(const BlockPool& pool, int32_t n) const {
  return n > 0 && n_tokens_ % block_size_ != 0 && pool.ref_count(blocks_.back()) > 1;
}

int32_t BlockTable::blocks_to_append(const BlockPool& pool, int32_t n) const {
  QUANTA_ASSERT(n >= 0);
  const int64_t wanted = static_cast<int64_t>(n_tokens_) + n;
  if (wanted > max_tokens_) return -1;
  return blocks_for(wanted) - n_blocks() + (last_block_shared(pool, n) ? 1 : 0);
}

bool BlockTable::append(BlockPool& pool, int32_t n) {
  const int32_t needed = blocks_to_append(pool, n);
  if (needed < 0 || needed > pool.n_free()) return false;
  if (n > 0 && n_tokens_ % block_size_ != 0) {
    const int32_t last = blocks_.back();
    if (pool.ref_count(last) > 1) {
      const int32_t copy = pool.allocate();
      pool.record_copy(last, copy);
      pool.release(last);
      blocks_.back() = copy;
    } else {
      pool.uncache_block(last);  // its rows past n_tokens_ are about to change
    }
  }
  const int32_t target = blocks_for(static_cast<int64_t>(n_tokens_) + n);
  while (n_blocks() < target) {
    const int32_t block = pool.allocate();
    QUANTA_ASSERT(block >= 0);  // n_free() was checked above
    blocks_.push_back(block);
  }
  n_tokens_ += n;
  return true;
}

void BlockTable::truncate(BlockPool& pool, int32_t n) {
  QUANTA_ASSERT(n >= 0 && n <= n_tokens_);
  const int32_t keep = blocks_for(n);
  while (n_blocks() > keep) {
    pool.release(blocks_.back());
    blocks_.pop_back();
  }
  n_tokens_ = n;
  n_offered_ = std::min(n_offered_, n / block_size_);
}

int32_t BlockTable::start_from_prefix(BlockPool& pool, const uint64_t* hashes, int32_t n_hashes) {
  QUANTA_ASSERT(blocks_.empty() && n_tokens_ == 0);
  const int32_t limit = std::min(n_hashes, max_tokens_ / block_size_);
  for (int32_t i = 0; i < limit; ++i) {
    const int32_t block = pool.acquire_cached(hashes[i]);
    if (block < 0) break;
    blocks_.push_back(block);
  }
  n_tokens_ = n_blocks() * block_size_;
  n_offered_ = n_blocks();
  return n_blocks();
}

void BlockTable::share_prefix(BlockPool& pool, const BlockTable& other, int32_t n) {
  QUANTA_ASSERT(blocks_.empty() && n_tokens_ == 0);
  QUANTA_ASSERT(n >= 0 && n <= other.n_tokens() && n <= max_tokens_);
  QUANTA_ASSERT(other.block_size() == block_size_);
  const int32_t count = blocks_for(n);
  for (int32_t i = 0; i < count; ++i) {
    pool.retain(other.blocks_[i]);
    blocks_.push_back(other.blocks_[i]);
  }
  n_tokens_ = n;
  n_offered_ = 0;
}

void BlockTable::cache_full_blocks(BlockPool& pool, const uint64_t* hashes, int32_t n_full) {
  QUANTA_ASSERT(n_full >= 0 && n_full <= n_tokens_ / block_size_);
  for (int32_t i = n_offered_; i < n_full; ++i) pool.cache_block(blocks_[i], hashes[i]);
  n_offered_ = std::max(n_offered_, n_full);
}

}  // namespace quanta::kv
