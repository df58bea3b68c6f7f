// AVX2 dot products and row tiles of Q8_0 weights against Q8_0 activations, one arithmetic
// for decode and for products with many tokens (every tile shape computes each output the
// same way: batch invariance). The 8 blocks of a group end in the 8 int32 lanes as exact
// integer sums, then one conversion and one FMA per (row, token, group) add them up in float.
// Q8_0x8Kernel does the same on weights repacked at load (WeightLayout::kQ8_0x8),
// bit-identical, without transposing the weights.
#include "kernels/x86_avx2/avx2.h"
#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_avx2/tiling.h"
#include "quant/blocks.h"

namespace quanta::kernels::avx2 {
namespace {

static_assert(sizeof(BlockQ8_0) == 34);

// The 8 blocks' quants of a group (block L at `blk` + 34 L + 2) as 16 int16 vectors: v[2m]
// and v[2m + 1] hold, in int32 lane L, values (4m, 4m+2) and (4m+1, 4m+3) of block L,
// sign-extended. A madd of two such vectors (weights, activations) sums 4 products of
// block L in lane L; the 16 madds of a group give each block's exact dot product.
// The 8 blocks' quants of a group (block L at `blk` + 34 L + 2), dword-transposed: u[m]
// lane L = bytes 4m..4m+3 of block L (the order of WeightLayout::kQ8_0x8).
inline void transpose_group(const uint8_t* blk, __m256i* u) {
  transpose_8x8_dwords(blk + 2, sizeof(BlockQ8_0), u);
}

// The group as 16 int16 vectors: v[2m] and v[2m + 1] hold, in int32 lane L, values
// (4m, 4m+2) and (4m+1, 4m+3) of block L, sign-extended (see transpose_group).
inline void widen_group(const uint8_t* blk, __m256i* v) {
  __m256i u[8];
  transpose_group(blk, u);
  for (int m = 0; m < 8; ++m) {
    v[2 * m] = _mm256_srai_epi16(_mm256_slli_epi16(u[m], 8), 8);
    v[2 * m + 1] = _mm256_srai_epi16(u[m], 8);
  }
}

// Sum of the products of one block as 8 int32 lanes (the sign of x moved onto y: |x| is
// unsigned for maddubs; |pair| <= 2 * 128 * 127 does not saturate).
inline __m256i dot_lanes(__m256i x, __m256i ux, __m256i qy) {
  const __m256i p16 = _mm256_maddubs_epi16(ux, _mm256_sign_epi8(qy, x));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// out[0..7] = hsum(v[0..7]) (simd.h), 8 at once: the same additions of the same operands in
// the same tree ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)) for each vector, so the
// same bits.
inline void hsum8(const __m256* v, float* out) {
  __m256 p[4], q[2];
  for (int k = 0; k < 4; ++k) {  // [lo + hi of v[2k] | lo + hi of v[2k + 1]]
    p[k] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x20),
                         _mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x31));
  }
  for (int k = 0; k < 2; ++k) {  // s0 + s2, s1 + s3 of v[4k], v[4k + 2] | v[4k + 1], v[4k + 3]
    q[k] = _mm256_add_ps(_mm256_shuffle_ps(p[2 * k], p[2 * k + 1], 0x44),
                         _mm256_shuffle_ps(p[2 * k], p[2 * k + 1], 0xee));
  }
  // [v0, v2, v4, v6 | v1, v3, v5, v7], then in order.
  const __m256 r =
      _mm256_add_ps(_mm256_shuffle_ps(q[0], q[1], 0x88), _mm256_shuffle_ps(q[0], q[1], 0xdd));
  _mm256_storeu_ps(out, _mm256_permutevar8x32_ps(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

template <class K, int R, int T>
void finish(const TileArgs& a, __m256 (&acc)[R][T], float* out);

// Per output: S_L^g = exact integer dot product of block L of group g; for each full group
//   acc = fma(float(S^g), dx^g * dy^g, acc)           (8 lanes: lane L = block L)
// then the last nb % 8 blocks one at a time: acc = fma(float(dot lanes), dx * dy, acc);
// out = hsum(acc). Decode shapes (1-2 tokens) compute S^g with maddubs per block and an
// hadd tree; GEMM shapes with the int16 vectors of widen_group (weights widened once per
// row and group, activations once per token): integer sums are exact, so both give the same
// S^g and therefore the same bits.
// Prepared per token and group of 8 blocks (kGroupFloats = 136 floats, kPrep = 17): floats
// 0-7 dy, then the 16 vectors of widen_group (512 bytes). A last partial group holds dy only.
struct Q8_0Kernel {
  static constexpr int64_t kBlockValues = 32;
  static constexpr size_t kWBytes = sizeof(BlockQ8_0);
  static constexpr size_t kABytes = sizeof(BlockQ8_0);
  static constexpr int kPrep = 17;
  static constexpr int64_t kGroupFloats = 8 * kPrep;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  static constexpr int kGemmRows = 2;
  static constexpr int kGemmTokens = 12;
  static constexpr int64_t kGemmMinTokens = 3;
  static constexpr int kPass = 4;  // tokens per register pass of a GEMM tile

  static void prepare(const uint8_t* act, int64_t nb, float* prep, int64_t) {
    const int64_t full = nb / 8 * 8;
    for (int64_t b = 0; b < full; b += 8) {
      float* g = prep + b / 8 * kGroupFloats;
      _mm256_storeu_ps(g, load_f16x8_strided(act + b * kABytes, kABytes));
      __m256i v[16];
      widen_group(act + b * kABytes, v);
      auto* dst = reinterpret_cast<__m256i*>(g + 8);
      for (int m = 0; m < 16; ++m) _mm256_storeu_si256(dst + m, v[m]);
    }
    for (int64_t b = full; b < nb; ++b) {
      prep[(b / 8) * kGroupFloats + b % 8] = f16_to_f32(load_u16(act + b * kABytes));
    }
  }

  // Decode: one group of one row against T tokens (raw activations `act` at the group's
  // first block, prepared data `prep` at the group).
  template <int T>
  static void decode_group(const uint8_t* blk, const uint8_t* act, size_t act_row_bytes,
                           const float* prep, int64_t prep_stride, __m256* acc) {
    __m256i h[T][4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {  // blocks 2q, 2q+1
      const __m256i xa = loadu256(blk + 2 * q * kWBytes + 2);
      const __m256i xb = loadu256(blk + (2 * q + 1) * kWBytes + 2);
      const __m256i uxa = _mm256_abs_epi8(xa), uxb = _mm256_abs_epi8(xb);
      for (int t = 0; t < T; ++t) {
        const uint8_t* y = act + t * act_row_bytes + 2 * q * kABytes + 2;
        h[t][q] = _mm256_hadd_epi32(dot_lanes(xa, uxa, loadu256(y)),
                                    dot_lanes(xb, uxb, loadu256(y + kABytes)));
      }
    }
    const __m256 dx = load_f16x8_strided(blk, kWBytes);
    for (int t = 0; t < T; ++t) {
      // Lane halves: [blocks 0-3 of dwords 0-3 | blocks 0-3 of dwords 4-7], then 4-7.
      const __m256i lo = _mm256_hadd_epi32(h[t][0], h[t][1]);
      const __m256i hi = _mm256_hadd_epi32(h[t][2], h[t][3]);
      const __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20),
                                         _mm256_permute2x128_si256(lo, hi, 0x31));
      const __m256 scale = _mm256_mul_ps(dx, _mm256_loadu_ps(prep + t * prep_stride));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc[t]);
    }
  }

  // GEMM: the widened weights `wv` (R rows x 16 vectors) of one group against Ts tokens'
  // prepared data; integer accumulators in registers, float accumulators in memory
  // (`acc` row i at acc + i * acc_row).
  template <int R, int Ts>
  [[gnu::noinline]] static void gemm_pass(const __m256i* wv, const __m256* dx, const float* prep,
                                          int64_t prep_stride, __m256* acc, int acc_row) {
    __m256i s[R][Ts];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < Ts; ++t) s[i][t] = _mm256_setzero_si256();
    }
#pragma GCC unroll 2
    for (int m = 0; m < 16; ++m) {
      __m256i w[R];
      for (int i = 0; i < R; ++i) w[i] = _mm256_load_si256(wv + 16 * i + m);
      for (int t = 0; t < Ts; ++t) {
        const auto* yv = reinterpret_cast<const __m256i*>(prep + t * prep_stride + 8);
        const __m256i y = _mm256_loadu_si256(yv + m);
        for (int i = 0; i < R; ++i) s[i][t] = _mm256_add_epi32(s[i][t], _mm256_madd_epi16(w[i], y));
      }
    }
    for (int t = 0; t < Ts; ++t) {
      const __m256 dy = _mm256_loadu_ps(prep + t * prep_stride);
      for (int i = 0; i < R; ++i) {
        __m256* a = acc + i * acc_row + t;
        *a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[i][t]), _mm256_mul_ps(dx[i], dy), *a);
      }
    }
  }

  template <int R, int T>
  static void gemm_groups(const TileArgs& a, __m256* acc) {
    alignas(32) __m256i wv[R * 16];
    const size_t seg_bytes = static_cast<size_t>(a.nb) * kWBytes;
    for (int64_t g = 0; g < a.nb / 8; ++g) {
      prefetch_rows<R>(a, seg_bytes, 8 * g * kWBytes, (8 * kWBytes + 63) / 64);
      __m256 dx[R];
      for (int i = 0; i < R; ++i) {
        const uint8_t* blk = a.w + i * a.row_stride + 8 * g * kWBytes;
        dx[i] = load_f16x8_strided(blk, kWBytes);
        widen_group(blk, wv + 16 * i);
      }
      const float* prep = a.prep + g * kGroupFloats;
      int t0 = 0;
      for (; t0 + kPass <= T; t0 += kPass) {
        gemm_pass<R, kPass>(wv, dx, prep + t0 * a.prep_stride, a.prep_stride, acc + t0, T);
      }
      if constexpr (T % kPass != 0) {
        gemm_pass<R, T % kPass>(wv, dx, prep + t0 * a.prep_stride, a.prep_stride, acc + t0, T);
      }
    }
  }

  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
    }
    if constexpr (T <= 2) {
      const size_t seg_bytes = static_cast<size_t>(a.nb) * kWBytes;
      for (int64_t g = 0; g < a.nb / 8; ++g) {
        prefetch_rows<R>(a, seg_bytes, 8 * g * kWBytes, (8 * kWBytes + 63) / 64);
        for (int i = 0; i < R; ++i) {
          decode_group<T>(a.w + i * a.row_stride + 8 * g * kWBytes, a.act + 8 * g * kABytes,
                          a.act_row_bytes, a.prep + g * kGroupFloats, a.prep_stride, acc[i]);
        }
      }
    } else {
      gemm_groups<R, T>(a, &acc[0][0]);
    }
    finish<Q8_0Kernel, R, T>(a, acc, out);
  }
};

// After the full groups of a tile: the last nb % 8 blocks of each row (GGUF blocks in every
// layout) one at a time, for tokens 0..nt-1. K gives the prepared data's group size (dy of
// block b at prep[(b / 8) * K::kGroupFloats + b % 8]).
template <class K, int R, int T>
inline void tail_blocks(const TileArgs& a, int nt, __m256 (&acc)[R][T]) {
  constexpr size_t kBytes = sizeof(BlockQ8_0);
  for (int64_t b = a.nb / 8 * 8; b < a.nb; ++b) {
    for (int i = 0; i < R; ++i) {
      const uint8_t* blk = a.w + i * a.row_stride + b * kBytes;
      const float dx = f16_to_f32(load_u16(blk));
      const __m256i x = loadu256(blk + 2);
      const __m256i ux = _mm256_abs_epi8(x);
      for (int t = 0; t < nt; ++t) {
        const __m256i qy = loadu256(a.act + t * a.act_row_bytes + b * kBytes + 2);
        const float dy = a.prep[t * a.prep_stride + (b / 8) * K::kGroupFloats + b % 8];
        acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_lanes(x, ux, qy)),
                                    _mm256_set1_ps(dx * dy), acc[i][t]);
      }
    }
  }
}

// out[j] = hsum(v[j]) for j < n, 8 at a time where possible (hsum8: the same bits).
inline void hsum_row(const __m256* v, int n, float* out) {
  int j = 0;
  for (; j + 8 <= n; j += 8) hsum8(v + j, out + j);
  for (; j < n; ++j) out[j] = hsum(v[j]);
}

// The end of a tile: tail_blocks, then out[i * T + t] = hsum(acc[i][t]).
template <class K, int R, int T>
inline void finish(const TileArgs& a, __m256 (&acc)[R][T], float* out) {
  tail_blocks<K, R, T>(a, T, acc);
  hsum_row(&acc[0][0], R * T, out);
}

// The same products on weights repacked at load (WeightLayout::kQ8_0x8, kernels/repack.h):
// a group's quants come already transposed (vector m, lane L = values 4m..4m+3 of block L)
// and its 8 scales from one 16-byte load, and the activations are transposed the same way
// once per token, so decode and GEMM both take S_L^g as 8 sums of maddubs(|x|, sign(y, x))
// + madd per lane (no hadd tree, no weight transposition): exact integer sums, then the same
// float steps as Q8_0Kernel, hence bit-identical results (segments of the reduction too).
// Prepared per token and group (kGroupFloats = 72, kPrep = 9): floats 0-7 dy, then the 8
// transposed activation vectors (256 bytes). A last partial group holds dy only.
struct Q8_0x8Kernel {
  static constexpr int64_t kBlockValues = 32;
  static constexpr size_t kWBytes = sizeof(BlockQ8_0);
  static constexpr size_t kABytes = sizeof(BlockQ8_0);
  static constexpr size_t kGroupBytes = 8 * kWBytes;  // 272
  static constexpr int kPrep = 9;
  static constexpr int64_t kGroupFloats = 8 * kPrep;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  static constexpr int64_t kSegBlocks = segment_blocks<Q8_0Kernel>();
  // GEMM tile (gemm_tile, run by matmul_rows_shaped) 2 x up to 8 tokens in register
  // blocks of 2 x 4:
  // the 8 tokens' prepared groups (18 KiB at k = 2048) and the 2 rows stay in L1 (12 tokens
  // were ~3% slower from 24 tokens on; also measured 3 x 6 / 3 x 3, 4 x 8 / 4 x 2, 2 x 12 /
  // 2 x 6, 2 x 10 / 2 x 5, 3 x 12 / 3 x 4, 4 x 12 and 4 x 8 in 2 x 4 blocks: none faster).
  static constexpr int kGemmRows = 2;
  static constexpr int kGemmTokens = 8;
  static constexpr int kBlockTokens = 4;  // tokens of a register block (rows: kGemmRows)
  static constexpr int64_t kGemmMinTokens = 3;

  static void prepare(const uint8_t* act, int64_t nb, float* prep, int64_t) {
    const int64_t full = nb / 8 * 8;
    for (int64_t b = 0; b < full; b += 8) {
      float* g = prep + b / 8 * kGroupFloats;
      _mm256_storeu_ps(g, load_f16x8_strided(act + b * kABytes, kABytes));
      __m256i u[8];
      transpose_group(act + b * kABytes, u);
      auto* dst = reinterpret_cast<__m256i*>(g + 8);
      for (int m = 0; m < 8; ++m) _mm256_storeu_si256(dst + m, u[m]);
    }
    for (int64_t b = full; b < nb; ++b) {
      prep[(b / 8) * kGroupFloats + b % 8] = f16_to_f32(load_u16(act + b * kABytes));
    }
  }

  static __m256 scales(const uint8_t* grp) { return _mm256_cvtph_ps(loadu128(grp + 256)); }

  // One group of one row (`grp`) against T tokens (prepared data `pg` at the group).
  template <int T>
  [[gnu::always_inline]] static inline void group_row(const uint8_t* grp, const float* pg,
                                                      int64_t prep_stride, __m256* acc) {
    __m256i s[T];
#pragma GCC unroll 8
    for (int m = 0; m < 8; ++m) {
      const __m256i x = loadu256(grp + 32 * m);
      const __m256i ux = _mm256_abs_epi8(x);
      for (int t = 0; t < T; ++t) {
        const auto* y = reinterpret_cast<const uint8_t*>(pg + t * prep_stride + 8);
        const __m256i d = dot_lanes(x, ux, loadu256(y + 32 * m));
        s[t] = m == 0 ? d : _mm256_add_epi32(s[t], d);
      }
    }
    const __m256 dx = scales(grp);
    for (int t = 0; t < T; ++t) {
      const __m256 scale = _mm256_mul_ps(dx, _mm256_loadu_ps(pg + t * prep_stride));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t]), scale, acc[t]);
    }
  }

  // The full groups of one row against T tokens, accumulators in registers.
  template <int T>
  [[gnu::noinline]] static void row_groups(const uint8_t* w, int64_t groups, const float* prep,
                                           int64_t prep_stride, __m256* acc_io) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = acc_io[t];
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* grp = w + g * kGroupBytes;
      for (int l = 0; l < 5; ++l) prefetch(grp + kPrefetchBytes + 64 * l);  // never faults
      group_row<T>(grp, prep + g * kGroupFloats, prep_stride, acc);
    }
    for (int t = 0; t < T; ++t) acc_io[t] = acc[t];
  }

  // One group of R rows (group bytes at grp[i]) against TB tokens: R x TB int32 sums in
  // registers over the 8 steps (|x| once per row and step for TB tokens, each activation
  // vector loaded once for R rows), then acc[i * T + t] (in memory) as in row_groups.
  // An empty asm pins each running sum (else GCC reassociates the 8 products and spills).
  template <int R, int TB, int T>
  [[gnu::always_inline]] static inline void group_block(const uint8_t* const* grp,
                                                        const float* prep, int64_t prep_stride,
                                                        __m256* acc) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256i s[R][TB];
    // The 8 steps as a plain unrolled loop, not a lambda: through a lambda GCC kept a memory
    // copy of s (8 dead 32-byte stores per 2 x 4 block), as in Q4_0x8Kernel::group_block.
#pragma GCC unroll 8
    for (int m = 0; m < 8; ++m) {
      __m256i ux[R];
      for (int i = 0; i < R; ++i) ux[i] = _mm256_abs_epi8(loadu256(grp[i] + 32 * m));
      for (int t = 0; t < TB; ++t) {
        const auto* y = reinterpret_cast<const uint8_t*>(prep + t * prep_stride + 8);
        const __m256i yv = loadu256(y + 32 * m);
        for (int i = 0; i < R; ++i) {
          const __m256i sy = _mm256_sign_epi8(yv, loadu256(grp[i] + 32 * m));
          const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ux[i], sy), ones16);
          s[i][t] = m == 0 ? p : _mm256_add_epi32(s[i][t], p);
          __asm__("" : "+x"(s[i][t]));  // one running sum per (row, token) in a register
        }
      }
    }
    for (int i = 0; i < R; ++i) {
      const __m256 dx = scales(grp[i]);
      for (int t = 0; t < TB; ++t) {
        __m256& a = acc[i * T + t];
        const __m256 scale = _mm256_mul_ps(dx, _mm256_loadu_ps(prep + t * prep_stride));
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[i][t]), scale, a);
      }
    }
  }

  // group_block<R, n, kGemmTokens> for the runtime n <= N tokens left (none when n = 0).
  template <int R, int N>
  [[gnu::always_inline]] static inline void block_rest(const uint8_t* const* grp, const float* prep,
                                                       int64_t prep_stride, int n, __m256* acc) {
    if constexpr (N > 0) {
      if (n == N) return group_block<R, N, kGemmTokens>(grp, prep, prep_stride, acc);
      block_rest<R, N - 1>(grp, prep, prep_stride, n, acc);
    }
  }

  // GEMM tile: R rows x nt tokens (1 <= nt <= kGemmTokens, runtime) of one segment, in
  // register blocks of R x kBlockTokens (the last one shorter); the outputs go straight to
  // y (row i at y + i * row_step, token t at y + t * y_stride): set when `first` (the
  // segment at block 0), else added, as matmul_rows_shaped does.
  template <int R>
  [[gnu::noinline]] static void gemm_tile(const TileArgs& a, int nt, float* y, int64_t y_stride,
                                          int64_t row_step, bool first) {
    constexpr int T = kGemmTokens, TB = kBlockTokens;
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();  // all: no memset call
    }
    for (int64_t g = 0; g < a.nb / 8; ++g) {
      const uint8_t* grp[R];
      for (int i = 0; i < R; ++i) {
        grp[i] = a.w + i * a.row_stride + g * kGroupBytes;
        for (int l = 0; l < 5; ++l) prefetch(grp[i] + kPrefetchBytes + 64 * l);  // never faults
      }
      const float* prep = a.prep + g * kGroupFloats;
      int t0 = 0;
      for (; t0 + TB <= nt; t0 += TB) {
        const uint8_t* gb[R];
        for (int i = 0; i < R; ++i) {
          gb[i] = grp[i];
          // Opaque per block: GCC would otherwise hoist the group's 16 weight loads out of
          // the token loop into stack copies (measured 52.6 against 58.4 GMAC/s).
          __asm__("" : "+r"(gb[i]));
        }
        group_block<R, TB, T>(gb, prep + t0 * a.prep_stride, a.prep_stride, &acc[0][t0]);
      }
      block_rest<R, TB - 1>(grp, prep + t0 * a.prep_stride, a.prep_stride, nt - t0, &acc[0][t0]);
    }
    tail_blocks<Q8_0x8Kernel, R, T>(a, nt, acc);
    for (int i = 0; i < R; ++i) {
      float out[T];
      hsum_row(acc[i], nt, out);
      float* dst = y + i * row_step;
      for (int t = 0; t < nt; ++t) dst[t * y_stride] = first ? out[t] : dst[t * y_stride] + out[t];
    }
  }

  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
    }
    // A row at a time, accumulators in registers (measured against the rows interleaved
    // group by group as in Q8_0Kernel: same at 1 token, slower at 2).
    for (int i = 0; i < R; ++i) {
      row_groups<T>(a.w + i * a.row_stride, a.nb / 8, a.prep, a.prep_stride, acc[i]);
    }
    finish<Q8_0x8Kernel, R, T>(a, acc, out);
  }
};

}  // namespace

float vec_dot_q8_0_q8_0(int64_t n, const void* x, const void* y) {
  return vec_dot<Q8_0Kernel>(n, x, y);
}

QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q8_0, Q8_0Kernel)

QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q8_0x8, Q8_0x8Kernel)

}  // namespace quanta::kernels::avx2
