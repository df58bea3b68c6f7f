// Scalar reference kernels for ggml's legacy 32-value block types Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0 and the Q8_1 activation type: same scale choice, rounding and operation order as
// ggml's quantize_row_*_ref / dequantize_row_* / generic vec_dot, so results are bit-exact.
// Also defines the legacy packing steps of block_steps.h, shared with the weighted quantizers.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/block_steps.h"
#include "quant/blocks.h"
#include "quant/ref_kernels.h"

namespace quanta::ref {
namespace {

// The value with the largest magnitude (first one on ties), sign kept.
float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, int n, float* min, float* max) {
  *min = FLT_MAX;
  *max = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

// The 32 levels of a legacy block in value order: nibbles of qs (value j low, j + 16 high),
// plus bit 4 from qh (bit j for value j) for Q5_0/Q5_1.
template <typename Block>
void unpack_levels(const Block& b, int* L) {
  for (int j = 0; j < kQK4_0 / 2; ++j) {
    L[j] = b.qs[j] & 0x0F;
    L[j + kQK4_0 / 2] = b.qs[j] >> 4;
  }
  if constexpr (requires { b.qh; }) {
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof qh);
    for (int j = 0; j < kQK5_0; ++j) L[j] |= static_cast<int>((qh >> j) & 1u) << 4;
  }
}

// Integer dot of one block's levels, less `offset`, with 32 Q8 quants: sum (L - offset) * q8.
template <typename Block>
int block_dot(const Block& x, int offset, const int8_t* q8) {
  int L[kQK8_0];
  unpack_levels(x, L);
  int sumi = 0;
  for (int j = 0; j < kQK8_0; ++j) sumi += (L[j] - offset) * q8[j];
  return sumi;
}

// Dequantization of the symmetric types (Q4_0: offset 8, Q5_0: 16): (L - offset) * d.
template <typename Block, int kOffset>
void to_float_symmetric(const void* src, float* dst, int64_t n) {
  const Block* x = static_cast<const Block*>(src);
  int L[kQK4_0];
  for (int64_t i = 0; i < n / kQK4_0; ++i) {
    const float d = f16_to_f32(x[i].d);
    unpack_levels(x[i], L);
    for (int j = 0; j < kQK4_0; ++j) dst[i * kQK4_0 + j] = static_cast<float>(L[j] - kOffset) * d;
  }
}

// Dequantization of the scale-and-min types (Q4_1, Q5_1): L * d + m.
template <typename Block>
void to_float_affine(const void* src, float* dst, int64_t n) {
  const Block* x = static_cast<const Block*>(src);
  int L[kQK4_1];
  for (int64_t i = 0; i < n / kQK4_1; ++i) {
    const float d = f16_to_f32(x[i].d);
    const float m = f16_to_f32(x[i].m);
    unpack_levels(x[i], L);
    for (int j = 0; j < kQK4_1; ++j) dst[i * kQK4_1 + j] = static_cast<float>(L[j]) * d + m;
  }
}

// Q4_1/Q5_1 x Q8_1: sum(x*y) = sum((d_x q_x + m_x) d_y q_y) = d_x d_y sum(q_x q_y) +
// m_x (d_y sum(q_y)), the last factor being Q8_1's s.
template <typename Block>
float vec_dot_affine(int64_t n, const void* vx, const void* vy) {
  const Block* x = static_cast<const Block*>(vx);
  const BlockQ8_1* y = static_cast<const BlockQ8_1*>(vy);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK8_1; ++i) {
    const int sumi = block_dot(x[i], 0, y[i].qs);
    sumf += (f16_to_f32(x[i].d) * f16_to_f32(y[i].d)) * static_cast<float>(sumi) +
            f16_to_f32(x[i].m) * f16_to_f32(y[i].s);
  }
  return sumf;
}

// Sign-symmetric 8-bit quantization shared by Q8_0 and Q8_1: d = amax / 127, q = round(x/d)
// with roundf (halfway away from zero). Returns d; writes the quants.
float quantize_q8_block(const float* x, int8_t* qs) {
  float amax = 0.0f;
  for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / ((1 << 7) - 1);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK8_0; ++j) qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  return d;
}

}  // namespace

void detail::pack_nibbles(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK4_0 / 2; ++j) {
    qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + kQK4_0 / 2] & 0x0F) << 4));
  }
}

void detail::pack_high_bits(const uint8_t* L, uint8_t* qh) {
  uint32_t bits = 0;
  for (int j = 0; j < kQK5_0; ++j) bits |= static_cast<uint32_t>((L[j] & 0x10u) >> 4) << j;
  std::memcpy(qh, &bits, sizeof bits);
}

// ---------------------------------------------------------------- Q4_0

void from_float_q4_0(const float* src, void* dst, int64_t n) {
  BlockQ4_0* y = static_cast<BlockQ4_0*>(dst);
  uint8_t L[kQK4_0];
  for (int64_t i = 0; i < n / kQK4_0; ++i) {
    const float* x = src + i * kQK4_0;
    const float d = signed_absmax(x, kQK4_0) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    // Truncation of (x/d + 8.5) is round-half-up; x/d is within [-8, 8] by the choice of d.
    for (int j = 0; j < kQK4_0; ++j) {
      L[j] = static_cast<uint8_t>(std::min(15, static_cast<int>(x[j] * id + 8.5f)));
    }
    detail::pack_nibbles(L, y[i].qs);
  }
}

void to_float_q4_0(const void* src, float* dst, int64_t n) {
  to_float_symmetric<BlockQ4_0, 8>(src, dst, n);
}

float vec_dot_q4_0_q8_0(int64_t n, const void* vx, const void* vy) {
  const BlockQ4_0* x = static_cast<const BlockQ4_0*>(vx);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(vy);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const int sumi = block_dot(x[i], 8, y[i].qs);
    // NOTE: ggml scales by d_x, then d_y here, but by (d_x d_y) for Q5_0.
    sumf += static_cast<float>(sumi) * f16_to_f32(x[i].d) * f16_to_f32(y[i].d);
  }
  return sumf;
}

// ---------------------------------------------------------------- Q4_1

void from_float_q4_1(const float* src, void* dst, int64_t n) {
  BlockQ4_1* y = static_cast<BlockQ4_1*>(dst);
  uint8_t L[kQK4_1];
  for (int64_t i = 0; i < n / kQK4_1; ++i) {
    const float* x = src + i * kQK4_1;
    float min, max;
    min_max(x, kQK4_1, &min, &max);
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(min);
    for (int j = 0; j < kQK4_1; ++j) {
      L[j] = static_cast<uint8_t>(std::min(15, static_cast<int>((x[j] - min) * id + 0.5f)));
    }
    detail::pack_nibbles(L, y[i].qs);
  }
}

void to_float_q4_1(const void* src, float* dst, int64_t n) {
  to_float_affine<BlockQ4_1>(src, dst, n);
}

float vec_dot_q4_1_q8_1(int64_t n, const void* vx, const void* vy) {
  return vec_dot_affine<BlockQ4_1>(n, vx, vy);
}

// ---------------------------------------------------------------- Q5_0

void from_float_q5_0(const float* src, void* dst, int64_t n) {
  BlockQ5_0* y = static_cast<BlockQ5_0*>(dst);
  uint8_t L[kQK5_0];
  for (int64_t i = 0; i < n / kQK5_0; ++i) {
    const float* x = src + i * kQK5_0;
    const float d = signed_absmax(x, kQK5_0) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < kQK5_0; ++j) {
      L[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(x[j] * id + 16.5f)));
    }
    detail::pack_nibbles(L, y[i].qs);
    detail::pack_high_bits(L, y[i].qh);
  }
}

void to_float_q5_0(const void* src, float* dst, int64_t n) {
  to_float_symmetric<BlockQ5_0, 16>(src, dst, n);
}

float vec_dot_q5_0_q8_0(int64_t n, const void* vx, const void* vy) {
  const BlockQ5_0* x = static_cast<const BlockQ5_0*>(vx);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(vy);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const int sumi = block_dot(x[i], 16, y[i].qs);
    sumf += (f16_to_f32(x[i].d) * f16_to_f32(y[i].d)) * static_cast<float>(sumi);
  }
  return sumf;
}

// ---------------------------------------------------------------- Q5_1

void from_float_q5_1(const float* src, void* dst, int64_t n) {
  BlockQ5_1* y = static_cast<BlockQ5_1*>(dst);
  uint8_t L[kQK5_1];
  for (int64_t i = 0; i < n / kQK5_1; ++i) {
    const float* x = src + i * kQK5_1;
    float min, max;
    min_max(x, kQK5_1, &min, &max);
    const float d = (max - min) / ((1 << 5) - 1);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(min);
    // ggml casts to uint8_t without a clamp: (x - min)/d never exceeds 31 + 0.5.
    for (int j = 0; j < kQK5_1; ++j) {
      L[j] = static_cast<uint8_t>(static_cast<int>((x[j] - min) * id + 0.5f));
    }
    detail::pack_nibbles(L, y[i].qs);
    detail::pack_high_bits(L, y[i].qh);
  }
}

void to_float_q5_1(const void* src, float* dst, int64_t n) {
  to_float_affine<BlockQ5_1>(src, dst, n);
}

float vec_dot_q5_1_q8_1(int64_t n, const void* vx, const void* vy) {
  return vec_dot_affine<BlockQ5_1>(n, vx, vy);
}

// ---------------------------------------------------------------- Q8_0

void from_float_q8_0(const float* src, void* dst, int64_t n) {
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    y[i].d = f32_to_f16(quantize_q8_block(src + i * kQK8_0, y[i].qs));
  }
}

void to_float_q8_0(const void* src, float* dst, int64_t n) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < kQK8_0; ++j) dst[i * kQK8_0 + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

float vec_dot_q8_0_q8_0(int64_t n, const void* vx, const void* vy) {
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(vx);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(vy);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    sumf += static_cast<float>(sumi) * (f16_to_f32(x[i].d) * f16_to_f32(y[i].d));
  }
  return sumf;
}

// ---------------------------------------------------------------- Q8_1

void from_float_q8_1(const float* src, void* dst, int64_t n) {
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK8_1; ++i) {
    const float d = quantize_q8_block(src + i * kQK8_1, y[i].qs);
    int sum = 0;
    for (int j = 0; j < kQK8_1; ++j) sum += y[i].qs[j];
    y[i].d = f32_to_f16(d);
    // s uses the unrounded f32 d, as ggml does.
    y[i].s = f32_to_f16(static_cast<float>(sum) * d);
  }
}

void to_float_q8_1(const void* src, float* dst, int64_t n) {
  const BlockQ8_1* x = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < n / kQK8_1; ++i) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < kQK8_1; ++j) dst[i * kQK8_1 + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

}  // namespace quanta::ref
