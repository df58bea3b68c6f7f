// AVX2 dot products and row tiles of the legacy 32-value block types Q4_1, Q5_0 and Q5_1
// against Q8_0/Q8_1 activations (Q4_0: q4_0_dot.cc, Q8_0: q8_0_dot.cc). Unsigned weights (Q4/Q5
// levels) go straight into maddubs, two blocks per vector; their offset (-8/-16, or the Q4_1/Q5_1
// min) is applied per block from per-token activation sums prepared once, and the per-block F16
// scales are converted 8 blocks at a time.
#include "kernels/x86_avx2/avx2.h"
#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_avx2/tiling.h"
#include "quant/blocks.h"

namespace quanta::kernels::avx2 {
namespace {

// Byte layout of each weight block (offsets of its fields; see quant/blocks.h).
struct Q4_1Format {
  static constexpr size_t kBytes = sizeof(BlockQ4_1), kQs = 4, kM = 2, kQh = 0;
  static constexpr bool kMin = true, kHigh = false;
  static constexpr int kOffset = 0;  // value = d * q + m
};
struct Q5_0Format {
  static constexpr size_t kBytes = sizeof(BlockQ5_0), kQs = 6, kM = 0, kQh = 2;
  static constexpr bool kMin = false, kHigh = true;
  static constexpr int kOffset = 16;
};
struct Q5_1Format {
  static constexpr size_t kBytes = sizeof(BlockQ5_1), kQs = 8, kM = 2, kQh = 4;
  static constexpr bool kMin = true, kHigh = true;
  static constexpr int kOffset = 0;
};
static_assert(offsetof(BlockQ5_0, qs) == Q5_0Format::kQs && offsetof(BlockQ5_1, qh) == 4);
static_assert(offsetof(BlockQ8_1, qs) == 4 && offsetof(BlockQ4_1, qs) == Q4_1Format::kQs);

// 0x10 in byte j where bit j of `bits32` is set (the fifth bit of level j).
inline __m256i expand_high_bits(uint32_t bits32) {
  const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                        2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bits = _mm256_set1_epi64x(0x8040201008040201);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits32)), shuf);
  v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bits), bits);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

// Q4_1, Q5_0, Q5_1 (unsigned levels). Blocks go two at a time: the 16 quant bytes of
// blocks a and b side by side give levels [a 0..15 | b 0..15] (low nibbles) and
// [a 16..31 | b 16..31] (high nibbles), matched by activations laid out the same way once
// per token; one maddubs pair and one madd then yield a's sum in int32 lanes 0-3 and b's in
// lanes 4-7, scaled by dx*dy of the pair: dx of the pair's blocks permuted once per row
// (lanes a a a a b b b b) times dy prepared once per token in the same layout.
// Per output and group of 8 blocks the float operations are: acc = fma(cx, corr, acc) on the
// 8 blocks' lanes, then for pairs 0..3 acc = fma(sums, dx*dy, acc); the tail blocks (fewer
// than 8) add one block at a time; hsum at the end. Every tile shape does exactly this.
// Prepared per token, per group of 8 blocks (kGroupFloats = 112 floats, kPrep = 14 per block):
// floats 0-31 dy of pair p at 8p (lanes a a a a b b b b), floats 32-39 the correction per
// block: dy * (-offset * sum(qy)) (Q4_0/Q5_0) or the Q8_1 s (Q4_1/Q5_1), floats 40-103 the
// paired activation bytes (64 per pair), floats 104-111 dy per block. A last partial group
// holds only dy and corrections.
template <class F>
struct UnsignedKernel {
  static constexpr int64_t kBlockValues = 32;
  static constexpr size_t kWBytes = F::kBytes;
  static constexpr size_t kABytes = F::kMin ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
  static constexpr size_t kAQs = F::kMin ? 4 : 2;
  static constexpr int kPrep = 14;
  static constexpr int64_t kGroupFloats = 8 * kPrep;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  static constexpr int kGemmRows = 4;
  static constexpr int kGemmTokens = 6;
  static constexpr int64_t kGemmMinTokens = 4;

  // Offsets (floats) of block b's dy and correction inside a token's prepared data.
  static int64_t dy_at(int64_t b) { return (b / 8) * kGroupFloats + (b % 8 / 2) * 8 + b % 2 * 4; }
  static int64_t corr_at(int64_t b) { return (b / 8) * kGroupFloats + 32 + b % 8; }

  static void prepare(const uint8_t* act, int64_t nb, float* prep, int64_t) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = act + b * kABytes;
      const float dy = f16_to_f32(load_u16(blk));
      _mm_storeu_ps(prep + dy_at(b), _mm_set1_ps(dy));
      prep[(b / 8) * kGroupFloats + 104 + b % 8] = dy;
      if constexpr (F::kMin) {
        prep[corr_at(b)] = f16_to_f32(load_u16(blk + 2));
      } else {
        const int32_t sum = hsum_epi32(sum_i8_lanes(loadu256(blk + kAQs)));
        prep[corr_at(b)] = dy * static_cast<float>(-F::kOffset * sum);
      }
    }
    for (int64_t b = 0; b < nb / 8 * 8; b += 2) {
      auto* paired = reinterpret_cast<uint8_t*>(prep + (b / 8) * kGroupFloats + 40) + 32 * (b % 8);
      const uint8_t* ya = act + b * kABytes + kAQs;
      const uint8_t* yb = ya + kABytes;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(paired),
                          _mm256_set_m128i(loadu128(yb), loadu128(ya)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(paired + 32),
                          _mm256_set_m128i(loadu128(yb + 16), loadu128(ya + 16)));
    }
  }

  // Levels of blocks a (lanes 0-15 of each result) and b (16-31): lo holds values 0..15,
  // hi values 16..31.
  static void pair_levels(const uint8_t* wa, __m256i* lo, __m256i* hi) {
    const uint8_t* wb = wa + kWBytes;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i v = _mm256_set_m128i(loadu128(wb + F::kQs), loadu128(wa + F::kQs));
    *lo = _mm256_and_si256(v, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    if constexpr (F::kHigh) {
      // Bits 0..15 of each block belong to its values 0..15 (lo), bits 16..31 to 16..31.
      const uint32_t ha = load_u32(wa + F::kQh), hb = load_u32(wb + F::kQh);
      *lo = _mm256_or_si256(*lo, expand_high_bits((ha & 0xffffu) | (hb << 16)));
      *hi = _mm256_or_si256(*hi, expand_high_bits((ha >> 16) | (hb & 0xffff0000u)));
    }
  }

  // One block on its own (the tail), levels in value order, activations from the block.
  static __m256i single_levels(const uint8_t* blk) {
    const __m256i shift = _mm256_setr_epi64x(0, 0, 4, 4);
    const __m256i both = _mm256_broadcastsi128_si256(loadu128(blk + F::kQs));
    __m256i q = _mm256_and_si256(_mm256_srlv_epi64(both, shift), _mm256_set1_epi8(0x0F));
    if constexpr (F::kHigh) q = _mm256_or_si256(q, expand_high_bits(load_u32(blk + F::kQh)));
    return q;
  }

  // One group of 8 blocks of row `blk` against T tokens (see the struct comment).
  // One group of 8 blocks of R rows (`row_stride` bytes apart, from `w`) against T tokens
  // (see the struct comment). The scale of a pair is a permute of the 8 blocks' dx * dy: the
  // permutes run on the shuffle ports, which the multiplies and FMAs leave idle.
  template <int R, int T>
  static void group(const uint8_t* w, size_t row_stride, const float* prep, int64_t prep_stride,
                    __m256 (*acc)[T]) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256 dx[R];
    for (int i = 0; i < R; ++i) {
      const uint8_t* blk = w + i * row_stride;
      dx[i] = load_f16x8_strided(blk, kWBytes);
      // The correction multiplies the min (Q4_1/Q5_1) or dx (offset formats).
      const __m256 cx = F::kMin ? load_f16x8_strided(blk + F::kM, kWBytes) : dx[i];
      for (int t = 0; t < T; ++t) {
        acc[i][t] = _mm256_fmadd_ps(cx, _mm256_loadu_ps(prep + t * prep_stride + 32), acc[i][t]);
      }
    }
    __m256 dxdy[R][T];  // dx * dy of the 8 blocks
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) {
        dxdy[i][t] = _mm256_mul_ps(dx[i], _mm256_loadu_ps(prep + t * prep_stride + 104));
      }
    }
#pragma GCC unroll 4
    for (int pair = 0; pair < 4; ++pair) {
      const __m256i idx = _mm256_setr_epi32(2 * pair, 2 * pair, 2 * pair, 2 * pair, 2 * pair + 1,
                                            2 * pair + 1, 2 * pair + 1, 2 * pair + 1);
      for (int i = 0; i < R; ++i) {
        __m256i lo, hi;
        pair_levels(w + i * row_stride + 2 * pair * kWBytes, &lo, &hi);
        for (int t = 0; t < T; ++t) {
          const float* p = prep + t * prep_stride;
          const auto* y = reinterpret_cast<const uint8_t*>(p + 40) + 64 * pair;
          const __m256i m16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, loadu256(y)),
                                               _mm256_maddubs_epi16(hi, loadu256(y + 32)));
          const __m256 sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(m16, ones16));
          const __m256 scale = _mm256_permutevar8x32_ps(dxdy[i][t], idx);
          acc[i][t] = _mm256_fmadd_ps(sums, scale, acc[i][t]);
        }
      }
    }
  }

  // One row of a GEMM tile: not inlined into the tile's row loop, so the compiler keeps the
  // row's accumulators in registers instead of hoisting (and spilling) every row's loads.
  template <int T>
  [[gnu::noinline]] static void group_row(const uint8_t* w, const float* prep, int64_t prep_stride,
                                          __m256* acc_io) {
    __m256 acc[1][T];
    for (int t = 0; t < T; ++t) acc[0][t] = acc_io[t];
    group<1, T>(w, 0, prep, prep_stride, acc);
    for (int t = 0; t < T; ++t) acc_io[t] = acc[0][t];
  }

  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256 acc[R][T];
    float tail[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) {
        acc[i][t] = _mm256_setzero_ps();
        tail[i][t] = 0.0f;
      }
    }
    const size_t seg_bytes = static_cast<size_t>(a.nb) * kWBytes;
    int64_t b = 0;
    for (; b + 8 <= a.nb; b += 8) {
      prefetch_rows<R>(a, seg_bytes, b * kWBytes, (8 * kWBytes + 63) / 64);
      const float* prep = a.prep + (b / 8) * kGroupFloats;
      if constexpr (R * T <= 8) {  // decode shapes: all rows at once (independent chains)
        group<R, T>(a.w + b * kWBytes, a.row_stride, prep, a.prep_stride, acc);
      } else {
        for (int i = 0; i < R; ++i) {
          group_row<T>(a.w + i * a.row_stride + b * kWBytes, prep, a.prep_stride, acc[i]);
        }
      }
    }
    for (; b < a.nb; ++b) {  // fewer than 8 blocks left: one block and scale at a time
      for (int i = 0; i < R; ++i) {
        const uint8_t* blk = a.w + i * a.row_stride + b * kWBytes;
        const float dx = f16_to_f32(load_u16(blk));
        const float cx = F::kMin ? f16_to_f32(load_u16(blk + F::kM)) : dx;
        const __m256i x = single_levels(blk);
        for (int t = 0; t < T; ++t) {
          const float* p = a.prep + t * a.prep_stride;
          const __m256i qy = loadu256(a.act + t * a.act_row_bytes + b * kABytes + kAQs);
          const __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(x, qy), ones16);
          acc[i][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(dx * p[dy_at(b)]), acc[i][t]);
          tail[i][t] += cx * p[corr_at(b)];
        }
      }
    }
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) out[i * T + t] = hsum(acc[i][t]) + tail[i][t];
    }
  }
};

using Q4_1Kernel = UnsignedKernel<Q4_1Format>;
using Q5_0Kernel = UnsignedKernel<Q5_0Format>;
using Q5_1Kernel = UnsignedKernel<Q5_1Format>;

}  // namespace

float vec_dot_q4_1_q8_1(int64_t n, const void* x, const void* y) {
  return vec_dot<Q4_1Kernel>(n, x, y);
}
float vec_dot_q5_0_q8_0(int64_t n, const void* x, const void* y) {
  return vec_dot<Q5_0Kernel>(n, x, y);
}
float vec_dot_q5_1_q8_1(int64_t n, const void* x, const void* y) {
  return vec_dot<Q5_1Kernel>(n, x, y);
}

QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q4_1, Q4_1Kernel)
QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q5_0, Q5_0Kernel)
QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q5_1, Q5_1Kernel)

}  // namespace quanta::kernels::avx2
