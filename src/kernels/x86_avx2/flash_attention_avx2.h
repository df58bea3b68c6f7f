// AVX2+FMA+F16C flash attention for a block of query tokens of one sequence and one KV head
// group over a paged F32, F16, Q8_0 or Q4_0 KV cache, quantized rows possibly packed across
// narrow heads (the portable version and the contract are in ops/flash_attention.h).
// Plain declarations: call only when the CPU has AVX2, FMA and F16C.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace quanta::kernels::avx2 {

// n_tokens query tokens of one sequence (same K/V and block table), each with its `group`
// query heads sharing KV head `kv_head`; token t attends to positions [0, n_kv[t]). Every
// K/V tile is loaded (converted) once for all n_tokens * group query rows. Each row's result
// is the same bits whatever the other rows of its block.
struct FlashGroupArgs {
  int32_t n_tokens = 1;             // 1 .. flash_block_tokens(group)
  const float* const* q = nullptr;  // [n_tokens] -> [group, head_dim] query rows
  float* const* out = nullptr;      // [n_tokens] -> [group, head_dim] outputs
  const int32_t* n_kv = nullptr;    // [n_tokens] positions each token attends to, >= 1
  const void* k = nullptr;          // [n_blocks, n_kv_head / row_heads, block_size, row_bytes]
  const void* v = nullptr;          // same layout as k
  GgmlType type = GgmlType::F32;    // F32, F16, Q8_0 or Q4_0 rows
  // KV heads per stored row: 1, or (Q8_0/Q4_0 only) row_heads consecutive heads' values
  // quantized together in 32-value blocks, read by dequantizing the head's blocks to F32.
  int32_t row_heads = 1;
  size_t row_bytes = 0;  // bytes of one stored row
  // Quantized K with row_heads == 1 only: the query rows are quantized with q_from_float (a
  // Q8_0 quantizer, q_row_bytes per row) and scored against the K blocks with integer dot
  // products.
  FromFloatFn q_from_float = nullptr;
  size_t q_row_bytes = 0;
  int32_t n_kv_head = 0;
  int32_t kv_head = 0;
  int32_t head_dim = 0;  // a multiple of 8
  int32_t block_size = 0;
  const int32_t* block_ids = nullptr;  // the sequence's block table
  int32_t group = 0;                   // query heads per KV head
  float scale = 1.0f;
  float* scratch = nullptr;  // flash_scratch_floats(group, head_dim) floats
};

// Most query tokens one call takes: max(1, 32 / group) (blocks of up to 32 query rows).
int32_t flash_block_tokens(int32_t group);
// Floats of scratch one call needs (enough for every row type and block size).
int64_t flash_scratch_floats(int32_t group, int32_t head_dim);
void flash_attention_group(const FlashGroupArgs& args);

}  // namespace quanta::kernels::avx2
