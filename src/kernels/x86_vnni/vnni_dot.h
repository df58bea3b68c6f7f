// Integer VNNI row tiles of Q4_0 / Q8_0 weights repacked at load (WeightLayout::kQ4_0x8,
// kQ8_0x8) against Q8_0 activations: one template for the AVX512-VNNI folder (EVEX
// vpdpbusd, 32 registers; GEMM tiles of 4 rows on 512-bit vectors, two rows per zmm, see
// pair_block; decode tiles and leftover rows on 256-bit ones) and the AVX-VNNI folder (the
// VEX form on 256-bit vectors, 16 registers).
// Include only from those folders' .cc files; all of it lives in the including folder's
// namespace QUANTA_ISA_NS (see x86_avx2/simd.h).
//
// Bit-identical with the AVX2 kernels of the same layouts (x86_avx2/q4_0_dot.cc,
// q8_0_dot.cc), for every token count and row split: those compute, per (row, token) and
// full group of 8 blocks (lane L = block L), an exact integer block sum S_L, then
//   acc = fma(float(S), dx * dy, acc)         (Q4_0 writes it fnma(float(-S), ..): same bits)
// then the last nb % 8 blocks one at a time as acc = fma(float(lanes), dx * dy, acc), then
// out = hsum(acc), the reduction cut into the same segments. vpdpbusd multiplies unsigned
// by signed bytes, 4 products per int32 lane, so here:
//   Q4_0: S = -8 * sum(qy) + sum level * qy      (levels 0..15 are the unsigned operand)
//   Q8_0: S = -128 * sum(qy) + sum (w + 128) * qy (w XOR 0x80 is w + 128 as unsigned)
// with the correction -c * sum(qy) prepared per token and block as the int32 start of the
// sum, so each S costs 8 vpdpbusd (AVX2: 8 maddubs + 8 sub + a join for Q4_0, 8 sign + 8
// maddubs + 8 madd + 8 add + abs for Q8_0) and the same float steps follow, in the same
// order: the same bits. The tail blocks use the AVX2 kernels' lane sums (Q4_0 through
// vpdpbusd, the same integers; Q8_0 through the same sign/maddubs/madd).
// The zmm blocks compute the same S (lanes 0-7 one row's, 8-15 the next row's, against the
// token's vectors broadcast to both halves) and the same float steps lane by lane, the two
// rows' scales in the two halves: each lane's operations and order are the ymm lane's, so
// the bits are too; the tails and hsums then run on the 256-bit halves as above.
// Q8_0 note: the AVX2 Q8_0 paths are exact (and agree) for activations in [-127, 127],
// which is what quantize_row_q8_0 / from_float write; so is this one, for any weights.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_avx2/tiling.h"
#include "kernels/x86_simde/intrinsics.h"  // under QUANTA_SIMDE_EMULATION: SIMDe's VNNI names
#include "kernels/x86_vnni/vnni_ops.h"     // dpbusd; QUANTA_VNNI_ZMM: dpbusd512 etc.

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

#if QUANTA_VNNI_ZMM
// Two rows' 32-byte vectors in one zmm (row 0's in the low half).
QUANTA_VNNI_ZMM_INLINE inline __m512i load_pair256(const uint8_t* p0, const uint8_t* p1) {
  return join256(loadu256(p0), loadu256(p1));
}
#endif

// out[j] = hsum(v[j]) for j = 0..7 with hsum's additions in hsum's order (lo + hi halves,
// lanes 0 + 2 and 1 + 3, then those two), as the AVX2 kernels' hsum8: the same bits.
inline void vnni_hsum8(const __m256* v, float* out) {
  __m256 p[4], q[2];
  for (int k = 0; k < 4; ++k) {
    p[k] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x20),
                         _mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x31));
  }
  for (int k = 0; k < 2; ++k) {
    q[k] = _mm256_add_ps(_mm256_shuffle_ps(p[2 * k], p[2 * k + 1], 0x44),
                         _mm256_shuffle_ps(p[2 * k], p[2 * k + 1], 0xEE));
  }
  const __m256 r =
      _mm256_add_ps(_mm256_shuffle_ps(q[0], q[1], 0x88), _mm256_shuffle_ps(q[0], q[1], 0xDD));
  _mm256_storeu_ps(out, _mm256_permutevar8x32_ps(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// out[j] = hsum(v[j]) for j < n.
inline void vnni_hsum_row(const __m256* v, int n, float* out) {
  int j = 0;
  for (; j + 8 <= n; j += 8) vnni_hsum8(v + j, out + j);
  for (; j < n; ++j) out[j] = hsum(v[j]);
}

// Q4_0 weights in WeightLayout::kQ4_0x8 (kernels/repack.h). kSegBlocks: the AVX2 kernels'
// reduction segments, segment_blocks of a kernel with kPrep 10 and kTokens 2 (Q4_0Kernel).
struct VnniQ4_0 {
  static constexpr size_t kWBytes = 18;       // a GGUF block (the tail blocks)
  static constexpr size_t kGroupBytes = 144;  // kQ4_0x8GroupBytes
  static constexpr size_t kScalesAt = 128;    // the group's 8 F16 scales
  static constexpr int kCorrShift = 3;        // correction -(sum(qy) << 3) = -8 sum(qy)
  static constexpr int kPrefetchLines = 3;    // cache lines per group
  static constexpr int64_t kSegBlocks = (kSegFloats / (10 * 2)) & ~int64_t{7};

  // The unsigned operand of step m (lane L = levels of values 4m..4m+3 of block L).
  [[gnu::always_inline]] static inline __m256i weights(const uint8_t* grp, int m) {
    const __m256i w = loadu256(grp + 32 * (m & 3));
    return _mm256_and_si256(m < 4 ? w : _mm256_srli_epi16(w, 4), _mm256_set1_epi8(0x0F));
  }

#if QUANTA_VNNI_ZMM
  // weights(grp0, m) in the low half, weights(grp1, m) in the high one.
  QUANTA_VNNI_ZMM_INLINE static inline __m512i weights2(const uint8_t* grp0, const uint8_t* grp1,
                                                        int m) {
    const __m512i w = load_pair256(grp0 + 32 * (m & 3), grp1 + 32 * (m & 3));
    return _mm512_and_si512(m < 4 ? w : _mm512_srli_epi16(w, 4), _mm512_set1_epi8(0x0F));
  }
#endif

  // A tail block (GGUF) as the operand of tail_lanes: lanes 0-3 the low nibbles (values
  // 0..15), lanes 4-7 the high ones (values 16..31).
  static __m256i tail_weights(const uint8_t* blk) {
    const __m256i both = _mm256_broadcastsi128_si256(loadu128(blk + 2));
    return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)),
                            _mm256_set1_epi8(0x0F));
  }

  // The AVX2 tail lanes: lane j = sum of level * qy over values 4j..4j+3, plus the block's
  // offset -8 sum(qy) in lane 0 (exact integers either way).
  static __m256i tail_lanes(__m256i x, __m256i qy, int32_t offset) {
    return dpbusd(_mm256_setr_epi32(offset, 0, 0, 0, 0, 0, 0, 0), x, qy);
  }
};

// Q8_0 weights in WeightLayout::kQ8_0x8; the AVX2 segments of Q8_0Kernel (kPrep 17,
// kTokens 2), which Q8_0x8Kernel keeps.
struct VnniQ8_0 {
  static constexpr size_t kWBytes = 34;
  static constexpr size_t kGroupBytes = 272;  // kQ8_0x8GroupBytes
  static constexpr size_t kScalesAt = 256;
  static constexpr int kCorrShift = 7;  // -128 sum(qy)
  static constexpr int kPrefetchLines = 5;
  static constexpr int64_t kSegBlocks = (kSegFloats / (17 * 2)) & ~int64_t{7};

  // w + 128 as unsigned bytes (lane L = values 4m..4m+3 of block L).
  [[gnu::always_inline]] static inline __m256i weights(const uint8_t* grp, int m) {
    return _mm256_xor_si256(loadu256(grp + 32 * m), _mm256_set1_epi8(static_cast<char>(0x80)));
  }

#if QUANTA_VNNI_ZMM
  QUANTA_VNNI_ZMM_INLINE static inline __m512i weights2(const uint8_t* grp0, const uint8_t* grp1,
                                                        int m) {
    return _mm512_xor_si512(load_pair256(grp0 + 32 * m, grp1 + 32 * m),
                            _mm512_set1_epi8(static_cast<char>(0x80)));
  }
#endif

  static __m256i tail_weights(const uint8_t* blk) { return loadu256(blk + 2); }

  // The AVX2 kernels' dot_lanes: the sign of x moved onto qy, |x| unsigned.
  static __m256i tail_lanes(__m256i x, __m256i qy, int32_t /*offset*/) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(qy, x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
  }
};

// The kernel for tiling.h's matmul_rows (weights P, GEMM tiles of kGemmRows rows x up to 8
// tokens in register blocks of kGemmRows x TB int32 sums; with kZmm, kGemmRows even, in
// zmm blocks of kGemmRows / 2 row pairs x 8, 4, 2, 1 tokens, see pair_block).
// Prepared per token and group of 8 blocks (kGroupFloats = 80, kPrep = 10): floats 0-7 dy,
// 8-15 the int32 starts -c sum(qy) of the 8 blocks, 16-79 the activation bytes transposed
// (32-byte vector m, bytes 4L..4L+3 = values 4m..4m+3 of block L). A last partial group
// holds dy in float b % 8 and the int32 -8 sum(qy) (Q4_0's tail offset) in float 8 + b % 8.
template <class P, int kGemmRowsT, int TB, bool kZmm = false>
struct VnniKernel {
  static_assert(!kZmm || (QUANTA_VNNI_ZMM && kGemmRowsT % 2 == 0), "zmm blocks: row pairs");
  static constexpr int64_t kBlockValues = 32;
  static constexpr size_t kWBytes = P::kWBytes;
  static constexpr size_t kABytes = 34;  // BlockQ8_0
  static constexpr size_t kGroupBytes = P::kGroupBytes;
  static constexpr int kPrep = 10;
  static constexpr int64_t kGroupFloats = 8 * kPrep;
  static constexpr int64_t kSegBlocks = P::kSegBlocks;
  static constexpr int kRows = 4;  // decode tiles: 4 rows x 1-2 tokens, a row at a time
  static constexpr int kTokens = 2;
  static constexpr int kGemmRows = kGemmRowsT;
  static constexpr int kGemmTokens = 8;
  static constexpr int64_t kGemmMinTokens = 3;

  static void prepare(const uint8_t* act, int64_t nb, float* prep, int64_t) {
    const int64_t full = nb / 8 * 8;
    for (int64_t b = 0; b < full; b += 8) {
      prepare_group(act + b * kABytes, prep + b / 8 * kGroupFloats);
    }
    for (int64_t b = full; b < nb; ++b) {  // the partial last group: dy and the offset
      const uint8_t* blk = act + b * kABytes;
      float* g = prep + (b / 8) * kGroupFloats;
      g[b % 8] = f16_to_f32(load_u16(blk));
      const int32_t offset = -8 * hsum_epi32(sum_i8_lanes(loadu256(blk + 2)));
      __builtin_memcpy(g + 8 + b % 8, &offset, sizeof offset);
    }
  }

  // One full group: dy, the starts, and the 8 blocks' quants transposed (8 x 8 dwords).
  static void prepare_group(const uint8_t* act, float* g) {
    __m256i u[8];
    transpose_8x8_dwords(act + 2, kABytes, u);
    auto* bytes = reinterpret_cast<uint8_t*>(g + 16);
    const __m256i ones8 = _mm256_set1_epi8(1);
    __m256i sum = _mm256_setzero_si256();
    for (int m = 0; m < 8; ++m) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(bytes + 32 * m), u[m]);
      sum = dpbusd(sum, ones8, u[m]);  // lane L: sum of block L's qy
    }
    _mm256_storeu_ps(g, load_f16x8_strided(act, kABytes));
    const __m256i start =
        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sum, P::kCorrShift));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + 8), start);
  }

  static __m256 scales(const uint8_t* grp) { return _mm256_cvtph_ps(loadu128(grp + P::kScalesAt)); }

  // One prepared token `p` (at the group) against the group's unsigned weights v: S.
  [[gnu::always_inline]] static inline __m256i group_sum(const __m256i* v, const float* p) {
    const auto* y = reinterpret_cast<const uint8_t*>(p + 16);
    __m256i s = loadu256(reinterpret_cast<const uint8_t*>(p + 8));
    for (int m = 0; m < 8; ++m) s = dpbusd(s, v[m], loadu256(y + 32 * m));
    return s;
  }

  // Decode: the full groups of one row against T <= 2 tokens, accumulators in registers.
  template <int T>
  [[gnu::noinline]] static void row_groups(const uint8_t* w, int64_t groups, const float* prep,
                                           int64_t prep_stride, __m256* acc_io) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = acc_io[t];
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* grp = w + g * kGroupBytes;
      for (int l = 0; l < P::kPrefetchLines; ++l) prefetch(grp + kPrefetchBytes + 64 * l);
      __m256i v[8];
      for (int m = 0; m < 8; ++m) v[m] = P::weights(grp, m);
      const __m256 dx = scales(grp);
      const float* pg = prep + g * kGroupFloats;
      for (int t = 0; t < T; ++t) {
        const float* p = pg + t * prep_stride;
        const __m256 scale = _mm256_mul_ps(dx, _mm256_loadu_ps(p));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(group_sum(v, p)), scale, acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) acc_io[t] = acc[t];
  }

  // The last nb % 8 blocks (GGUF blocks in every layout) of R rows for tokens 0..nt-1
  // (acc row i at acc + i * acc_row), one at a time.
  template <int R>
  static void tail_blocks(const TileArgs& a, int nt, __m256* acc, int acc_row) {
    for (int64_t b = a.nb / 8 * 8; b < a.nb; ++b) {
      for (int i = 0; i < R; ++i) {
        const uint8_t* blk = a.w + i * a.row_stride + b * kWBytes;
        const float dx = f16_to_f32(load_u16(blk));
        const __m256i x = P::tail_weights(blk);
        for (int t = 0; t < nt; ++t) {
          const float* g = a.prep + t * a.prep_stride + (b / 8) * kGroupFloats;
          int32_t offset;
          __builtin_memcpy(&offset, g + 8 + b % 8, sizeof offset);
          const __m256i qy = loadu256(a.act + t * a.act_row_bytes + b * kABytes + 2);
          __m256& s = acc[i * acc_row + t];
          s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(P::tail_lanes(x, qy, offset)),
                              _mm256_set1_ps(dx * g[b % 8]), s);
        }
      }
    }
  }

  // Decode tile (1-2 tokens): out[i * T + t].
  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
    }
    for (int i = 0; i < R; ++i) {
      row_groups<T>(a.w + i * a.row_stride, a.nb / 8, a.prep, a.prep_stride, acc[i]);
    }
    tail_blocks<R>(a, T, &acc[0][0], T);
    vnni_hsum_row(&acc[0][0], R * T, out);
  }

  // One group of R rows (group bytes at grp[i]) against NB tokens: R x NB int32 sums in
  // registers over the 8 steps (each unsigned weight vector serves NB tokens, each
  // activation vector R rows), then acc[i * kGemmTokens + t] (in memory) as in row_groups.
  template <int R, int NB>
  [[gnu::always_inline]] static inline void group_block(const uint8_t* const* grp,
                                                        const float* prep, int64_t prep_stride,
                                                        __m256* acc) {
    const auto bytes = [&](int t, int floats) [[gnu::always_inline]] {
      return reinterpret_cast<const uint8_t*>(prep + t * prep_stride + floats);
    };
    __m256i s[R][NB];
    for (int t = 0; t < NB; ++t) {
      const __m256i start = loadu256(bytes(t, 8));
      for (int i = 0; i < R; ++i) s[i][t] = start;
    }
#pragma GCC unroll 8
    for (int m = 0; m < 8; ++m) {
      __m256i v[R];
      for (int i = 0; i < R; ++i) v[i] = P::weights(grp[i], m);
      for (int t = 0; t < NB; ++t) {
        const __m256i y = loadu256(bytes(t, 16) + 32 * m);
        for (int i = 0; i < R; ++i) s[i][t] = dpbusd(s[i][t], v[i], y);
      }
    }
    for (int i = 0; i < R; ++i) {
      const __m256 dx = scales(grp[i]);
      for (int t = 0; t < NB; ++t) {
        __m256& acc_it = acc[i * kGemmTokens + t];
        const __m256 scale = _mm256_mul_ps(dx, _mm256_loadu_ps(prep + t * prep_stride));
        acc_it = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[i][t]), scale, acc_it);
      }
    }
  }

  // group_block<R, n> for the runtime n <= N tokens left (none when n = 0).
  template <int R, int N>
  [[gnu::always_inline]] static inline void block_rest(const uint8_t* const* grp, const float* prep,
                                                       int64_t prep_stride, int n, __m256* acc) {
    if constexpr (N > 0) {
      if (n == N) return group_block<R, N>(grp, prep, prep_stride, acc);
      block_rest<R, N - 1>(grp, prep, prep_stride, n, acc);
    }
  }

  // The full groups of R rows x nt tokens in register blocks of R x TB, the float
  // accumulators acc[i * kGemmTokens + t] in memory (noinline: inlined into gemm_tile, GCC
  // kept them in registers beside the block's int32 sums, and spilled those).
  template <int R>
  [[gnu::noinline]] static void gemm_groups(const TileArgs& a, int nt, __m256* acc) {
    for (int64_t g = 0; g < a.nb / 8; ++g) {
      const uint8_t* grp[R];
      for (int i = 0; i < R; ++i) {
        grp[i] = a.w + i * a.row_stride + g * kGroupBytes;
        for (int l = 0; l < P::kPrefetchLines; ++l) prefetch(grp[i] + kPrefetchBytes + 64 * l);
      }
      const float* prep = a.prep + g * kGroupFloats;
      int t0 = 0;
      for (; t0 + TB <= nt; t0 += TB) {
        group_block<R, TB>(grp, prep + t0 * a.prep_stride, a.prep_stride, acc + t0);
      }
      block_rest<R, TB - 1>(grp, prep + t0 * a.prep_stride, a.prep_stride, nt - t0, acc + t0);
    }
  }

#if QUANTA_VNNI_ZMM
  // group_block on zmm for NP row pairs (group bytes of row 2j at grp[2j]) x NB tokens: the
  // two rows of a pair share a zmm (row 2j in lanes 0-7, 2j+1 in 8-15), each token's 32-byte
  // activation vectors are broadcast to both halves, so one vpdpbusd zmm adds the steps of
  // two (row, token) sums. Then per pair and token, lane-wise, the ymm block's float steps
  // with the two rows' scales in the two halves (the same bits per lane): the float sums of
  // (pair j, token t) at acc + 16 * (j * kGemmTokens + t), row 2j's in floats 0-7.
  template <int NP, int NB>
  [[gnu::always_inline]] static inline void pair_block(const uint8_t* const* grp, const float* prep,
                                                       int64_t prep_stride, float* acc) {
    const auto bytes = [&](int t, int floats) [[gnu::always_inline]] {
      return reinterpret_cast<const uint8_t*>(prep + t * prep_stride + floats);
    };
    __m512i s[NP][NB];
    for (int t = 0; t < NB; ++t) {
      const __m512i start = broadcast256(bytes(t, 8));
      for (int j = 0; j < NP; ++j) s[j][t] = start;
    }
#pragma GCC unroll 8
    for (int m = 0; m < 8; ++m) {
      __m512i v[NP];
      for (int j = 0; j < NP; ++j) v[j] = P::weights2(grp[2 * j], grp[2 * j + 1], m);
      for (int t = 0; t < NB; ++t) {
        const __m512i y = broadcast256(bytes(t, 16) + 32 * m);
        for (int j = 0; j < NP; ++j) s[j][t] = dpbusd512(s[j][t], v[j], y);
      }
    }
    for (int j = 0; j < NP; ++j) {
      const __m512 dx = join256_ps(scales(grp[2 * j]), scales(grp[2 * j + 1]));
      for (int t = 0; t < NB; ++t) {
        pair_fma(s[j][t], dx, prep + t * prep_stride, acc + 16 * (j * kGemmTokens + t));
      }
    }
  }

  // acc = fma(float(s), dx * dy, acc), dy (8 floats) in both halves: the ymm block's float
  // step on each half.
  QUANTA_VNNI_ZMM_INLINE static inline void pair_fma(__m512i s, __m512 dx, const float* dy,
                                                     float* acc) {
    const __m512 scale = _mm512_mul_ps(dx, broadcast256_ps(dy));
    _mm512_storeu_ps(acc, _mm512_fmadd_ps(cvtepi32_ps512(s), scale, _mm512_loadu_ps(acc)));
  }

  // The full groups of R rows (R / 2 pairs) x nt <= 8 tokens in zmm blocks of 8 tokens or
  // 4 + 2 + 1 of the nt < 8 (few block shapes: each costs compile time), float sums at acc
  // as in pair_block.
  template <int R>
  [[gnu::noinline]] static void pair_groups(const TileArgs& a, int nt, float* acc) {
    static_assert(kGemmTokens == 8);
    constexpr int NP = R / 2;
    for (int64_t g = 0; g < a.nb / 8; ++g) {
      const uint8_t* grp[R];
      for (int i = 0; i < R; ++i) {
        grp[i] = a.w + i * a.row_stride + g * kGroupBytes;
        for (int l = 0; l < P::kPrefetchLines; ++l) prefetch(grp[i] + kPrefetchBytes + 64 * l);
      }
      const float* prep = a.prep + g * kGroupFloats;
      if (nt == 8) {
        pair_block<NP, 8>(grp, prep, a.prep_stride, acc);
        continue;
      }
      int t0 = 0;
      if (nt & 4) {
        pair_block<NP, 4>(grp, prep, a.prep_stride, acc);
        t0 = 4;
      }
      if (nt & 2) {
        pair_block<NP, 2>(grp, prep + t0 * a.prep_stride, a.prep_stride, acc + 16 * t0);
        t0 += 2;
      }
      if (nt & 1) pair_block<NP, 1>(grp, prep + t0 * a.prep_stride, a.prep_stride, acc + 16 * t0);
    }
  }
#endif

  // GEMM tile (tiling.h's direct tiles): R rows x nt <= kGemmTokens tokens of one segment;
  // output (i, t) at y[t * y_stride + i * row_step], stored when `first` (the segment at
  // block 0), else added.
  template <int R>
  [[gnu::noinline]] static void gemm_tile(const TileArgs& a, int nt, float* y, int64_t y_stride,
                                          int64_t row_step, bool first) {
    constexpr int T = kGemmTokens;
    __m256 acc[R][T];
#if QUANTA_VNNI_ZMM
    if constexpr (kZmm && R % 2 == 0) {  // the full groups in zmm blocks, then as ymm sums
      alignas(64) float accz[R / 2][T][16] = {};
      pair_groups<R>(a, nt, &accz[0][0][0]);
      for (int i = 0; i < R; ++i) {
        for (int t = 0; t < T; ++t) acc[i][t] = _mm256_load_ps(&accz[i / 2][t][8 * (i % 2)]);
      }
    } else  // NOLINT(readability/braces)
#endif
    {
      for (int i = 0; i < R; ++i) {
        for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
      }
      gemm_groups<R>(a, nt, &acc[0][0]);
    }
    tail_blocks<R>(a, nt, &acc[0][0], T);
    for (int i = 0; i < R; ++i) {
      float out[T];
      vnni_hsum_row(acc[i], nt, out);
      float* dst = y + i * row_step;
      for (int t = 0; t < nt; ++t) dst[t * y_stride] = first ? out[t] : dst[t * y_stride] + out[t];
    }
  }
};

}  // namespace
}  // namespace quanta::kernels::QUANTA_ISA_NS
