// Flash attention on the CPU over a paged F32, F16, Q8_0 or Q4_0 KV cache: tiles of KV
// positions, online softmax (running max and sum, accumulator rescaled when the max grows),
// never a full score row; grouped-query aware, so each K/V row is read once for all query
// heads of its KV head. Quantized K is scored against the query quantized to Q8_0 (integer
// block dot products, as llama.cpp); quantized V rows are dequantized per tile. Packed
// quantized rows (heads narrower than a block) are dequantized, K and V, into F32 tiles and
// attended to exactly as an F32 cache holding the dequantized values (the same bits).
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "ops/attention.h"

namespace quanta::ops {

// KV positions per tile: the score tile is [group, kFlashTile], and F16 (K, V), packed (K, V)
// and quantized (V) rows are converted to F32 one tile at a time ([kFlashTile, head_dim]).
constexpr int32_t kFlashTile = 32;

// Floats of scratch one flash_attention_group call needs (one per thread).
int64_t flash_scratch_floats(const AttentionShape& shape);

// Attention of one token's query heads kv_head * group .. kv_head * group + group - 1 (group =
// n_head / n_kv_head) over KV positions [0, n_kv) of KV head `kv_head`:
// q_group, out_group: [group, head_dim] (contiguous, as in a [n_head, head_dim] row).
// scratch: flash_scratch_floats(shape) floats.
void flash_attention_group(const float* q_group, const PagedKvView& kv, int32_t n_kv,
                           const AttentionShape& shape, int32_t kv_head, float* scratch,
                           float* out_group);

// A batch of query tokens, each attending to its own sequence's positions 0..positions[t].
struct AttentionBatch {
  int32_t n_tokens = 0;
  const float* q = nullptr;            // [n_tokens, n_head * head_dim]
  float* out = nullptr;                // [n_tokens, n_head * head_dim]
  const PagedKvView* kv = nullptr;     // [n_tokens] the K/V each token reads
  const int32_t* positions = nullptr;  // [n_tokens] last position each token attends to
};

// Attention of every batch token on the pool, one work item per (chunk of consecutive tokens,
// KV head). The AVX2 kernel takes a chunk's runs of tokens of one sequence (the same K/V) as
// one block of up to 32 query rows, so each K/V tile is converted once for all of them; the
// portable kernel goes token by token. Every token gets the bits of its own
// flash_attention_group call, whatever its chunk or the thread count.
// scratch: pool.n_threads() * flash_scratch_floats(shape) floats.
void flash_attention(const AttentionBatch& batch, const AttentionShape& shape, float* scratch,
                     ThreadPool& pool);

}  // namespace quanta::ops
