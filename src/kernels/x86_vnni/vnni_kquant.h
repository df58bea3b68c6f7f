// Integer VNNI row tiles of Q4_K and Q6_K weights repacked at load (WeightLayout::kQ4_Kx8,
// kQ6_Kx8) against Q8_K activations: one template for the AVX512-VNNI and AVX-VNNI folders
// (x86_vnni/vnni_ops.h's dpbusd / dpwssd). Include only from those folders' .cc files; all of
// it lives in the including folder's namespace QUANTA_ISA_NS (see x86_avx2/simd.h).
//
// Bit-identical with the AVX2 kernels of the same layouts (x86_avx2/q4_k_dot.cc Q4Kx8Kernel,
// kquant_dot.cc Q6KKernelT<true>) for every token count and row split: the same exact int32
// lane sums per (row, token, super-block), then the same float operations in the same order,
// the same tiles' arithmetic per output and the same reduction segments.
//
// Q4_K (per row, token, super-block; lane L = sub-block L):
//   AVX2: 8 vpmaddubsw + 7 vpaddw (int16 pairs P) + vpmaddwd with the scales (S_L = sc_L P_L)
//         + cvt + fma + fnmadd                                             = 19 operations
//   VNNI: 8 vpdpbusd (P_L as one int32 from 0) + cvt + vmulps by float(sc_L) + fma + fnmadd
//                                                                          = 12 operations
//   float(P_L) * float(sc_L) is exact and equals float(S_L): |P_L| <= 32 * 15 * 128 < 2^16,
//   sc_L <= 63, so |S_L| < 2^22 and both the product and the conversion are exact.
// Q6_K (per row, token, super-block; the -32 offset as in AVX2: the int32 start
//   madd(-32 * scales, bsums) per token, then the four 32-byte pairs (A, B) of each half):
//   AVX2: 1 vpmaddwd + 4 x (2 vpmaddubsw + vpaddw + vpmaddwd + vpaddd) + cvt + fma = 23
//   VNNI: 1 vpmaddwd + 4 x (2 vpmaddubsw + vpaddw + vpdpwssd) + cvt + fma          = 19
//   (vpdpwssd = the madd with the pair's scales and the add, the same wrapping int32
//   arithmetic; the int16 lanes are the AVX2 kernel's, |4 x 63 x 128| < 2^15.)
// The weight unpacking (shared by a super-block's tokens) and the float steps are AVX2's.
// zmm tiles (avx512vnni only, GEMM tiles of even row counts): two rows per zmm (row i low,
// i+1 high), each token's prepared vectors broadcast to both halves, every lane's operations
// and order the ymm code's with that row's scales, mins and d in its half: the same bits.
//   Q4_K (pair_group), per (row pair, token, super-block): 8 vpdpbusd + cvt + 2 vmulps (the
//   second d * yd per half) + fma + fnmadd = 13 zmm, against 2 x 12 ymm.
//   Q6_K (pair_tile, T > 2), per (row pair, token, super-block): the start as a vpdpwssd
//   from 0 (= the madd) + 4 x (2 vpmaddubsw + vpaddw + vpdpwssd) + cvt + vmulps + fma = 20
//   zmm, against 2 x 19 ymm.
// Decode tiles, odd rows and the hsums stay on 256-bit vectors.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_avx2/tiling.h"
#include "kernels/x86_simde/intrinsics.h"
#include "kernels/x86_vnni/vnni_ops.h"

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

inline float kq_load_f32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, sizeof f);
  return f;
}

// Q4_K in kQ4_Kx8 (kernels/repack.h): as Q4Kx8Kernel, int32 lane L of weight vector j holds
// values 4j..4j+3 (low nibbles) and 16+4j.. (high nibbles) of sub-block L, so step m = 0..7
// of the super-block's sum is one dpbusd of the levels of values 4m..4m+3 of every
// sub-block with the prepared activations' vector m. Prepared per token and super-block
// (kPrep = 72): the 256 activation bytes dword-transposed, then C_L = yd * (sum of
// sub-block L's activations), floats 64..71 (as AVX2).
// With kZmm (the avx512vnni folder), GEMM tiles of even R run on zmm: see pair_group.
template <bool kZmm = false>
struct VnniQ4Kx8Kernel {
  static_assert(!kZmm || QUANTA_VNNI_ZMM, "zmm tiles: the avx512vnni folder");
  static constexpr int64_t kBlockValues = 256;
  static constexpr size_t kWBytes = 144;  // BlockQ4_K
  static constexpr size_t kABytes = 292;  // BlockQ8_K
  static constexpr size_t kScalesAt = 132;
  static constexpr int kPrep = 72;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  // AVX2's segments: segment_blocks<Q4KKernel>() (kPrep 72, kTokens 2).
  static constexpr int64_t kSegBlocks = (kSegFloats / (72 * 2)) & ~int64_t{7};
  static constexpr int kGemmRows = 4;
  static constexpr int kGemmTokens = 64;
  static constexpr int kGroup = 16;
  static constexpr int64_t kGemmMinTokens = 3;

  // The scales of one super-block: float(sc_L), d, dmin * m_L (AVX2's Scales with the
  // scales as floats).
  struct Scales {
    __m256 sc;
    float d;
    __m256 mins;
  };
  struct RowScales {
    __m256 sc;
    __m256 mins;
  };

  static void prepare(const uint8_t* act, int64_t nb, float* prep, int64_t) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* qs = act + b * kABytes + 4;
      __m256i u[8];  // lane L of step m: values 4m..4m+3 of sub-block L
      transpose_8x8_dwords(qs, 32, u);
      auto* out = reinterpret_cast<__m256i*>(prep + b * kPrep);
      for (int m = 0; m < 8; ++m) _mm256_storeu_si256(out + m, u[m]);
      // C_L: the bsums' int16 pairs summed by a madd with ones (exact), times yd.
      const uint8_t* blk = act + b * kABytes;
      const __m256i b32 = _mm256_madd_epi16(loadu256(blk + 260), _mm256_set1_epi16(1));
      _mm256_storeu_ps(prep + b * kPrep + 64,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(b32), _mm256_set1_ps(kq_load_f32(blk))));
    }
  }

  static Scales unpack_scales(const uint8_t* x) {
    const __m256i b =
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + kScalesAt)));
    const __m256i hi = _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(load_u32(x + 140))),
                                         _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
    const __m256i m = _mm256_or_si256(
        _mm256_srli_epi32(b, 6), _mm256_slli_epi32(_mm256_and_si256(hi, _mm256_set1_epi32(15)), 2));
    const __m256 mins =
        _mm256_mul_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(f16_to_f32(load_u16(x + 130))));
    return {_mm256_cvtepi32_ps(_mm256_and_si256(b, _mm256_set1_epi32(63))),
            f16_to_f32(load_u16(x + 128)), mins};
  }

  static void levels(const uint8_t* x, __m256i* v) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int j = 0; j < 4; ++j) {
      const __m256i w = loadu256(x + 32 * j);
      v[j] = _mm256_and_si256(w, m4);
      v[j + 4] = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
    }
  }

  // acc = fnmadd(mins, C, fma(float(S), dy, acc)) with float(S) = float(P) * float(sc):
  // AVX2's finish, the same bits (see the file comment).
  [[gnu::always_inline]] static inline __m256 step(const __m256i* v, const uint8_t* y, __m256 sc,
                                                   float dy, __m256 mins, __m256 acc) {
    __m256i p = dpbusd(_mm256_setzero_si256(), v[0], loadu256(y));
    for (int m = 1; m < 8; ++m) p = dpbusd(p, v[m], loadu256(y + 32 * m));
    const __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(p), sc);
    acc = _mm256_fmadd_ps(s, _mm256_set1_ps(dy), acc);
    return _mm256_fnmadd_ps(mins, _mm256_loadu_ps(reinterpret_cast<const float*>(y) + 64), acc);
  }

  // Decode shapes: all super-blocks of one row against T tokens, accumulators in registers.
  template <int T>
  [[gnu::noinline]] static void row_blocks(const uint8_t* w, const TileArgs& a, __m256* acc_io) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = acc_io[t];
    for (int64_t b = 0; b < a.nb; ++b) {
      const uint8_t* x = w + b * kWBytes;
      for (int l = 0; l < 3; ++l) prefetch(x + kPrefetchBytes + 64 * l);  // never faults
      __m256i v[8];
      levels(x, v);
      const Scales s = unpack_scales(x);
      for (int t = 0; t < T; ++t) {
        const auto* y = reinterpret_cast<const uint8_t*>(a.prep + b * kPrep + t * a.prep_stride);
        const float dy = s.d * kq_load_f32(a.act + t * a.act_row_bytes + b * kABytes);
        acc[t] = step(v, y, s.sc, dy, s.mins, acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) acc_io[t] = acc[t];
  }

  // yd of super-block b for tokens 0..nt-1 of a group (the rest of the kGroup zero).
  static void gather_yds(const TileArgs& a, int nt, int64_t b, float* yd) {
    for (int t = 0; t < kGroup; ++t) {
      yd[t] = t < nt ? kq_load_f32(a.act + t * a.act_row_bytes + b * kABytes) : 0.0f;
    }
  }

  // All super-blocks of R rows against nt <= kGroup tokens (AVX2's gemm_group): per
  // super-block and row the levels once, then each token's 8 dpbusd; acc[i * kGroup + t].
  template <int R>
  [[gnu::noinline]] static void gemm_group(const TileArgs& a, int nt, const RowScales* rs,
                                           const float* d, __m256* acc) {
    // yd of the next super-block gathered one iteration ahead (as AVX2: its scalar stores
    // would stall the vector loads that read them right after).
    alignas(32) float yd[2][kGroup];
    alignas(32) float dy[kGroup];
    gather_yds(a, nt, 0, yd[0]);
    for (int64_t b = 0; b < a.nb; ++b) {
      if (b + 1 < a.nb) gather_yds(a, nt, b + 1, yd[(b + 1) & 1]);
      const float* ydb = yd[b & 1];
      const float* prep = a.prep + b * kPrep;
      for (int i = 0; i < R; ++i) {
        const uint8_t* x = a.w + i * a.row_stride + b * kWBytes;
        for (int l = 0; l < 3; ++l) prefetch(x + kPrefetchBytes + 64 * l);
        const __m256 dv = _mm256_set1_ps(d[b * R + i]);
        for (int t = 0; t < nt; t += 8) {
          _mm256_store_ps(dy + t, _mm256_mul_ps(dv, _mm256_load_ps(ydb + t)));
        }
        __m256i v[8];
        levels(x, v);
        const RowScales& s = rs[b * R + i];
        for (int t = 0; t < nt; ++t) {
          const auto* y = reinterpret_cast<const uint8_t*>(prep + t * a.prep_stride);
          acc[i * kGroup + t] = step(v, y, s.sc, dy[t], s.mins, acc[i * kGroup + t]);
        }
      }
    }
  }

#if QUANTA_VNNI_ZMM
  // step on zmm for a row pair: the finish after the 8 dpbusd (float(S) = float(P) * sc,
  // fma with d * yd, fnmadd with the mins and C), lane-wise, row 0's values in the low half.
  QUANTA_VNNI_ZMM_INLINE static inline __m512 pair_finish(__m512i p, __m512 sc, __m512 dy,
                                                          __m512 mins, const float* c, __m512 acc) {
    const __m512 s = _mm512_mul_ps(cvtepi32_ps512(p), sc);
    acc = _mm512_fmadd_ps(s, dy, acc);
    return _mm512_fnmadd_ps(mins, broadcast256_ps(c), acc);
  }

  // gemm_group for R (even) rows in R / 2 row pairs: a pair's levels in 8 zmm (row 2j in the
  // low halves, 2j+1 in the high), each token's prepared vectors broadcast to both halves
  // (one dpbusd512 = the steps of two (row, token) sums), then pair_finish with the pair's
  // sc, mins and d * yd in the two halves: per lane the ymm step's operations in its order,
  // so the same bits. Float sums of (pair j, token t) at accz + 16 * (j * kGroup + t).
  template <int R>
  [[gnu::noinline]] static void pair_group(const TileArgs& a, int nt, const RowScales* rs,
                                           const float* d, float* accz) {
    alignas(32) float yd[2][kGroup];
    gather_yds(a, nt, 0, yd[0]);
    for (int64_t b = 0; b < a.nb; ++b) {
      if (b + 1 < a.nb) gather_yds(a, nt, b + 1, yd[(b + 1) & 1]);
      const float* ydb = yd[b & 1];
      const float* prep = a.prep + b * kPrep;
      for (int j = 0; j < R / 2; ++j) {
        const uint8_t* x0 = a.w + 2 * j * a.row_stride + b * kWBytes;
        const uint8_t* x1 = x0 + a.row_stride;
        for (int l = 0; l < 3; ++l) {
          prefetch(x0 + kPrefetchBytes + 64 * l);
          prefetch(x1 + kPrefetchBytes + 64 * l);
        }
        const int r0 = static_cast<int>(b * R + 2 * j);
        const __m512 dv = join256_ps(_mm256_set1_ps(d[r0]), _mm256_set1_ps(d[r0 + 1]));
        const __m512 sc = join256_ps(rs[r0].sc, rs[r0 + 1].sc);
        const __m512 mins = join256_ps(rs[r0].mins, rs[r0 + 1].mins);
        __m512i v[8];
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        for (int k = 0; k < 4; ++k) {
          const __m512i w = join256(loadu256(x0 + 32 * k), loadu256(x1 + 32 * k));
          v[k] = _mm512_and_si512(w, m4);
          v[k + 4] = _mm512_and_si512(_mm512_srli_epi16(w, 4), m4);
        }
        for (int t = 0; t < nt; ++t) {
          const auto* y = reinterpret_cast<const uint8_t*>(prep + t * a.prep_stride);
          __m512i p = dpbusd512(_mm512_setzero_si512(), v[0], broadcast256(y));
          for (int m = 1; m < 8; ++m) p = dpbusd512(p, v[m], broadcast256(y + 32 * m));
          const __m512 dy = _mm512_mul_ps(dv, _mm512_set1_ps(ydb[t]));  // d * yd per half
          float* acc = accz + 16 * (j * kGroup + t);
          _mm512_storeu_ps(acc, pair_finish(p, sc, dy, mins, reinterpret_cast<const float*>(y) + 64,
                                            _mm512_loadu_ps(acc)));
        }
      }
    }
  }
#endif

  // Decode tiles (1-2 tokens) a row at a time; GEMM shapes run gemm_tile.
  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    if constexpr (T <= 2) {
      __m256 acc[R][T];
      for (int i = 0; i < R; ++i) {
        for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
        row_blocks<T>(a.w + i * a.row_stride, a, acc[i]);
      }
      for (int i = 0; i < R; ++i) {
        for (int t = 0; t < T; ++t) out[i * T + t] = hsum(acc[i][t]);
      }
    } else {
      gemm_tile<R>(a, T, out, 1, T, true);
    }
  }

  // GEMM tile of R rows x nt <= kGemmTokens tokens (tiling.h's direct tiles): the rows'
  // scales unpacked once, then groups of at most kGroup tokens, as even as possible.
  template <int R>
  static void gemm_tile(const TileArgs& a, int nt, float* y, int64_t y_stride, int64_t row_step,
                        bool first) {
    RowScales rs[kSegBlocks * R];
    float d[kSegBlocks * R];
    for (int64_t b = 0; b < a.nb; ++b) {
      for (int i = 0; i < R; ++i) {
        const Scales s = unpack_scales(a.w + i * a.row_stride + b * kWBytes);
        rs[b * R + i] = {s.sc, s.mins};
        d[b * R + i] = s.d;
      }
    }
    const int groups = (nt + kGroup - 1) / kGroup;
    for (int j = 0, t0 = 0, n = 0; j < groups; ++j, t0 += n) {
      n = (nt - t0) / (groups - j);
      TileArgs g = a;
      g.act += t0 * a.act_row_bytes;
      g.prep += t0 * a.prep_stride;
      group_out<R>(g, n, rs, d, y + t0 * y_stride, y_stride, row_step, first);
    }
  }

  // One group of gemm_tile: n tokens' sums of R rows (row pairs on zmm with kZmm and R
  // even), then the hsums stored or added to y (token t, row i at y[t * y_stride + i * row_step]).
  template <int R>
  static void group_out(const TileArgs& g, int n, const RowScales* rs, const float* d, float* y,
                        int64_t y_stride, int64_t row_step, bool first) {
#if QUANTA_VNNI_ZMM
    if constexpr (kZmm && R % 2 == 0) {  // the hsums on the halves
      alignas(64) float accz[R / 2][kGroup][16];
      __m256 zero = _mm256_setzero_ps();
      for (int k = 0; k < R * kGroup; ++k) {
        __asm__("" : "+x"(zero));  // vector stores, not a `rep stos` (slow to start)
        _mm256_store_ps(&accz[0][0][0] + 8 * k, zero);
      }
      pair_group<R>(g, n, rs, d, &accz[0][0][0]);
      for (int i = 0; i < R; ++i) {
        for (int t = 0; t < n; ++t) {
          float& out = y[t * y_stride + i * row_step];
          const float v = hsum(_mm256_load_ps(&accz[i / 2][t][8 * (i % 2)]));
          out = first ? v : out + v;
        }
      }
    } else {
      ymm_group_out<R>(g, n, rs, d, y, y_stride, row_step, first);
    }
#else
    ymm_group_out<R>(g, n, rs, d, y, y_stride, row_step, first);
#endif
  }

  // group_out on 256-bit vectors (gemm_group).
  template <int R>
  static void ymm_group_out(const TileArgs& g, int n, const RowScales* rs, const float* d, float* y,
                            int64_t y_stride, int64_t row_step, bool first) {
    __m256 acc[R * kGroup];
    __m256 zero = _mm256_setzero_ps();
    for (__m256& z : acc) {
      __asm__("" : "+x"(zero));  // vector stores, not a `rep stos` (slow to start)
      z = zero;
    }
    gemm_group<R>(g, n, rs, d, acc);
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < n; ++t) {
        float& out = y[t * y_stride + i * row_step];
        const float v = hsum(acc[i * kGroup + t]);
        out = first ? v : out + v;
      }
    }
  }
};

// Q6_K in kQ6_Kx8 (kernels/repack.h), AVX2's Q6KKernelT<true> with each pair's madd + add
// as one dpwssd. Prepared per token and super-block (kPrep = 64): the 256 activation bytes
// of half h, pair p at bytes 128h + 64p (A) and + 32 (B), 64-bit interleaved as the levels.
// With kZmm (the avx512vnni folder), GEMM tiles (T > 2) of even R run on zmm: pair_tile.
template <bool kZmm = false>
struct VnniQ6Kx8Kernel {
  static_assert(!kZmm || QUANTA_VNNI_ZMM, "zmm tiles: the avx512vnni folder");
  static constexpr int64_t kBlockValues = 256;
  static constexpr size_t kWBytes = 210;  // BlockQ6_K
  static constexpr size_t kABytes = 292;
  static constexpr int kPrep = 64;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  static constexpr int kGemmRows = 4;
  static constexpr int kGemmTokens = 8;
  static constexpr int64_t kGemmMinTokens = 4;

  static void prepare(const uint8_t* act, int64_t nb, float* prep, int64_t) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* qs = act + b * kABytes + 4;
      auto* out = reinterpret_cast<__m256i*>(prep + b * kPrep);
      for (int h = 0; h < 2; ++h) {
        for (int p = 0; p < 2; ++p) {
          const __m256i c0 = loadu256(qs + 128 * h + 64 * p);
          const __m256i c1 = loadu256(qs + 128 * h + 64 * p + 32);
          _mm256_storeu_si256(out + 4 * h + 2 * p, _mm256_unpacklo_epi64(c0, c1));
          _mm256_storeu_si256(out + 4 * h + 2 * p + 1, _mm256_unpackhi_epi64(c0, c1));
        }
      }
    }
  }

  // Scales of pair p of a half at the int16 lanes of A and B (AVX2's pair_scales).
  static __m256i pair_scales(__m256i half_scales, int p) {
    const auto sel = [](int e) { return static_cast<int16_t>((2 * e) | ((2 * e + 1) << 8)); };
    const int16_t s0 = sel(4 * p), s1 = sel(4 * p + 1), s2 = sel(4 * p + 2), s3 = sel(4 * p + 3);
    return _mm256_shuffle_epi8(half_scales, _mm256_setr_epi16(s0, s0, s0, s0, s2, s2, s2, s2, s1,
                                                              s1, s1, s1, s3, s3, s3, s3));
  }

  // Levels A, B of pair p of the half at pq (X, Y, Z; see repack.h).
  [[gnu::always_inline]] static inline void pair_levels(const uint8_t* pq, int p, __m256i* qa,
                                                        __m256i* qb) {
    const __m256i m3f = _mm256_set1_epi8(0x3F);
    if (p == 0) {
      *qa = _mm256_and_si256(loadu256(pq), m3f);
      *qb = _mm256_and_si256(loadu256(pq + 32), m3f);
    } else {
      const __m256i z = loadu256(pq + 64);
      *qa = _mm256_and_si256(z, m3f);
      *qb = _mm256_or_si256(
          _mm256_or_si256(
              _mm256_and_si256(_mm256_srli_epi16(loadu256(pq), 6), _mm256_set1_epi8(0x03)),
              _mm256_and_si256(_mm256_srli_epi16(loadu256(pq + 32), 4), _mm256_set1_epi8(0x0C))),
          _mm256_and_si256(_mm256_srli_epi16(z, 2), _mm256_set1_epi8(0x30)));
    }
  }

  // sum[t] (int32 lanes) of the super-block at x against T tokens (prepared data at yb,
  // 4 * prep_stride bytes apart; bsums at bs, act_row_bytes apart).
  template <int T>
  [[gnu::always_inline]] static void block_sums(const uint8_t* x, const uint8_t* yb,
                                                int64_t prep_stride, const uint8_t* bs,
                                                size_t act_row_bytes, __m256i* sum) {
    const __m256i neg32 = _mm256_sub_epi16(
        _mm256_setzero_si256(), _mm256_slli_epi16(_mm256_cvtepi8_epi16(loadu128(x + 192)), 5));
    for (int t = 0; t < T; ++t) sum[t] = _mm256_madd_epi16(neg32, loadu256(bs + t * act_row_bytes));
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 192 + 8 * h));
      const __m256i hs = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc8));
#pragma GCC unroll 2
      for (int p = 0; p < 2; ++p) {
        __m256i qa, qb;
        pair_levels(x + 96 * h, p, &qa, &qb);
        const __m256i s = pair_scales(hs, p);
        for (int t = 0; t < T; ++t) {
          const uint8_t* y = yb + 4 * t * prep_stride + 128 * h + 64 * p;
          const __m256i m16 = _mm256_add_epi16(_mm256_maddubs_epi16(qa, loadu256(y)),
                                               _mm256_maddubs_epi16(qb, loadu256(y + 32)));
          sum[t] = dpwssd(sum[t], m16, s);
          __asm__("" : "+x"(sum[t]));  // a running sum in a register (as AVX2)
        }
      }
    }
  }

#if QUANTA_VNNI_ZMM
  // The int16 lanes of a pair of both rows: maddubs of A and B (row 0's in the low halves)
  // with the token's vectors at y and y + 32 broadcast to both halves, added (as the ymm code).
  QUANTA_VNNI_ZMM_INLINE static inline __m512i pair_m16(__m512i qa, __m512i qb, const uint8_t* y) {
    return _mm512_add_epi16(_mm512_maddubs_epi16(qa, broadcast256(y)),
                            _mm512_maddubs_epi16(qb, broadcast256(y + 32)));
  }

  // block_sums for the rows at x0 (low halves) and x1 (high halves) at once: each token's
  // prepared vectors and bsums broadcast to both halves, the start madd(-32 sc, bsums) as a
  // dpwssd from 0 (the same int32), then per pair the ymm code's maddubs / add / dpwssd
  // lane-wise: the same integers per half.
  template <int T>
  [[gnu::always_inline]] static void pair_sums(const uint8_t* x0, const uint8_t* x1,
                                               const uint8_t* yb, int64_t prep_stride,
                                               const uint8_t* bs, size_t act_row_bytes,
                                               __m512i* sum) {
    const auto neg32 = [](const uint8_t* x) {
      return _mm256_sub_epi16(_mm256_setzero_si256(),
                              _mm256_slli_epi16(_mm256_cvtepi8_epi16(loadu128(x + 192)), 5));
    };
    const __m512i n32 = join256(neg32(x0), neg32(x1));
    for (int t = 0; t < T; ++t) {
      sum[t] = dpwssd512(_mm512_setzero_si512(), n32, broadcast256(bs + t * act_row_bytes));
    }
    for (int h = 0; h < 2; ++h) {
      const auto hs = [h](const uint8_t* x) {
        const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 192 + 8 * h));
        return _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc8));
      };
      const __m256i hs0 = hs(x0), hs1 = hs(x1);
      for (int p = 0; p < 2; ++p) {
        __m256i qa0, qb0, qa1, qb1;
        pair_levels(x0 + 96 * h, p, &qa0, &qb0);
        pair_levels(x1 + 96 * h, p, &qa1, &qb1);
        const __m512i qa = join256(qa0, qa1), qb = join256(qb0, qb1);
        const __m512i s = join256(pair_scales(hs0, p), pair_scales(hs1, p));
        for (int t = 0; t < T; ++t) {
          const uint8_t* y = yb + 4 * t * prep_stride + 128 * h + 64 * p;
          sum[t] = dpwssd512(sum[t], pair_m16(qa, qb, y), s);
        }
      }
    }
  }

  // tile for R (even) rows x T tokens in zmm row pairs (row 2j low, 2j+1 high): the float
  // step fma(float(sum), d * yd, acc) lane-wise with each row's d in its half (the ymm
  // step's bits), then the hsums on the halves.
  template <int R, int T>
  [[gnu::noinline]] static void pair_tile(const TileArgs& a, float* out) {
    __m512 acc[R / 2][T];
    for (int j = 0; j < R / 2; ++j) {
      for (int t = 0; t < T; ++t) acc[j][t] = _mm512_setzero_ps();
    }
    const size_t seg_bytes = static_cast<size_t>(a.nb) * kWBytes;
    for (int64_t b = 0; b < a.nb; ++b) {
      prefetch_rows<R>(a, seg_bytes, b * kWBytes, (kWBytes + 63) / 64);
      for (int j = 0; j < R / 2; ++j) {
        const uint8_t* x0 = a.w + 2 * j * a.row_stride + b * kWBytes;
        const uint8_t* x1 = x0 + a.row_stride;
        const uint8_t* yb = reinterpret_cast<const uint8_t*>(a.prep + b * kPrep);
        __m512i sum[T];
        pair_sums<T>(x0, x1, yb, a.prep_stride, a.act + b * kABytes + 260, a.act_row_bytes, sum);
        const __m512 d = join256_ps(_mm256_set1_ps(f16_to_f32(load_u16(x0 + 208))),
                                    _mm256_set1_ps(f16_to_f32(load_u16(x1 + 208))));
        for (int t = 0; t < T; ++t) {
          const float yd = kq_load_f32(a.act + t * a.act_row_bytes + b * kABytes);
          acc[j][t] = _mm512_fmadd_ps(cvtepi32_ps512(sum[t]), _mm512_mul_ps(d, _mm512_set1_ps(yd)),
                                      acc[j][t]);
        }
      }
    }
    alignas(64) float buf[16];
    for (int j = 0; j < R / 2; ++j) {
      for (int t = 0; t < T; ++t) {
        _mm512_store_ps(buf, acc[j][t]);
        out[2 * j * T + t] = hsum(_mm256_load_ps(buf));
        out[(2 * j + 1) * T + t] = hsum(_mm256_load_ps(buf + 8));
      }
    }
  }
#endif

  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
#if QUANTA_VNNI_ZMM
    if constexpr (kZmm && R % 2 == 0 && T > 2) {
      pair_tile<R, T>(a, out);
    } else  // NOLINT(readability/braces)
#endif
    {
      ymm_tile<R, T>(a, out);
    }
  }

  // tile on 256-bit vectors (AVX2's Q6KKernelT<true> tile).
  template <int R, int T>
  [[gnu::always_inline]] static inline void ymm_tile(const TileArgs& a, float* out) {
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
    }
    const size_t seg_bytes = static_cast<size_t>(a.nb) * kWBytes;
    for (int64_t b = 0; b < a.nb; ++b) {
      prefetch_rows<R>(a, seg_bytes, b * kWBytes, (kWBytes + 63) / 64);
      for (int i = 0; i < R; ++i) {
        const uint8_t* x = a.w + i * a.row_stride + b * kWBytes;
        const uint8_t* yb = reinterpret_cast<const uint8_t*>(a.prep + b * kPrep);
        __asm__("" : "+r"(yb));  // per row (AVX2: keeps GCC from spilling the activations)
        __m256i sum[T];
        block_sums<T>(x, yb, a.prep_stride, a.act + b * kABytes + 260, a.act_row_bytes, sum);
        const float d = f16_to_f32(load_u16(x + 208));
        for (int t = 0; t < T; ++t) {
          const uint8_t* yq = a.act + t * a.act_row_bytes + b * kABytes;
          acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]),
                                      _mm256_set1_ps(d * kq_load_f32(yq)), acc[i][t]);
        }
      }
    }
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) out[i * T + t] = hsum(acc[i][t]);
    }
  }
};

}  // namespace
}  // namespace quanta::kernels::QUANTA_ISA_NS

// Defines vnni.h's matmul_rows_packed_q4_Kx8 / _q6_Kx8 in a VNNI folder's .cc (256-bit tiles).
#define QUANTA_VNNI_DEFINE_KQUANT_ROWS() \
  QUANTA_VNNI_DEFINE_KQUANT_ROWS_OF(false, QUANTA_VNNI_CHECK_EMULATION)

// ... with Q4_K's GEMM tiles of row pairs on zmm (the avx512vnni folder; see pair_group).
#define QUANTA_VNNI_DEFINE_KQUANT_ROWS_ZMM() \
  QUANTA_VNNI_DEFINE_KQUANT_ROWS_OF(true, QUANTA_VNNI_CHECK_EMULATION_512_K)

// (check: the emulation's check of the intrinsics the kernels use)
#define QUANTA_VNNI_DEFINE_KQUANT_ROWS_OF(zmm, check)                                              \
  void matmul_rows_packed_q4_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,     \
                                 const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,       \
                                 float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) { \
    QUANTA_ASSERT(type == GgmlType::Q4_K);                                                         \
    check();                                                                                       \
    matmul_rows<VnniQ4Kx8Kernel<zmm>>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride,  \
                                      row_begin, row_end);                                         \
  }                                                                                                \
  void matmul_rows_packed_q6_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,     \
                                 const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,       \
                                 float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) { \
    QUANTA_ASSERT(type == GgmlType::Q6_K);                                                         \
    check();                                                                                       \
    matmul_rows<VnniQ6Kx8Kernel<zmm>>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride,  \
                                      row_begin, row_end);                                         \
  }
