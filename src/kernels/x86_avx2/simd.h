// Small AVX2/FMA/F16C helpers shared by the x86 kernel files. Include ONLY from files of the
// ISA folders (compiled with -mavx2 -mfma -mf16c or a superset; nothing else is).
// NOTE: these files avoid std:: templates and the shared inline helpers of other headers
// (core/fp16.h, <algorithm>): an inline function instantiated here is compiled with AVX2, and
// the linker may keep that copy for baseline callers too, which would then fault on a CPU
// without AVX2. Everything here lives in the including folder's namespace QUANTA_ISA_NS
// (avx2, avx512, ...), so each ISA gets its own copies, compiled with its own flags.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#ifndef QUANTA_ISA_NS
#error "set QUANTA_ISA_NS (the ISA folder's namespace; src/kernels/CMakeLists.txt does)"
#endif

namespace quanta::kernels::QUANTA_ISA_NS {

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store_u16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, sizeof v);
}

// IEEE half -> float (exact), and float -> half with round-to-nearest-even (as the reference).
inline float f16_to_f32(uint16_t h) {
  return _cvtsh_ss(h);
}
inline uint16_t f32_to_f16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// Eight F16 scales 2 bytes each, `stride` bytes apart (one per block), as floats. The
// gathering runs on the integer units (the empty asm keeps GCC from turning it into vector
// inserts, which compete with the dot products for the vector ports); only the final
// insert and convert use vector ports.
inline __m256 load_f16x8_strided(const uint8_t* p, size_t stride) {
  uint64_t half[2];
  for (int h = 0; h < 2; ++h) {
    uint64_t v = 0;
    for (int k = 0; k < 4; ++k) {
      uint64_t d = load_u16(p + (4 * h + k) * stride);
      __asm__("" : "+r"(d));
      v |= d << (16 * k);
    }
    half[h] = v;
  }
  return _mm256_cvtph_ps(
      _mm_set_epi64x(static_cast<int64_t>(half[1]), static_cast<int64_t>(half[0])));
}

inline __m256i loadu256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

inline __m128i loadu128(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

inline void prefetch(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
}

// Sum of 32 signed int8 as 8 int32 lanes (pairwise via maddubs with ones, then madd).
inline __m256i sum_i8_lanes(__m256i v) {
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16);
}

// An 8 x 8 transpose of dwords: row l is the 32 bytes at src + l * stride; out[m] lane L =
// dword m of row L (e.g. the quants of 8 activation blocks as the 8 steps of a group).
inline void transpose_8x8_dwords(const uint8_t* src, size_t stride, __m256i* out) {
  __m256i r[8], t[8];
  for (int l = 0; l < 8; ++l) r[l] = loadu256(src + l * stride);
  for (int p = 0; p < 4; ++p) {
    t[2 * p] = _mm256_unpacklo_epi32(r[2 * p], r[2 * p + 1]);
    t[2 * p + 1] = _mm256_unpackhi_epi32(r[2 * p], r[2 * p + 1]);
  }
  for (int q = 0; q < 2; ++q) {  // rows 4q..4q+3 of each 128-bit half
    r[4 * q + 0] = _mm256_unpacklo_epi64(t[4 * q], t[4 * q + 2]);
    r[4 * q + 1] = _mm256_unpackhi_epi64(t[4 * q], t[4 * q + 2]);
    r[4 * q + 2] = _mm256_unpacklo_epi64(t[4 * q + 1], t[4 * q + 3]);
    r[4 * q + 3] = _mm256_unpackhi_epi64(t[4 * q + 1], t[4 * q + 3]);
  }
  for (int m = 0; m < 4; ++m) {
    out[m] = _mm256_permute2x128_si256(r[m], r[m + 4], 0x20);
    out[m + 4] = _mm256_permute2x128_si256(r[m], r[m + 4], 0x31);
  }
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
