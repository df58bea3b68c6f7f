// Rotary position embedding (see rope.h).
#include "ops/rope.h"

#include <cmath>

namespace quanta::ops {

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
      const float x0 = head[a];
      const float x1 = head[b];
      head[a] = x0 * c - x1 * s;
      head[b] = x0 * s + x1 * c;
    }
  }
}

}  // namespace quanta::ops
