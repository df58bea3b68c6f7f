// AVX2+FMA+F16C flash attention for one token and one KV head group over a paged F32/F16 KV
// cache (the portable version and the contract are in ops/flash_attention.h). Plain
// declarations: call only when the CPU has AVX2, FMA and F16C.
#pragma once

#include <cstdint>

namespace quanta::kernels::avx2 {

// One token's `group` query heads sharing KV head `kv_head`, against positions [0, n_kv).
struct FlashGroupArgs {
  const float* q = nullptr;  // [group, head_dim]
  float* out = nullptr;      // [group, head_dim]
  const void* k = nullptr;   // [n_blocks, n_kv_head, block_size, head_dim] F32 or F16
  const void* v = nullptr;   // same layout as k
  bool f16 = false;          // K/V elements are F16 bits (else F32)
  int32_t n_kv_head = 0;
  int32_t kv_head = 0;
  int32_t head_dim = 0;  // a multiple of 8
  int32_t block_size = 0;
  const int32_t* block_ids = nullptr;  // the sequence's block table
  int32_t n_kv = 0;                    // >= 1
  int32_t group = 0;                   // query heads per KV head
  float scale = 1.0f;
  float* scratch = nullptr;  // flash_scratch_floats(group, head_dim) floats
};

// Floats of scratch one call needs.
int64_t flash_scratch_floats(int32_t group, int32_t head_dim);
void flash_attention_group(const FlashGroupArgs& args);

}  // namespace quanta::kernels::avx2
