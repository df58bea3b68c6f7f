// Rotary position embedding (see rope.h).
#include "ops/rope.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace quanta::ops {
namespace {

// The rotation of one pair; rope_apply and rope_apply_range share it so that both give the
// same bits.
inline void rotate_pair(float* a, float* b, float c, float s) {
  const float x0 = *a;
  const float x1 = *b;
  *a = x0 * c - x1 * s;
  *b = x0 * s + x1 * c;
}

}  // namespace

void rope_cache(const RopeParams& params, int32_t pos, float* cos_sin) {
  const float theta_scale = std::pow(params.freq_base, -2.0f / static_cast<float>(params.n_rot));
  float theta = static_cast<float>(pos);
  for (int32_t i = 0; i < params.n_rot / 2; ++i) {
    const float factor = params.freq_factors != nullptr ? params.freq_factors[i] : 1.0f;
    const float angle = params.freq_scale * (theta / factor);
    cos_sin[2 * i] = std::cos(angle);
    cos_sin[2 * i + 1] = std::sin(angle);
    theta *= theta_scale;
  }
}

void rope_apply(const RopeParams& params, const float* cos_sin, float* x, int32_t n_heads,
                int32_t head_dim) {
  const int32_t half = params.n_rot / 2;
  for (int32_t h = 0; h < n_heads; ++h) {
    float* head = x + static_cast<int64_t>(h) * head_dim;
    for (int32_t i = 0; i < half; ++i) {
      const float c = cos_sin[2 * i];
      const float s = cos_sin[2 * i + 1];
      // NORM pairs neighbours; NEOX pairs the two halves of the rotated part.
      const int32_t a = params.style == RopeStyle::kNorm ? 2 * i : i;
      const int32_t b = params.style == RopeStyle::kNorm ? 2 * i + 1 : i + half;
      rotate_pair(head + a, head + b, c, s);
    }
  }
}

int32_t rope_row_align(RopeStyle style, int32_t head_dim) {
  return style == RopeStyle::kNorm ? 2 : head_dim;
}

void rope_apply_range(const RopeParams& params, const float* cos_sin, float* x, int32_t head_dim,
                      int64_t begin, int64_t end) {
  const int64_t align = rope_row_align(params.style, head_dim);
  QUANTA_ASSERT(begin % align == 0 && end % align == 0);
  const int32_t half = params.n_rot / 2;
  for (int64_t h0 = begin - begin % head_dim; h0 < end; h0 += head_dim) {
    float* head = x + h0;
    if (params.style == RopeStyle::kNeox) {
      for (int32_t i = 0; i < half; ++i) {
        rotate_pair(head + i, head + i + half, cos_sin[2 * i], cos_sin[2 * i + 1]);
      }
      continue;
    }
    // NORM: the pairs of this head inside [begin, end) and inside the rotated part.
    const int64_t lo = std::max<int64_t>(begin - h0, 0) / 2;
    const int64_t hi = std::min<int64_t>(std::min<int64_t>(end - h0, head_dim), params.n_rot) / 2;
    for (int64_t i = lo; i < hi; ++i) {
      rotate_pair(head + 2 * i, head + 2 * i + 1, cos_sin[2 * i], cos_sin[2 * i + 1]);
    }
  }
}

}  // namespace quanta::ops
