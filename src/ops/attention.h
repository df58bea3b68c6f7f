// Reference scaled-dot-product attention for one query token over a paged K/V history
// (vLLM-style: K/V rows live in fixed-size blocks found through a block table).
// Grouped-query aware: query head h reads KV head h / (n_head / n_kv_head).
#pragma once

#include <cstdint>

namespace quanta::ops {

// One layer's K and V pools seen through one sequence's block table.
struct PagedKvView {
  const float* k = nullptr;         // [n_blocks, block_size, row_stride]
  const float* v = nullptr;         // [n_blocks, block_size, row_stride]
  int64_t row_stride = 0;           // floats per token: n_kv_head * head_dim
  int32_t block_size = 0;           // tokens per block
  const int32_t* block_ids = nullptr;  // the sequence's block table

  const float* k_row(int32_t pos) const { return k + offset(pos); }
  const float* v_row(int32_t pos) const { return v + offset(pos); }
  int64_t offset(int32_t pos) const {
    const int64_t block = block_ids[pos / block_size];
    return (block * block_size + pos % block_size) * row_stride;
  }
};

struct AttentionShape {
  int32_t n_head = 0;
  int32_t n_kv_head = 0;
  int32_t head_dim = 0;
  float scale = 1.0f;  // usually 1 / sqrt(head_dim)
};

// out_head[head_dim] = softmax(q_head · K[0..n_kv)^T * scale) · V[0..n_kv) for query head
// `head`. scores: scratch of n_kv floats.
void attention_head(const float* q_head, const PagedKvView& kv, int32_t n_kv,
                    const AttentionShape& shape, int32_t head, float* scores, float* out_head);

}  // namespace quanta::ops
