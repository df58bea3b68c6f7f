// BlockTable: grows and shrinks a sequence's block list against a BlockPool.
#include "kv/block_table.h"

#include "core/error.h"

namespace quanta::kv {

BlockTable::BlockTable(int32_t block_size, int32_t max_tokens)
    : block_size_(block_size), max_tokens_(max_tokens) {
  QUANTA_ASSERT(block_size > 0 && max_tokens > 0);
  blocks_.reserve((max_tokens + block_size - 1) / block_size);
}

bool BlockTable::append(BlockPool& pool, int32_t n) {
  QUANTA_ASSERT(n >= 0);
  const int64_t wanted = static_cast<int64_t>(n_tokens_) + n;
  if (wanted > max_tokens_) return false;
  const size_t blocks_needed = static_cast<size_t>((wanted + block_size_ - 1) / block_size_);
  const size_t had = blocks_.size();
  while (blocks_.size() < blocks_needed) {
    const int32_t block = pool.allocate();
    if (block < 0) {
      while (blocks_.size() > had) {
        pool.release(blocks_.back());
        blocks_.pop_back();
      }
      return false;
    }
    blocks_.push_back(block);
  }
  n_tokens_ = static_cast<int32_t>(wanted);
  return true;
}

void BlockTable::truncate(BlockPool& pool, int32_t n) {
  QUANTA_ASSERT(n >= 0 && n <= n_tokens_);
  const size_t keep = static_cast<size_t>((n + block_size_ - 1) / block_size_);
  while (blocks_.size() > keep) {
    pool.release(blocks_.back());
    blocks_.pop_back();
  }
  n_tokens_ = n;
}

}  // namespace quanta::kv
