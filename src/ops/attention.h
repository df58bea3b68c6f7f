// Scaled-dot-product attention over a paged K/V history (vLLM-style: K/V rows live in
// fixed-size blocks found through a block table), F32 or F16 rows. Grouped-query aware: query
// head h reads KV head h / (n_head / n_kv_head). attention_head is the reference (the oracle
// of the flash kernel in ops/flash_attention.h).
#pragma once

#include <cstdint>

#include "quant/types.h"

namespace quanta::ops {

// One layer's K and V pools seen through one sequence's block table. Within a block the rows
// are grouped by KV head (vLLM's layout), so one head's block_size rows are contiguous and a
// kernel working on one KV head streams memory instead of striding over the other heads.
struct PagedKvView {
  const void* k = nullptr;        // [n_blocks, n_kv_head, block_size, head_dim] of `type`
  const void* v = nullptr;        // [n_blocks, n_kv_head, block_size, head_dim] of `type`
  GgmlType type = GgmlType::F32;  // F32 or F16
  int32_t n_kv_head = 0;
  int32_t head_dim = 0;
  int32_t block_size = 0;              // tokens per block
  const int32_t* block_ids = nullptr;  // the sequence's block table

  // Head `kv_head`'s row at position `pos`: head_dim elements, T = float for F32 and
  // uint16_t (F16 bits) for F16.
  template <typename T = float>
  const T* k_row(int32_t pos, int32_t kv_head) const {
    return static_cast<const T*>(k) + offset(pos, kv_head);
  }
  template <typename T = float>
  const T* v_row(int32_t pos, int32_t kv_head) const {
    return static_cast<const T*>(v) + offset(pos, kv_head);
  }
  // Element offset of that row in the pools.
  int64_t offset(int32_t pos, int32_t kv_head) const {
    const int64_t block = block_ids[pos / block_size];
    return ((block * n_kv_head + kv_head) * block_size + pos % block_size) * head_dim;
  }
};

struct AttentionShape {
  int32_t n_head = 0;
  int32_t n_kv_head = 0;
  int32_t head_dim = 0;
  float scale = 1.0f;  // usually 1 / sqrt(head_dim)

  int32_t group() const { return n_head / n_kv_head; }  // query heads per KV head
};

// out_head[head_dim] = softmax(q_head · K[0..n_kv)^T * scale) · V[0..n_kv) for query head
// `head`. scores: scratch of n_kv floats. Full score row, two-pass softmax.
void attention_head(const float* q_head, const PagedKvView& kv, int32_t n_kv,
                    const AttentionShape& shape, int32_t head, float* scores, float* out_head);

}  // namespace quanta::ops
