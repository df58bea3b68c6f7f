// KV storage: for every layer, a K pool and a V pool of F32 or F16 rows laid out in blocks,
// [n_blocks, n_kv_head, block_size, head_dim] (each head's rows of a block contiguous),
// sized once at load time, plus the BlockPool that hands blocks to sequences. Attention reads
// it through ops::PagedKvView.
#pragma once

#include <cstdint>
#include <vector>

#include "core/aligned_buffer.h"
#include "kv/block_pool.h"
#include "kv/block_table.h"
#include "ops/attention.h"
#include "quant/types.h"

namespace quanta::kv {

struct KvLayout {
  int32_t n_layer = 0;
  int32_t n_kv_head = 0;
  int32_t head_dim = 0;
  int32_t block_size = 16;  // tokens per block
  int32_t n_blocks = 0;
  GgmlType type = GgmlType::F32;  // element type of the rows: F32 or F16

  int64_t row_elems() const { return static_cast<int64_t>(n_kv_head) * head_dim; }
  size_t elem_bytes() const { return type == GgmlType::F16 ? 2 : 4; }
  // Bytes of K + V for all layers and blocks.
  uint64_t total_bytes() const;
};

// Throws quanta::Error unless `type` can be a KV cache type (F32, F16).
void check_kv_type(GgmlType type);

class KvCache {
 public:
  explicit KvCache(const KvLayout& layout);

  const KvLayout& layout() const { return layout_; }
  BlockPool& pool() { return pool_; }
  // A table for a new sequence of at most max_tokens tokens.
  BlockTable new_table(int32_t max_tokens) const {
    return BlockTable(layout_.block_size, max_tokens);
  }

  // Writes one token's K and V rows ([n_kv_head, head_dim] floats each) of `layer` for
  // position `pos` of the sequence described by `table`, converting them to the cache type
  // (F16: round to nearest even).
  void store(int32_t layer, const BlockTable& table, int32_t pos, const float* k, const float* v);
  ops::PagedKvView view(int32_t layer, const BlockTable& table) const;
  // Copies every layer's K and V rows of block `src` into block `dst` (copy-on-write of a
  // shared partial block; see BlockPool::pending_copies).
  void copy_block(int32_t src, int32_t dst);

 private:
  // Element offset of position pos's row of KV head 0; head h's row is h * block_size *
  // head_dim further.
  int64_t row_offset(const BlockTable& table, int32_t pos) const;

  KvLayout layout_;
  BlockPool pool_;
  std::vector<AlignedBuffer> k_;  // [n_layer] pools
  std::vector<AlignedBuffer> v_;
};

}  // namespace quanta::kv
