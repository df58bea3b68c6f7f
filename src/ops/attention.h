// Scaled-dot-product attention over a paged K/V history (vLLM-style: K/V rows live in
// fixed-size blocks found through a block table), F32, F16, Q8_0 or Q4_0 rows, quantized rows
// packed across heads when a head is narrower than a block. Grouped-query aware: query head h
// reads KV head h / (n_head / n_kv_head). attention_head is the reference (the oracle of the
// flash kernel in ops/flash_attention.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace quanta::ops {

// KV heads per stored row of a `type` KV cache whose heads hold head_dim values: 1 for F32 and
// F16 and whenever head_dim is a whole number of the type's blocks; otherwise (a head narrower
// than, or not a multiple of, a 32-value Q8_0/Q4_0 block) the fewest consecutive heads whose
// values fill whole blocks, lcm(32, head_dim) / head_dim (head_dim 8: 4 heads per 32-value
// block). Such "packed" rows are quantized along the token's n_kv_head * head_dim values, as
// llama.cpp quantizes its K/V tensors; they need n_kv_head to be a multiple of the result.
int32_t kv_row_heads(GgmlType type, int32_t head_dim);

// One layer's K and V pools seen through one sequence's block table. Within a block the rows
// are grouped by KV head (vLLM's layout), so one head's block_size rows are contiguous and a
// kernel working on one KV head streams memory instead of striding over the other heads.
// A stored row normally holds one KV head's head_dim values; a packed row (row_heads > 1)
// holds the values of row_heads consecutive heads [r * row_heads, (r + 1) * row_heads), and
// kernels dequantize the blocks that hold the head they need (head_span).
struct PagedKvView {
  const void* k = nullptr;        // [n_blocks, n_kv_head / row_heads, block_size, row_bytes]
  const void* v = nullptr;        // same layout as k
  GgmlType type = GgmlType::F32;  // F32, F16, Q8_0 or Q4_0
  int32_t n_kv_head = 0;
  int32_t head_dim = 0;
  int32_t row_heads = 1;   // KV heads per stored row: kv_row_heads(type, head_dim)
  size_t row_bytes = 0;    // bytes of one stored row: row_size(type, row_heads * head_dim)
  int32_t block_size = 0;  // tokens per block
  const int32_t* block_ids = nullptr;  // the sequence's block table

  // The stored row holding head `kv_head`'s values at position `pos` (head_dim values for an
  // unpacked row); T = float for F32, uint16_t (F16 bits) for F16, uint8_t (ggml blocks) for
  // the quantized types.
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
    const size_t rows = static_cast<size_t>(n_kv_head / row_heads);  // stored rows per token
    return ((block * rows + kv_head / row_heads) * block_size + pos % block_size) * row_bytes;
  }

  // Where head kv_head's values lie in its packed row: the whole blocks that hold them start
  // `byte_offset` bytes into the row and hold `n_values` values, the head's head_dim values
  // starting at index `skip` of those.
  struct HeadSpan {
    size_t byte_offset = 0;
    int32_t n_values = 0;
    int32_t skip = 0;
  };
  HeadSpan head_span(int32_t kv_head) const;
  // Floats of the buffer the dequantized blocks of one head_span need, for any head.
  static int32_t max_span_values(int32_t head_dim);
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
// type's scalar reference dot product, as llama.cpp does; V rows are dequantized. Packed rows
// (row_heads > 1) are dequantized, K and V, and attended to exactly as F32 rows holding the
// dequantized values.
void attention_head(const float* q_head, const PagedKvView& kv, int32_t n_kv,
                    const AttentionShape& shape, int32_t head, float* scores, float* out_head);

}  // namespace quanta::ops
