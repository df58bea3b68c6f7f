// AVX2 SwiGLU with glibc's expf reproduced bit for bit, 4 double lanes at a time: the scalar
// ops::swiglu calls expf, which glibc 2.27+ computes (in its FMA variant, the one selected
// on CPUs with FMA) as 2^(k/32) * p(r) with k = round(x * 32 / ln 2), r the rest, a 32-entry
// table and a cubic in double precision. The same double operations, fused the same way,
// give the same float. Lanes with |x| >= 88, infinities and NaNs take ::expf itself.
// NOTE: no std:: templates or shared inline helpers here (see simd.h): AVX2 code only.
#include "kernels/x86_avx2/swiglu_avx2.h"

#include <immintrin.h>
#include <math.h>

namespace quanta::kernels::avx2 {
namespace {

// kTab[i] = (bits of 2^(i/32) rounded to double) - (i << 47): 2^(k/32) for an integer k is
// the double whose bits are kTab[k % 32] + (k << 47) (the exponent takes k / 32).
alignas(32) constexpr uint64_t kTab[32] = {
    0x3ff0000000000000ull, 0x3fefd9b0d3158574ull, 0x3fefb5586cf9890full, 0x3fef9301d0125b51ull,
    0x3fef72b83c7d517bull, 0x3fef54873168b9aaull, 0x3fef387a6e756238ull, 0x3fef1e9df51fdee1ull,
    0x3fef06fe0a31b715ull, 0x3feef1a7373aa9cbull, 0x3feedea64c123422ull, 0x3feece086061892dull,
    0x3feebfdad5362a27ull, 0x3feeb42b569d4f82ull, 0x3feeab07dd485429ull, 0x3feea47eb03a5585ull,
    0x3feea09e667f3bcdull, 0x3fee9f75e8ec5f74ull, 0x3feea11473eb0187ull, 0x3feea589994cce13ull,
    0x3feeace5422aa0dbull, 0x3feeb737b0cdc5e5ull, 0x3feec49182a3f090ull, 0x3feed503b23e255dull,
    0x3feee89f995ad3adull, 0x3feeff76f2fb5e47ull, 0x3fef199bdd85529cull, 0x3fef3720dcef9069ull,
    0x3fef5818dcfba487ull, 0x3fef7c97337b9b5full, 0x3fefa4afa2a490daull, 0x3fefd0765b6e4540ull,
};
constexpr uint64_t kInvLn2N = 0x40471547652b82feull;  // 32 / ln 2
constexpr uint64_t kShift = 0x4338000000000000ull;    // 1.5 * 2^52: x + kShift rounds x
// 2^(r/32) ~ 1 + C2 r + C1 r^2 + C0 r^3 (glibc's minimax coefficients, scaled by 1/32^i)
constexpr uint64_t kC0 = 0x3ebc6af84b912394ull;
constexpr uint64_t kC1 = 0x3f2ebfce50fac4f3ull;
constexpr uint64_t kC2 = 0x3f962e42ff0c52d6ull;
// Floats whose exponent field (bits 20..30 of the bit pattern, sign dropped) is at least
// this have |x| >= 88 or are infinite or NaN: glibc's slow path.
constexpr int32_t kSlowTop12 = 0x42b;

inline __m256d from_bits(uint64_t bits) {
  return _mm256_castsi256_pd(_mm256_set1_epi64x(static_cast<long long>(bits)));
}

// expf of 4 lanes on the fast path (|x| < 88).
inline __m128 exp4(__m128 x) {
  const __m256d xd = _mm256_cvtps_pd(x);
  const __m256d inv = from_bits(kInvLn2N);
  const __m256d shift = from_bits(kShift);
  const __m256d kd_shifted = _mm256_fmadd_pd(inv, xd, shift);  // k + shift, rounded once
  const __m256i ki = _mm256_castpd_si256(kd_shifted);
  const __m256d kd = _mm256_sub_pd(kd_shifted, shift);
  const __m256d r = _mm256_fmsub_pd(inv, xd, kd);
  const __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
  const __m256i t = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTab), idx, 8);
  const __m256d s = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64(ki, 47)));
  const __m256d z = _mm256_fmadd_pd(r, from_bits(kC0), from_bits(kC1));
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(r, from_bits(kC2), _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(z, r2, y);
  return _mm256_cvtpd_ps(_mm256_mul_pd(y, s));
}

// Whether any lane of x needs glibc's slow path.
inline bool any_slow(__m256 x) {
  const __m256i top =
      _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
  const __m256i slow = _mm256_cmpgt_epi32(top, _mm256_set1_epi32(kSlowTop12 - 1));
  return _mm256_movemask_epi8(slow) != 0;
}

inline __m256 exp8(__m256 x) {
  const __m128 lo = exp4(_mm256_castps256_ps128(x));
  const __m128 hi = exp4(_mm256_extractf128_ps(x, 1));
  return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

inline float swiglu_one(float g, float u) {
  return g / (1.0f + ::expf(-g)) * u;
}

}  // namespace

void swiglu(float* gate, const float* up, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 x = _mm256_xor_ps(g, sign);  // -g, exact
    if (any_slow(x)) {
      for (int64_t j = i; j < i + 8; ++j) gate[j] = swiglu_one(gate[j], up[j]);
      continue;
    }
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, exp8(x)));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) gate[i] = swiglu_one(gate[i], up[i]);
}

void expf_rows(const float* x, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    if (any_slow(v)) {
      for (int64_t j = i; j < i + 8; ++j) out[j] = ::expf(x[j]);
      continue;
    }
    _mm256_storeu_ps(out + i, exp8(v));
  }
  for (; i < n; ++i) out[i] = ::expf(x[i]);
}

}  // namespace quanta::kernels::avx2
