// Rotary position embedding, in the two pairings llama.cpp uses: NORM rotates adjacent pairs
// (x[2i], x[2i+1]) (Llama: the converter permutes Q/K to fit), NEOX rotates (x[i], x[i+d/2])
// (Qwen2, GPT-NeoX). Angles follow ggml: theta_i = p * freq_scale * base^(-2i/n_rot),
// computed by repeated multiplication exactly as ggml does, optionally divided by per-pair
// frequency factors (Llama 3.1's rope_freqs).
#pragma once

#include <cstdint>

namespace quanta::ops {

enum class RopeStyle { kNorm, kNeox };

struct RopeParams {
  RopeStyle style = RopeStyle::kNorm;
  int32_t n_rot = 0;           // rotated dimensions per head (<= head_dim, even)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;     // 1 / linear scaling factor
  const float* freq_factors = nullptr;  // [n_rot / 2] or null
};

// Fills cos_sin[2 * (n_rot / 2)] = {cos0, sin0, cos1, sin1, ...} for position `pos`.
void rope_cache(const RopeParams& params, int32_t pos, float* cos_sin);
// Rotates `n_heads` heads of `head_dim` values each (contiguous) using a rope_cache row.
void rope_apply(const RopeParams& params, const float* cos_sin, float* x, int32_t n_heads,
                int32_t head_dim);

// The rows a slice of a row of heads must begin and end on (multiples of this) so that it
// holds whole rotation pairs: 2 for NORM (adjacent pairs), head_dim for NEOX (the pairs span
// the head).
int32_t rope_row_align(RopeStyle style, int32_t head_dim);
// Rotates the pairs of x[begin, end) of a row of heads of `head_dim` values, as rope_apply
// does (the same float operations per element); begin and end: multiples of rope_row_align
// (or the row's end). Used in product epilogues that each own a slice of the row.
void rope_apply_range(const RopeParams& params, const float* cos_sin, float* x, int32_t head_dim,
                      int64_t begin, int64_t end);

}  // namespace quanta::ops
