// A pool of fixed-size KV blocks identified by index: reference counts so that sequences can
// share blocks, a free list in eviction order, automatic prefix caching of full blocks by
// chained hash, and the list of copy-on-write block copies the model runner must perform.
#pragma once

#include <cstdint>
#include <vector>

#include "kv/prefix_hash.h"

namespace quanta::kv {

// NOTE: design (after vLLM v1's BlockPool).
// - One flat array of block metadata: reference count, block hash (valid when `cached`), and
//   intrusive prev/next links of the free list. A block is free exactly when its count is 0.
// - The free list is in eviction order: allocate() takes its head. A freed block that holds
//   a cached (hashed) full block goes to the tail, so cached blocks are evicted least recently
//   freed first; a freed block without a hash goes to the head, since it is worth nothing, so
//   a cached block is evicted only when no uncached free block is left. Callers free a
//   sequence's blocks last block first (BlockTable does), so a prefix outlives its suffixes.
// - Cached blocks keep their hash while free. A prefix hit on a free block takes it out of the
//   free list (count 1); a hit on a used block adds a reference. A cached block leaves the hash
//   index only when it is reallocated (eviction) or uncached before being written.
// - Copy-on-write: BlockTable asks for a fresh block when it must write into a block that
//   others hold, and records (src, dst) here. The runner copies the K/V storage of those pairs,
//   in order, before the next forward pass, then calls clear_pending_copies().
// - Nothing allocates after construction except pending_copies_ beyond n_blocks entries.
struct BlockCopy {
  int32_t src = -1;
  int32_t dst = -1;
};

// Prefix cache counters in tokens: queried = tokens looked up, hit = tokens found cached.
struct PrefixCacheStats {
  int64_t queried_tokens = 0;
  int64_t hit_tokens = 0;
  double hit_rate() const {
    return queried_tokens > 0 ? static_cast<double>(hit_tokens) / queried_tokens : 0.0;
  }
};

class BlockPool {
 public:
  explicit BlockPool(int32_t n_blocks);

  int32_t n_blocks() const { return n_blocks_; }
  int32_t n_free() const { return n_free_; }
  int32_t n_used() const { return n_blocks() - n_free_; }
  // Blocks holding a hash (used or free).
  int32_t n_cached() const { return index_.size(); }

  // The head of the free list with reference count 1 (evicting its hash, if any), or -1 when
  // no block is free.
  int32_t allocate();
  // Adds a reference to an allocated block.
  void retain(int32_t block);
  // Drops a reference; the block returns to the free list at zero.
  void release(int32_t block);
  int32_t ref_count(int32_t block) const { return meta_[block].ref_count; }

  // Prefix cache.
  bool is_cached(int32_t block) const { return meta_[block].cached; }
  uint64_t block_hash(int32_t block) const { return meta_[block].hash; }
  // The cached block under `hash` (used or free), or -1. No side effect.
  int32_t find_cached(uint64_t hash) const { return index_.find(hash); }
  // A prefix hit: the cached block under `hash` with one more reference (taken out of the free
  // list when it was free), or -1 on a miss.
  int32_t acquire_cached(uint64_t hash);
  // Registers an allocated block whose K/V rows are complete as the cached block for `hash`.
  // False (the block stays as it was) when another block already holds the hash or this block
  // holds a different one.
  bool cache_block(int32_t block, uint64_t hash);
  // Forgets a block's hash (before its rows are overwritten).
  void uncache_block(int32_t block);
  void record_prefix_lookup(int64_t queried_tokens, int64_t hit_tokens);
  const PrefixCacheStats& prefix_stats() const { return stats_; }

  // Copy-on-write.
  void record_copy(int32_t src, int32_t dst) { pending_copies_.push_back({src, dst}); }
  const std::vector<BlockCopy>& pending_copies() const { return pending_copies_; }
  void clear_pending_copies() { pending_copies_.clear(); }

  // The free blocks from head (next allocated) to tail, for tests and debugging.
  std::vector<int32_t> free_list() const;
  // Aborts unless the free list, counts and hash index agree (tests and debugging).
  void check_consistency() const;

 private:
  // One block's metadata: 24 bytes.
  struct BlockMeta {
    uint64_t hash = 0;      // valid when cached
    int32_t ref_count = 0;  // 0 = in the free list
    int32_t prev = -1;      // free-list links: block ids, or n_blocks for the sentinel
    int32_t next = -1;
    bool cached = false;
  };

  void unlink(int32_t block);
  void link_before(int32_t block, int32_t next);  // inserts block in front of `next`

  int32_t n_blocks_;
  // [n_blocks + 1]; entry n_blocks is the free list's sentinel: its next is the head (first
  // allocated), its prev the tail.
  std::vector<BlockMeta> meta_;
  int32_t n_free_ = 0;
  BlockHashIndex index_;  // hash -> cached block
  PrefixCacheStats stats_;
  std::vector<BlockCopy> pending_copies_;
};

}  // namespace quanta::kv
