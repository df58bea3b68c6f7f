// The VNNI integer dot-product steps of the VNNI folders' kernels (x86_vnni/vnni_dot.h,
// vnni_kquant.h): vpdpbusd and vpdpwssd on 256-bit vectors, EVEX or VEX by the folder's flags,
// vpdpbusd on 512-bit ones (avx512vnni only), and exact AVX2 stand-ins in the SIMDe test
// build. Include only from those folders' files.
#pragma once

#include <cstdint>

#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_simde/intrinsics.h"  // under QUANTA_SIMDE_EMULATION: SIMDe's VNNI names

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

// acc + the sums of 4 products u8(u) * s8(s) per int32 lane (vpdpbusd, no saturation).
#if QUANTA_SIMDE_EMULATION
// The test build (no VNNI): the same integers from AVX2 (the even and odd bytes of each
// int16 pair as exact int16 operands of two madds), 9 operations. SIMDe's version is the
// reference (dpbusd_matches_simde checks the two agree, once per process, before the first
// product) but too slow to run every product through: compiled by GCC it extracts bytes one
// at a time (95% of the emulated golden tests' time). Called, not inlined: inlined into the
// unrolled register blocks it doubled this file's emulated compile time (8 s -> 19 s).
[[gnu::noinline]] inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
  const __m256i u_even = _mm256_and_si256(u, _mm256_set1_epi16(0x00FF));
  const __m256i u_odd = _mm256_srli_epi16(u, 8);
  const __m256i s_even = _mm256_srai_epi16(_mm256_slli_epi16(s, 8), 8);
  const __m256i s_odd = _mm256_srai_epi16(s, 8);
  return _mm256_add_epi32(
      acc, _mm256_add_epi32(_mm256_madd_epi16(u_even, s_even), _mm256_madd_epi16(u_odd, s_odd)));
}

// acc + a0 * b0 + a1 * b1 per int32 lane of int16 pairs (vpdpwssd, wrapping like it): in
// the test build a madd and an add (the same integers; SIMDe's version checked by
// dpwssd_matches_simde).
[[gnu::always_inline]] inline __m256i dpwssd(__m256i acc, __m256i a, __m256i b) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
}

// Whether dpbusd equals SIMDe's _mm256_dpbusd_epi32 on byte extremes and pseudo-random
// vectors (with accumulators near the int32 limits).
[[gnu::noinline]] inline bool dpbusd_matches_simde() {
  uint64_t state = 0x9E3779B97F4A7C15u;
  const auto next = [&state] {
    state = state * 6364136223846793005u + 1442695040888963407u;
    return static_cast<int64_t>(state >> 1);
  };
  for (int trial = 0; trial < 4096; ++trial) {
    __m256i v[3];
    for (__m256i& x : v) x = _mm256_set_epi64x(next(), next(), next(), next());
    if (trial < 4) {  // all extremes: u = 0 / 255, s = -128 / 127
      v[1] = _mm256_set1_epi8(static_cast<char>(trial & 1 ? 0xFF : 0x00));
      v[2] = _mm256_set1_epi8(static_cast<char>(trial & 2 ? 0x7F : 0x80));
    }
    const __m256i want = _mm256_dpbusd_epi32(v[0], v[1], v[2]);
    const __m256i diff = _mm256_xor_si256(want, dpbusd(v[0], v[1], v[2]));
    if (!_mm256_testz_si256(diff, diff)) return false;
  }
  return true;
}

// Whether dpwssd equals SIMDe's _mm256_dpwssd_epi32 on int16 extremes and pseudo-random
// vectors.
[[gnu::noinline]] inline bool dpwssd_matches_simde() {
  uint64_t state = 0xD1B54A32D192ED03u;
  const auto next = [&state] {
    state = state * 6364136223846793005u + 1442695040888963407u;
    return static_cast<int64_t>(state >> 1);
  };
  for (int trial = 0; trial < 1024; ++trial) {
    __m256i v[3];
    for (__m256i& x : v) x = _mm256_set_epi64x(next(), next(), next(), next());
    if (trial < 4) {  // extremes: -32768 / 32767 on both sides
      v[1] = _mm256_set1_epi16(static_cast<int16_t>(trial & 1 ? 0x7FFF : 0x8000));
      v[2] = _mm256_set1_epi16(static_cast<int16_t>(trial & 2 ? 0x7FFF : 0x8000));
    }
    const __m256i want = _mm256_dpwssd_epi32(v[0], v[1], v[2]);
    const __m256i diff = _mm256_xor_si256(want, dpwssd(v[0], v[1], v[2]));
    if (!_mm256_testz_si256(diff, diff)) return false;
  }
  return true;
}

// Both stand-ins (run once per process by QUANTA_VNNI_CHECK_EMULATION, vnni.h).
[[gnu::noinline]] inline bool vnni_ops_match_simde() {
  return dpbusd_matches_simde() && dpwssd_matches_simde();
}

// The 512-bit forms (the avx512vnni folder's zmm GEMM blocks, x86_vnni/vnni_dot.h): the
// 256-bit stand-in on each half (vpdpbusd has no lanes across 128-bit halves: exact).
[[gnu::noinline]] inline __m512i dpbusd512(__m512i acc, __m512i u, __m512i s) {
  const __m256i lo =
      dpbusd(_mm512_castsi512_si256(acc), _mm512_castsi512_si256(u), _mm512_castsi512_si256(s));
  const __m256i hi = dpbusd(_mm512_extracti64x4_epi64(acc, 1), _mm512_extracti64x4_epi64(u, 1),
                            _mm512_extracti64x4_epi64(s, 1));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);  // (SIMDe: no GCC 12 warning)
}

// vpdpwssd on 512-bit vectors (vnni_kquant.h's Q6_K zmm tiles): dpwssd on each half (exact,
// no lanes across halves).
[[gnu::noinline]] inline __m512i dpwssd512(__m512i acc, __m512i a, __m512i b) {
  const __m256i lo =
      dpwssd(_mm512_castsi512_si256(acc), _mm512_castsi512_si256(a), _mm512_castsi512_si256(b));
  const __m256i hi = dpwssd(_mm512_extracti64x4_epi64(acc, 1), _mm512_extracti64x4_epi64(a, 1),
                            _mm512_extracti64x4_epi64(b, 1));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Whether dpwssd512 equals SIMDe's _mm512_dpwssd_epi32 on int16 extremes and pseudo-random
// vectors (QUANTA_VNNI_CHECK_EMULATION_512_K, vnni.h).
[[gnu::noinline]] inline bool dpwssd512_matches_simde() {
  uint64_t state = 0x8BB84B93962EACC9u;
  const auto next = [&state] {
    state = state * 6364136223846793005u + 1442695040888963407u;
    return static_cast<int64_t>(state >> 1);
  };
  for (int trial = 0; trial < 1024; ++trial) {
    __m512i v[3];
    for (__m512i& x : v) {
      x = _mm512_set_epi64(next(), next(), next(), next(), next(), next(), next(), next());
    }
    if (trial < 4) {  // extremes: -32768 / 32767 on both sides
      v[1] = _mm512_set1_epi16(static_cast<int16_t>(trial & 1 ? 0x7FFF : 0x8000));
      v[2] = _mm512_set1_epi16(static_cast<int16_t>(trial & 2 ? 0x7FFF : 0x8000));
    }
    const __m512i want = _mm512_dpwssd_epi32(v[0], v[1], v[2]);
    const __m512i diff = _mm512_xor_si512(want, dpwssd512(v[0], v[1], v[2]));
    if (_mm512_test_epi32_mask(diff, diff) != 0) return false;
  }
  return true;
}

// SIMDe 0.7.4 has no _mm512_cvtepi32_ps: two 256-bit conversions (lane-wise, exact).
[[gnu::noinline]] inline __m512 cvtepi32_ps512(__m512i v) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_cvtepi32_ps(_mm512_castsi512_si256(v))),
                            _mm256_cvtepi32_ps(_mm512_extracti64x4_epi64(v, 1)), 1);
}

// Whether dpbusd512 equals SIMDe's _mm512_dpbusd_epi32 on byte extremes and pseudo-random
// vectors (run once per process by QUANTA_VNNI_CHECK_EMULATION_512, vnni.h).
[[gnu::noinline]] inline bool dpbusd512_matches_simde() {
  uint64_t state = 0xA0761D6478BD642Fu;
  const auto next = [&state] {
    state = state * 6364136223846793005u + 1442695040888963407u;
    return static_cast<int64_t>(state >> 1);
  };
  for (int trial = 0; trial < 1024; ++trial) {
    __m512i v[3];
    for (__m512i& x : v) {
      x = _mm512_set_epi64(next(), next(), next(), next(), next(), next(), next(), next());
    }
    if (trial < 4) {  // all extremes: u = 0 / 255, s = -128 / 127
      v[1] = _mm512_set1_epi8(static_cast<char>(trial & 1 ? 0xFF : 0x00));
      v[2] = _mm512_set1_epi8(static_cast<char>(trial & 2 ? 0x7F : 0x80));
    }
    const __m512i want = _mm512_dpbusd_epi32(v[0], v[1], v[2]);
    const __m512i diff = _mm512_xor_si512(want, dpbusd512(v[0], v[1], v[2]));
    if (_mm512_test_epi32_mask(diff, diff) != 0) return false;
  }
  return true;
}
#else
[[gnu::always_inline]] inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__)
  return _mm256_dpbusd_epi32(acc, u, s);  // EVEX (AVX512-VNNI + VL)
#elif defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(acc, u, s);  // VEX (AVX-VNNI)
#else
#error "vnni_ops.h needs -mavx512vnni -mavx512vl or -mavxvnni (or QUANTA_SIMDE_EMULATION)"
#endif
}

[[gnu::always_inline]] inline __m256i dpwssd(__m256i acc, __m256i a, __m256i b) {
#if defined(__AVX512VNNI__)
  return _mm256_dpwssd_epi32(acc, a, b);
#elif defined(__AVXVNNI__)
  return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
#error "vnni_ops.h needs -mavx512vnni -mavx512vl or -mavxvnni (or QUANTA_SIMDE_EMULATION)"
#endif
}

#if defined(__AVX512VNNI__)  // the 512-bit forms: the avx512vnni folder only
[[gnu::always_inline]] inline __m512i dpbusd512(__m512i acc, __m512i u, __m512i s) {
  return _mm512_dpbusd_epi32(acc, u, s);
}

[[gnu::always_inline]] inline __m512i dpwssd512(__m512i acc, __m512i a, __m512i b) {
  return _mm512_dpwssd_epi32(acc, a, b);
}

[[gnu::always_inline]] inline __m512 cvtepi32_ps512(__m512i v) {
  return _mm512_maskz_cvtepi32_ps(0xFFFF, v);  // (full mask: GCC 12 warns on the plain form)
}
#endif
#endif

// The 512-bit forms exist in the avx512vnni folder and the SIMDe build.
#if QUANTA_SIMDE_EMULATION || defined(__AVX512VNNI__)
#define QUANTA_VNNI_ZMM 1
#else
#define QUANTA_VNNI_ZMM 0
#endif

#if QUANTA_VNNI_ZMM
// The 512-bit helpers: inlined natively; called in the SIMDe build, where SIMDe's 512-bit
// code inlined into the unrolled zmm blocks costs compile time (as dpbusd above).
#if QUANTA_SIMDE_EMULATION
#define QUANTA_VNNI_ZMM_INLINE [[gnu::noinline]]
#else
#define QUANTA_VNNI_ZMM_INLINE [[gnu::always_inline]]
#endif

// Broadcasts and joins of 256-bit halves. Natively the zero-masked intrinsics with full
// masks (the same instructions: GCC 12 warns on the undefined sources of the plain ones),
// in the SIMDe build the plain ones (cheaper there).
#if QUANTA_SIMDE_EMULATION
#define QUANTA_VNNI_FULL(name, mask, ...) _mm512_##name(__VA_ARGS__)
#else
#define QUANTA_VNNI_FULL(name, mask, ...) _mm512_maskz_##name(mask, __VA_ARGS__)
#endif

// The 32 bytes at p in both halves (vbroadcasti64x4 from memory: a load).
QUANTA_VNNI_ZMM_INLINE inline __m512i broadcast256(const uint8_t* p) {
  return QUANTA_VNNI_FULL(broadcast_i64x4, 0xFF, loadu256(p));
}

// The 8 floats at p in both halves (vbroadcastf32x8 from memory).
QUANTA_VNNI_ZMM_INLINE inline __m512 broadcast256_ps(const float* p) {
  return QUANTA_VNNI_FULL(broadcast_f32x8, 0xFFFF, _mm256_loadu_ps(p));
}

// lo in the low half, hi in the high one.
QUANTA_VNNI_ZMM_INLINE inline __m512i join256(__m256i lo, __m256i hi) {
  return QUANTA_VNNI_FULL(inserti64x4, 0xFF, _mm512_castsi256_si512(lo), hi, 1);
}
QUANTA_VNNI_ZMM_INLINE inline __m512 join256_ps(__m256 lo, __m256 hi) {
  return QUANTA_VNNI_FULL(insertf32x8, 0xFFFF, _mm512_castps256_ps512(lo), hi, 1);
}
#undef QUANTA_VNNI_FULL
#endif

}  // namespace
}  // namespace quanta::kernels::QUANTA_ISA_NS
