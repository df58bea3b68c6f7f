// BlockPool: LIFO free list with reference counts.
#include "kv/block_pool.h"

#include "core/error.h"

namespace quanta::kv {

BlockPool::BlockPool(int32_t n_blocks) : ref_counts_(n_blocks, 0) {
  free_.reserve(n_blocks);
  // Lowest ids on top of the stack, so allocation order is 0, 1, 2, ...
  for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

int32_t BlockPool::allocate() {
  if (free_.empty()) return -1;
  const int32_t block = free_.back();
  free_.pop_back();
  ref_counts_[block] = 1;
  return block;
}

void BlockPool::retain(int32_t block) {
  QUANTA_ASSERT(block >= 0 && block < n_blocks() && ref_counts_[block] > 0);
  ++ref_counts_[block];
}

void BlockPool::release(int32_t block) {
  QUANTA_ASSERT(block >= 0 && block < n_blocks() && ref_counts_[block] > 0);
  if (--ref_counts_[block] == 0) free_.push_back(block);
}

}  // namespace quanta::kv
