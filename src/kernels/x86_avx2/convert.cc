// AVX2 conversions of F32 activations into the vec_dot types F16, BF16, Q8_0, Q8_1 and Q8_K,
// bit-identical with the scalar reference: the same IEEE operations in the same order, and
// the reference's rounding (F16/BF16 nearest-even, Q8_0/Q8_1 roundf = half away from zero,
// Q8_K nearest-even), never the current-mode rounding of a plain convert.
#include <cstddef>

#include "kernels/x86_avx2/avx2.h"
#include "kernels/x86_avx2/simd.h"
#include "quant/blocks.h"

namespace quanta::kernels::avx2 {
namespace {

inline __m256 abs_ps(__m256 v) {
  return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

// roundf for |v| < 2^23: truncate, then step away from zero when the dropped fraction
// (exact: v - trunc(v) needs no rounding) is at least one half.
inline __m256 round_half_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = abs_ps(_mm256_sub_ps(v, t));
  const __m256 sign = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN)));
  const __m256 step = _mm256_or_ps(sign, _mm256_set1_ps(1.0f));
  const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  return _mm256_add_ps(t, _mm256_and_ps(up, step));
}

// Four vectors of int32 in [-128, 127] -> 32 int8 in element order.
inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Quantizes 32 floats as ggml's Q8_0/Q8_1 reference: d = amax / 127, q = roundf(x / d) (as
// x * (1/d)). Writes the quants, returns d and (through sum) the quant sum.
inline float quantize_q8_32(const float* x, uint8_t* qs, int32_t* sum) {
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int c = 0; c < 4; ++c) {
    v[c] = _mm256_loadu_ps(x + 8 * c);
    amax = _mm256_max_ps(abs_ps(v[c]), amax);  // a NaN never wins, as std::max
  }
  const float d = hmax(amax) / ((1 << 7) - 1);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m256 vid = _mm256_set1_ps(id);
  __m256i q[4];
  for (int c = 0; c < 4; ++c) q[c] = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v[c], vid)));
  *sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
  return d;
}

}  // namespace

void from_float_f16(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint8_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i v = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 2 * i), v);
  }
  for (; i < n; ++i) {
    const uint16_t v = f32_to_f16(src[i]);
    std::memcpy(h + 2 * i, &v, sizeof v);
  }
}

void from_float_bf16(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint8_t*>(dst);
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256i inf = _mm256_set1_epi32(0x7f800000);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i bias = _mm256_set1_epi32(0x7fff);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i r[2];
    for (int c = 0; c < 2; ++c) {
      const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(src + i + 8 * c));
      // Nearest-even: (u + 0x7fff + lsb) >> 16; NaN: (u >> 16) | 64 (quiet), as the reference.
      const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
      const __m256i rounded =
          _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, lsb)), 16);
      const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
      const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
      r[c] = _mm256_blendv_epi8(rounded, quiet, nan);
    }
    // packus keeps values <= 0xffff unchanged; fix the 128-bit lane interleave after it.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + 2 * i), packed);
  }
  for (; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, src + i, sizeof u);
    const uint16_t v = (u & 0x7fffffffu) > 0x7f800000u
                           ? static_cast<uint16_t>((u >> 16) | 64u)
                           : static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
    std::memcpy(h + 2 * i, &v, sizeof v);
  }
}

// The block types are written through byte offsets and memcpy (offsetof the blocks.h
// structs), so a destination of any alignment is fine.

void from_float_q8_0(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    uint8_t* blk = y + b * sizeof(BlockQ8_0);
    int32_t sum;
    const float d = quantize_q8_32(src + b * kQK8_0, blk + offsetof(BlockQ8_0, qs), &sum);
    store_u16(blk + offsetof(BlockQ8_0, d), f32_to_f16(d));
  }
}

void from_float_q8_1(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < n / kQK8_1; ++b) {
    uint8_t* blk = y + b * sizeof(BlockQ8_1);
    int32_t sum;
    const float d = quantize_q8_32(src + b * kQK8_1, blk + offsetof(BlockQ8_1, qs), &sum);
    store_u16(blk + offsetof(BlockQ8_1, d), f32_to_f16(d));
    // s uses the unrounded d, as the reference.
    store_u16(blk + offsetof(BlockQ8_1, s), f32_to_f16(static_cast<float>(sum) * d));
  }
}

namespace {

// Index of the first of the 256 values whose magnitude is `amax`.
int first_of_magnitude(const float* x, float amax) {
  const __m256 target = _mm256_set1_ps(amax);
  for (int c = 0; c < kQK_K / 8; ++c) {
    const __m256 mag = abs_ps(_mm256_loadu_ps(x + 8 * c));
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(mag, target, _CMP_EQ_OQ));
    if (mask != 0) return 8 * c + __builtin_ctz(static_cast<unsigned>(mask));
  }
  return 0;
}

}  // namespace

void from_float_q8_K(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* x = src + b * kQK_K;
    uint8_t* blk = y + b * sizeof(BlockQ8_K);
    __m256 amax_v = _mm256_setzero_ps();
    for (int c = 0; c < kQK_K / 8; ++c) {
      amax_v = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + 8 * c)), amax_v);
    }
    const float amax = hmax(amax_v);
    if (amax == 0.0f) {
      std::memset(blk, 0, sizeof(BlockQ8_K));
      continue;
    }
    // The reference keeps the first value of largest magnitude (its sign sets the scale's).
    const float iscale = -127.f / x[first_of_magnitude(x, amax)];
    const __m256 vis = _mm256_set1_ps(iscale);
    const __m256i max_q = _mm256_set1_epi32(127);
    int16_t bsums[kQK_K / 16];
    for (int g = 0; g < kQK_K / 32; ++g) {
      __m256i q[4];
      for (int c = 0; c < 4; ++c) {
        const __m256 p = _mm256_mul_ps(vis, _mm256_loadu_ps(x + 32 * g + 8 * c));
        const __m256 r = _mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q[c] = _mm256_min_epi32(_mm256_cvtps_epi32(r), max_q);
      }
      bsums[2 * g] = static_cast<int16_t>(hsum_epi32(_mm256_add_epi32(q[0], q[1])));
      bsums[2 * g + 1] = static_cast<int16_t>(hsum_epi32(_mm256_add_epi32(q[2], q[3])));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk + offsetof(BlockQ8_K, qs) + 32 * g),
                          pack_i32_to_i8(q[0], q[1], q[2], q[3]));
    }
    std::memcpy(blk + offsetof(BlockQ8_K, bsums), bsums, sizeof bsums);
    const float d = 1 / iscale;
    std::memcpy(blk + offsetof(BlockQ8_K, d), &d, sizeof d);
  }
}

}  // namespace quanta::kernels::avx2
