// BlockPool: reference counts, the intrusive free list in eviction order, and the prefix-cache
// hash index of full blocks.
#include "kv/block_pool.h"

#include "core/error.h"

namespace quanta::kv {

BlockPool::BlockPool(int32_t n_blocks)
    : n_blocks_(n_blocks), meta_(static_cast<size_t>(n_blocks) + 1), index_(n_blocks) {
  QUANTA_ASSERT(n_blocks >= 0);
  meta_[n_blocks].prev = meta_[n_blocks].next = n_blocks;  // empty circular list
  // Ascending ids from the head, so a fresh pool allocates 0, 1, 2, ...
  for (int32_t b = 0; b < n_blocks; ++b) link_before(b, n_blocks);
  n_free_ = n_blocks;
  pending_copies_.reserve(n_blocks);
}

void BlockPool::unlink(int32_t block) {
  BlockMeta& m = meta_[block];
  meta_[m.prev].next = m.next;
  meta_[m.next].prev = m.prev;
  m.prev = m.next = -1;
}

void BlockPool::link_before(int32_t block, int32_t next) {
  BlockMeta& m = meta_[block];
  m.next = next;
  m.prev = meta_[next].prev;
  meta_[m.prev].next = block;
  meta_[next].prev = block;
}

int32_t BlockPool::allocate() {
  if (n_free_ == 0) return -1;
  const int32_t block = meta_[n_blocks_].next;
  unlink(block);
  --n_free_;
  BlockMeta& m = meta_[block];
  if (m.cached) {  // eviction: the cached contents are about to be overwritten
    const bool erased = index_.erase(m.hash);
    QUANTA_ASSERT(erased);
    m.cached = false;
  }
  m.ref_count = 1;
  return block;
}

void BlockPool::retain(int32_t block) {
  QUANTA_ASSERT(block >= 0 && block < n_blocks_ && meta_[block].ref_count > 0);
  ++meta_[block].ref_count;
}

void BlockPool::release(int32_t block) {
  QUANTA_ASSERT(block >= 0 && block < n_blocks_ && meta_[block].ref_count > 0);
  BlockMeta& m = meta_[block];
  if (--m.ref_count > 0) return;
  // Cached blocks queue at the tail (LRU eviction); blocks without a hash are reused first.
  link_before(block, m.cached ? n_blocks_ : meta_[n_blocks_].next);
  ++n_free_;
}

int32_t BlockPool::acquire_cached(uint64_t hash) {
  const int32_t block = index_.find(hash);
  if (block < 0) return -1;
  BlockMeta& m = meta_[block];
  if (m.ref_count == 0) {
    unlink(block);
    --n_free_;
  }
  ++m.ref_count;
  return block;
}

bool BlockPool::cache_block(int32_t block, uint64_t hash) {
  QUANTA_ASSERT(block >= 0 && block < n_blocks_ && meta_[block].ref_count > 0);
  BlockMeta& m = meta_[block];
  if (m.cached) return m.hash == hash;
  if (!index_.insert(hash, block)) return false;
  m.cached = true;
  m.hash = hash;
  return true;
}

void BlockPool::uncache_block(int32_t block) {
  QUANTA_ASSERT(block >= 0 && block < n_blocks_);
  BlockMeta& m = meta_[block];
  if (!m.cached) return;
  const bool erased = index_.erase(m.hash);
  QUANTA_ASSERT(erased);
  m.cached = false;
  if (m.ref_count == 0) {  // a free block without a hash belongs at the head
    unlink(block);
    link_before(block, meta_[n_blocks_].next);
  }
}

void BlockPool::record_prefix_lookup(int64_t queried_tokens, int64_t hit_tokens) {
  QUANTA_ASSERT(hit_tokens >= 0 && hit_tokens <= queried_tokens);
  stats_.queried_tokens += queried_tokens;
  stats_.hit_tokens += hit_tokens;
}

std::vector<int32_t> BlockPool::free_list() const {
  std::vector<int32_t> out;
  for (int32_t b = meta_[n_blocks_].next; b != n_blocks_; b = meta_[b].next) out.push_back(b);
  return out;
}

void BlockPool::check_consistency() const {
  int32_t n_listed = 0;
  bool seen_cached = false;  // uncached free blocks all come before cached ones
  for (int32_t b = meta_[n_blocks_].next, prev = n_blocks_; b != n_blocks_;
       prev = b, b = meta_[b].next) {
    QUANTA_ASSERT(b >= 0 && b < n_blocks_ && meta_[b].prev == prev && meta_[b].ref_count == 0);
    QUANTA_ASSERT(!(seen_cached && !meta_[b].cached));
    seen_cached = seen_cached || meta_[b].cached;
    QUANTA_ASSERT(++n_listed <= n_blocks_);
  }
  int32_t n_zero = 0, n_hashed = 0;
  for (int32_t b = 0; b < n_blocks_; ++b) {
    const BlockMeta& m = meta_[b];
    QUANTA_ASSERT(m.ref_count >= 0);
    n_zero += m.ref_count == 0;
    if (m.cached) {
      ++n_hashed;
      QUANTA_ASSERT(index_.find(m.hash) == b);
    }
  }
  QUANTA_ASSERT(n_listed == n_free_ && n_zero == n_free_ && n_hashed == index_.size());
}

}  // namespace quanta::kv
