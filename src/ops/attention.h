// Scaled-dot-product attention over a paged K/V history (vLLM-style: K/V rows live in
// fixed-size blocks found through a block table), F32, F16, Q8_0 or Q4_0 rows. Grouped-query
// aware: query head h reads KV head h / (n_head / n_kv_head). attention_head is the reference
// (the oracle of the flash kernel in ops/flash_attention.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace quanta::ops {

// One layer's K and V pools seen through one sequence's block table. Within a block the rows
// are grouped by KV head (vLLM's layout), so one head's block_size rows are contiguous and a
// kernel working on one KV head streams memory instead of striding over the other heads.
struct PagedKvView {
  const void* k = nullptr;        // [n_blocks, n_kv_head, block_size, row_bytes] bytes
  const void* v = nullptr;        // same layout as k
  GgmlType type = GgmlType::F32;  // F32, F16, Q8_0 or Q4_0
  int32_t n_kv_head = 0;
  int32_t head_dim = 0;
  size_t row_bytes = 0;                // bytes of one head's row: row_size(type, head_dim)
  int32_t block_size = 0;              // tokens per block
  const int32_t* block_ids = nullptr;  // the sequence's block table

  // Head `kv_head`'s row at position `pos`: head_dim values of `type`; T = float for F32,
  // uint16_t (F16 bits) for F16, uint8_t (ggml blocks) for the quantized types.
  template <typename T = float>
  const T* k_row(int32_t pos, int32_t kv_head) const {
    return reinterpret_cast<const T*>(static_cast<const uint8_t*>(k) + offset(pos, kv_head));
  }
  template <typename T = float>
  const T* v_row(int32_t pos, int32_t kv_head) const {
    return reinterpret_cast<const T*>(static_cast<const uint8_t*>(v) + offset(pos, kv_head));
  }
  // Byte offset of that row in the pools.
  size_t offset(int32_t pos, int32_t kv_head) const {
    const size_t block = static_cast<size_t>(block_ids[pos / block_size]);
    return ((block * n_kv_head + kv_head) * block_size + pos % block_size) * row_bytes;
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
// `head`. scores: scratch of n_kv floats. Full score row, two-pass softmax. For a quantized
// K the query is first quantized to the type's vec_dot_type (Q8_0) and each score is the
// type's scalar reference dot product, as llama.cpp does; V rows are dequantized.
void attention_head(const float* q_head, const PagedKvView& kv, int32_t n_kv,
                    const AttentionShape& shape, int32_t head, float* scores, float* out_head);

}  // namespace quanta::ops
