// KV storage: for every layer, a K pool and a V pool of F32 rows laid out in blocks,
// [n_blocks, block_size, n_kv_head * head_dim], sized once at load time, plus the BlockPool
// that hands blocks to sequences. Attention reads it through ops::PagedKvView.
#pragma once

#include <cstdint>
#include <vector>

#include "core/aligned_buffer.h"
#include "kv/block_pool.h"
#include "kv/block_table.h"
#include "ops/attention.h"

namespace quanta::kv {

struct KvLayout {
  int32_t n_layer = 0;
  int32_t n_kv_head = 0;
  int32_t head_dim = 0;
  int32_t block_size = 16;  // tokens per block
  int32_t n_blocks = 0;

  int64_t row_floats() const { return static_cast<int64_t>(n_kv_head) * head_dim; }
  // Bytes of K + V for all layers and blocks.
  uint64_t total_bytes() const;
};

class KvCache {
 public:
  explicit KvCache(const KvLayout& layout);

  const KvLayout& layout() const { return layout_; }
  BlockPool& pool() { return pool_; }
  // A table for a new sequence of at most max_tokens tokens.
  BlockTable new_table(int32_t max_tokens) const { return BlockTable(layout_.block_size, max_tokens); }

  // K / V row of `layer` for position `pos` of the sequence described by `table`.
  float* k_row(int32_t layer, const BlockTable& table, int32_t pos);
  float* v_row(int32_t layer, const BlockTable& table, int32_t pos);
  ops::PagedKvView view(int32_t layer, const BlockTable& table) const;

 private:
  int64_t row_offset(const BlockTable& table, int32_t pos) const;

  KvLayout layout_;
  BlockPool pool_;
  std::vector<AlignedBuffer> k_;  // [n_layer] pools
  std::vector<AlignedBuffer> v_;
};

}  // namespace quanta::kv
