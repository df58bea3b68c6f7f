// A pool of fixed-size KV blocks identified by index: a free list plus reference counts, so
// that sequences can share blocks (prompt sharing, later prefix caching and copy-on-write).
#pragma once

#include <cstdint>
#include <vector>

namespace quanta::kv {

class BlockPool {
 public:
  explicit BlockPool(int32_t n_blocks);

  int32_t n_blocks() const { return static_cast<int32_t>(ref_counts_.size()); }
  int32_t n_free() const { return static_cast<int32_t>(free_.size()); }

  // A free block with reference count 1, or -1 when none is left.
  int32_t allocate();
  // Adds a reference to an allocated block.
  void retain(int32_t block);
  // Drops a reference; the block returns to the free list at zero.
  void release(int32_t block);
  int32_t ref_count(int32_t block) const { return ref_counts_[block]; }

 private:
  std::vector<int32_t> free_;        // stack of free block ids (capacity n_blocks)
  std::vector<int32_t> ref_counts_;  // [n_blocks]
};

}  // namespace quanta::kv
