// AVX2 dot products and row tiles of Q4_0 weights against Q8_0 activations, built for
// products with many tokens (prefill, batched decode) and used for one token too, so every
// tile shape computes each output the same way (batch invariance).
// The 8 blocks of a group sit in the 8 int32 lanes: weight levels are transposed in
// registers (lane L = block L, 4 values per maddubs), activations once per token, so 8
// maddubs sums add up in int16 lanes that start from the token's offsets, and one madd
// (or three ALU operations), one conversion, one multiply and one FMA per group finish a
// (row, token) pair. Q4_0x8Kernel does the same on weights repacked at load
// (WeightLayout::kQ4_0x8), bit-identical, with cheaper unpacking and a register-blocked
// GEMM tile.
#include "kernels/x86_avx2/avx2.h"
#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_avx2/tiling.h"
#include "quant/blocks.h"

namespace quanta::kernels::avx2 {
namespace {

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ8_0) == 34);

// Per output and full group of 8 blocks (lane L = block L):
//   acc = fnma(float(S'), dx * dy, acc)  S'_L = sum over block L of (8 - level) * qy
// (= fma(float(S), dx * dy, acc) with S = -S' = sum of (level - 8) * qy, bit for bit).
// S' is exact: int16 lane pairs (h0, h1) start at the token's offsets 8 * (sum of their 16
// qy) and subtract the 8 maddubs products level * qy (wrapping; each final half lies in
// [-16384, 16256]), then S' = h0 + h1 (madd, or lane_sums). Then the last nb % 8 blocks one
// at a time: acc = fma(float(d), dx * dy, acc), d = the block's dot lanes of level * qy with
// its offset -8 * sum(qy) added to lane 0; out = hsum(acc).
// Prepared per token and group of 8 blocks (kGroupFloats = 80 floats, kPrep = 10 per block):
// floats 0-7 dy, 8-15 the offsets (int16 lane 2L + h: 8 * the qy sum of values 4m + 2h,
// 4m + 2h + 1 of block L, m = 0..7), 16-79 the group's activation bytes transposed: 32-byte
// vector m holds values 4m..4m+3 of block L at bytes 4L..4L+3. A last partial group holds
// dy and, as int32 in slot 8 + L, block L's offset -8 * sum(qy).
struct Q4_0Kernel {
  static constexpr int64_t kBlockValues = 32;
  static constexpr size_t kWBytes = sizeof(BlockQ4_0);
  static constexpr size_t kABytes = sizeof(BlockQ8_0);
  static constexpr int kPrep = 10;
  static constexpr int64_t kGroupFloats = 8 * kPrep;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  static constexpr int kGemmRows = 4;
  static constexpr int kGemmTokens = 16;
  static constexpr int64_t kGemmMinTokens = 3;

  static void prepare(const uint8_t* act, int64_t nb, float* prep, int64_t) {
    const int64_t full = nb / 8 * 8;
    for (int64_t b = 0; b < full; b += 8)
      prepare_group(act + b * kABytes, prep + b / 8 * kGroupFloats);
    for (int64_t b = full; b < nb; ++b) {  // the partial last group: dy and corr only
      const uint8_t* blk = act + b * kABytes;
      const float dy = f16_to_f32(load_u16(blk));
      const int32_t sum = hsum_epi32(sum_i8_lanes(loadu256(blk + 2)));
      float* g = prep + (b / 8) * kGroupFloats;
      g[b % 8] = dy;
      const int32_t offset = -8 * sum;
      __builtin_memcpy(g + 8 + b % 8, &offset, sizeof offset);
    }
  }

  // One full group: the 8 blocks' quants transposed (an 8 x 8 dword transpose), dy, and
  // the int16 offsets.
  static void prepare_group(const uint8_t* act, float* g) {
    __m256i u[8];
    transpose_8x8_dwords(act + 2, kABytes, u);
    auto* bytes = reinterpret_cast<uint8_t*>(g + 16);
    const __m256i ones8 = _mm256_set1_epi8(1);
    __m256i sum16 = _mm256_setzero_si256();
    for (int m = 0; m < 8; ++m) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(bytes + 32 * m), u[m]);
      sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(ones8, u[m]));  // |.| <= 8 * 256
    }
    _mm256_storeu_ps(g, load_f16x8_strided(act, kABytes));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + 8), _mm256_slli_epi16(sum16, 3));
  }

  // The levels of 8 blocks transposed: v[m] lane L holds values 4m..4m+3 of block L (low
  // nibbles of qs dword m for m < 4, high nibbles of dword m - 4 after).
  static void levels(const uint8_t* blk, __m256i* v) {
    __m256i x[4];
    for (int j = 0; j < 4; ++j) {
      x[j] =
          _mm256_set_m128i(loadu128(blk + (j + 4) * kWBytes + 2), loadu128(blk + j * kWBytes + 2));
    }
    const __m256i t0 = _mm256_unpacklo_epi32(x[0], x[1]), t1 = _mm256_unpackhi_epi32(x[0], x[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(x[2], x[3]), t3 = _mm256_unpackhi_epi32(x[2], x[3]);
    const __m256i w[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                          _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int m = 0; m < 4; ++m) {
      v[m] = _mm256_and_si256(w[m], m4);
      v[m + 4] = _mm256_and_si256(_mm256_srli_epi16(w[m], 4), m4);
    }
  }

  // The 8 block scales of a group (F16 in each block's first two bytes).
  static __m256 scales(const uint8_t* blk) { return load_f16x8_strided(blk, kWBytes); }

  // S' = h0 + h1 of each int32 lane of s (int16 halves h0, h1).
  [[gnu::always_inline]] static inline __m256i lane_sums(__m256i s) {
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
  }

  // One (row, token) pair of a group: the transposed levels v against the token's prepared
  // data p, added to acc with the row's block scales dx (F::lane_sums joins the halves).
  template <class F, bool kChain>
  [[gnu::always_inline]] static inline void token_dot(const __m256i* v, __m256 dx, const float* p,
                                                      __m256& acc) {
    const auto* y = reinterpret_cast<const uint8_t*>(p + 16);
    __m256i s = loadu256(reinterpret_cast<const uint8_t*>(p + 8));
    for (int m = 0; m < 8; ++m) {
      s = _mm256_sub_epi16(s, _mm256_maddubs_epi16(v[m], loadu256(y + 32 * m)));
      // With several tokens, one running sum each: GCC's reassociated trees spill (one
      // token alone runs faster with the tree's shorter dependency chain).
      if constexpr (kChain) __asm__("" : "+x"(s));
    }
    const __m256 scale = _mm256_mul_ps(dx, _mm256_loadu_ps(p));
    acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(F::lane_sums(s)), scale, acc);
  }

  // The full groups of one row against T tokens (a row of a tile), the T accumulators in
  // registers; F is the weight layout (F::levels and F::scales read a group of 8 blocks,
  // 144 bytes in both layouts).
  template <class F, int T>
  [[gnu::noinline]] static void row_groups_of(const uint8_t* w, int64_t groups, const float* prep,
                                              int64_t prep_stride, __m256* acc_io) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = acc_io[t];
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* grp = w + 8 * g * kWBytes;
      for (int l = 0; l < 3; ++l) prefetch(grp + kPrefetchBytes + 64 * l);  // never faults
      __m256i v[8];
      F::levels(grp, v);
      const __m256 dx = F::scales(grp);
      const float* pg = prep + g * kGroupFloats;
      for (int t = 0; t < T; ++t) token_dot<F, (T > 1)>(v, dx, pg + t * prep_stride, acc[t]);
    }
    for (int t = 0; t < T; ++t) acc_io[t] = acc[t];
  }

  template <int T>
  static void row_groups(const uint8_t* w, int64_t groups, const float* prep, int64_t prep_stride,
                         __m256* acc_io) {
    row_groups_of<Q4_0Kernel, T>(w, groups, prep, prep_stride, acc_io);
  }

  // One full group of one row against nt tokens, the accumulators in memory (a load and a
  // store per ~20 vector operations): the transposed levels serve many tokens.
  [[gnu::noinline]] static void group_row_many(const uint8_t* blk, const float* prep,
                                               int64_t prep_stride, int nt, __m256* acc) {
    __m256i v[8];
    levels(blk, v);
    const __m256 dx = scales(blk);
    for (int t = 0; t < nt; ++t) {
      token_dot<Q4_0Kernel, true>(v, dx, prep + t * prep_stride, acc[t]);
    }
  }

  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
    }
    const int64_t groups = a.nb / 8;
    if constexpr (T <= 4) {  // decode shapes: accumulators in registers
      for (int i = 0; i < R; ++i) {
        row_groups<T>(a.w + i * a.row_stride, groups, a.prep, a.prep_stride, acc[i]);
      }
    } else {  // GEMM shapes: each row's levels transposed once per group for all T tokens
      for (int64_t g = 0; g < groups; ++g) {
        for (int i = 0; i < R; ++i) {
          const uint8_t* blk = a.w + i * a.row_stride + 8 * g * kWBytes;
          prefetch(blk + kPrefetchBytes);
          group_row_many(blk, a.prep + g * kGroupFloats, a.prep_stride, T, acc[i]);
        }
      }
    }
    finish<R, T>(a, acc, out);
  }

  // out[j] = hsum(v[j]) for j = 0..7, eight at a time with hsum's additions in hsum's order
  // (lo + hi halves, then lanes 0 + 2 and 1 + 3, then those two), so the bits do not depend
  // on how many outputs a tile has.
  static void hsum8(const __m256* v, float* out) {
    __m256 p[4];
    for (int k = 0; k < 4; ++k) {
      p[k] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x20),
                           _mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x31));
    }
    __m256 g[2];  // lanes: v[4k] t0, t1, v[4k + 2] t0, t1 | the same for v[4k + 1], v[4k + 3]
    for (int k = 0; k < 2; ++k) {
      g[k] = _mm256_add_ps(_mm256_shuffle_ps(p[2 * k], p[2 * k + 1], 0x44),
                           _mm256_shuffle_ps(p[2 * k], p[2 * k + 1], 0xEE));
    }
    const __m256 r = _mm256_add_ps(_mm256_shuffle_ps(g[0], g[1], 0x88),
                                   _mm256_shuffle_ps(g[0], g[1], 0xDD));  // 0 2 4 6 | 1 3 5 7
    _mm256_storeu_ps(out, _mm256_permutevar8x32_ps(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }

  // After the full groups: the last nb % 8 blocks of each row (in the GGUF layout in every
  // weight layout) one at a time, then out[i * T + t] = hsum(acc[i][t]).
  template <int R, int T>
  static void finish(const TileArgs& a, __m256 (&acc)[R][T], float* out) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (int64_t b = a.nb / 8 * 8; b < a.nb; ++b) {
      const float* g = a.prep + (b / 8) * kGroupFloats;
      for (int i = 0; i < R; ++i) {
        const uint8_t* blk = a.w + i * a.row_stride + b * kWBytes;
        const float dx = f16_to_f32(load_u16(blk));
        const __m256i both = _mm256_broadcastsi128_si256(loadu128(blk + 2));
        const __m256i x = _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)),
                                           _mm256_set1_epi8(0x0F));
        for (int t = 0; t < T; ++t) {
          const float* p = g + t * a.prep_stride;
          const __m256i qy = loadu256(a.act + t * a.act_row_bytes + b * kABytes + 2);
          int32_t offset;
          __builtin_memcpy(&offset, p + 8 + b % 8, sizeof offset);
          const __m256i d = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(x, qy), ones16),
                                             _mm256_setr_epi32(offset, 0, 0, 0, 0, 0, 0, 0));
          acc[i][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(dx * p[b % 8]), acc[i][t]);
        }
      }
    }
    const __m256* v = &acc[0][0];
    int j = 0;
    for (; j + 8 <= R * T; j += 8) hsum8(v + j, out + j);
    for (; j < R * T; ++j) out[j] = hsum(v[j]);
  }
};

// The same products on weights repacked at load (WeightLayout::kQ4_0x8, kernels/repack.h):
// a group's levels come from 4 aligned-size loads (v[m] = low nibbles of vector m, v[m + 4]
// the high ones) and its 8 scales from one 16-byte load, with the same arithmetic as
// Q4_0Kernel per (row, token) output, so both layouts give bit-identical results. The GEMM
// tile keeps rows x block-tokens int16 sums in registers over a group's 8 steps m: each
// weight vector serves a block's tokens and each activation vector the tile's rows.
struct Q4_0x8Kernel : Q4_0Kernel {
  static constexpr int64_t kGroupBytes = 8 * kWBytes;  // 144
  // GEMM tiles of 3 rows x 8 tokens in register blocks of 3 x 4 (12 int16 sums, 3 weight
  // vectors and 1 activation vector: the 16 registers), the last tile of a chunk of 3..8
  // tokens in blocks of 4 and 3 (see tile_tokens and tiling.h's block_tokens_3_4). 3 x 4 blocks measured ~4%
  // faster than 3 x 3 (6-token tiles). (Tiles of 12-16 tokens are slower: their prepared
  // activations, 2.5 KiB per token at k = 2048, no longer stay in L1 while the row tile runs.)
  static constexpr int kGemmRows = 3;
  static constexpr int kGemmTokens = 8;  // the largest tile (tile_tokens)
  static constexpr int64_t kGemmMinTokens = 3;

  // Tokens of the next tile when `rem` tokens of a chunk are left: all of them up to 8, 6
  // when 9 or 10 are left (6 + 3 or 6 + 4: no tile of 1 or 2 tokens), else 8.
  static constexpr int64_t tile_tokens(int64_t /*chunk*/, int64_t rem) {
    return rem <= 8 ? rem : rem <= 10 ? 6 : 8;
  }

  static void levels(const uint8_t* grp, __m256i* v) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int m = 0; m < 4; ++m) {
      const __m256i w = loadu256(grp + 32 * m);
      v[m] = _mm256_and_si256(w, m4);
      v[m + 4] = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
    }
  }

  static __m256 scales(const uint8_t* grp) { return _mm256_cvtph_ps(loadu128(grp + 128)); }

  template <int T>
  static void row_groups(const uint8_t* w, int64_t groups, const float* prep, int64_t prep_stride,
                         __m256* acc_io) {
    row_groups_of<Q4_0x8Kernel, T>(w, groups, prep, prep_stride, acc_io);
  }

  // S' of token_dot from its int16 lane pair s = (h0, h1) without a multiply, for this
  // kernel's decode rows: the high halves of s + (s << 16) hold h0 + h1 modulo 2^16, which is
  // S' itself (S' lies in [-32768, 32512]: 32 values of (8 - level) in [-7, 8] times qy in
  // [-128, 127]), and an arithmetic shift sign-extends it. The same integer as Q4_0Kernel's
  // madd(s, 1), on the ALU pipes (the multiply pipes run the maddubs); measured ~2% faster
  // in the decode rows (the GGUF layout's decode rows, which also transpose the levels, and
  // the GEMM blocks, group_block, run faster with the madd).
  [[gnu::always_inline]] static inline __m256i lane_sums(__m256i s) {
    return _mm256_srai_epi32(_mm256_add_epi16(s, _mm256_slli_epi32(s, 16)), 16);
  }

  // One group of R rows (group bytes at grp[i]) against TB tokens: the R x TB int16 sums
  // over the 8 steps in registers, a token at a time (R unpacked weight vectors live, each
  // activation vector loaded once for the R rows), then each (row, token) accumulator
  // acc[i * T + t] (in memory) is updated as in token_dot.
  template <int R, int TB, int T>
  [[gnu::always_inline]] static inline void group_block(const uint8_t* const* grp,
                                                        const float* prep, int64_t prep_stride,
                                                        __m256* acc) {
    const auto bytes = [&](int t, int floats) [[gnu::always_inline]] {
      return reinterpret_cast<const uint8_t*>(prep + t * prep_stride + floats);
    };
    __m256i s[R][TB];
    for (int i = 0; i < R; ++i) {  // the tokens' offsets
      for (int t = 0; t < TB; ++t) s[i][t] = loadu256(bytes(t, 8));
    }
    nibble_block_sums<R, TB, true>(grp, bytes(0, 16), prep_stride * sizeof(float), s);
    for (int i = 0; i < R; ++i) {
      const __m256 dx = scales(grp[i]);
      for (int t = 0; t < TB; ++t) {
        __m256& a = acc[i * T + t];
        const __m256 scale = _mm256_mul_ps(dx, _mm256_loadu_ps(prep + t * prep_stride));
        // The madd join (Q4_0Kernel::lane_sums), not the shift one: 1 operation instead of 3
        // (2 of them shifts), ~5% faster here since the block lost its spills.
        a = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(Q4_0Kernel::lane_sums(s[i][t])), scale, a);
      }
    }
  }

  // The full groups of R rows against T tokens, each group's rows prefetched, in register
  // blocks of block_tokens_3_4's schedule. The blocks of one size run as a loop: unrolled, GCC
  // interleaves consecutive blocks and spills (measured ~4% slower).
  template <int R, int T>
  [[gnu::noinline]] static void gemm_groups(const TileArgs& a, __m256 (&acc)[R][T]) {
    constexpr int kFours = block_tokens_3_4(T, 0) == 4 ? T % 3 : 0;
    constexpr int kThrees = (T - 4 * kFours) / 3;
    constexpr int kRest = T - 4 * kFours - 3 * kThrees;
    for (int64_t g = 0; g < a.nb / 8; ++g) {
      const uint8_t* grp[R];
      for (int i = 0; i < R; ++i) {
        grp[i] = a.w + i * a.row_stride + g * kGroupBytes;
        for (int l = 0; l < 3; ++l) prefetch(grp[i] + kPrefetchBytes + 64 * l);
      }
      const float* prep = a.prep + g * kGroupFloats;
      int t0 = 0;
      for (int j = 0; j < kFours; ++j, t0 += 4) {
        group_block<R, 4, T>(grp, prep + t0 * a.prep_stride, a.prep_stride, &acc[0][t0]);
      }
      for (int j = 0; j < kThrees; ++j, t0 += 3) {
        group_block<R, 3, T>(grp, prep + t0 * a.prep_stride, a.prep_stride, &acc[0][t0]);
      }
      if constexpr (kRest > 0) {
        group_block<R, kRest, T>(grp, prep + t0 * a.prep_stride, a.prep_stride, &acc[0][t0]);
      }
    }
  }

  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
    }
    if constexpr (T <= 2) {  // decode shapes: accumulators in registers, a row at a time
      for (int i = 0; i < R; ++i) {
        row_groups<T>(a.w + i * a.row_stride, a.nb / 8, a.prep, a.prep_stride, acc[i]);
      }
    } else {
      gemm_groups<R, T>(a, acc);
    }
    finish<R, T>(a, acc, out);
  }

  // A GEMM tile of R rows x nt <= kGemmTokens tokens written to y (output (i, t) at
  // y[t * y_stride + i * row_step]), stored when `first` (the reduction's first segment),
  // else added.
  template <int R>
  static void gemm_tile(const TileArgs& a, int nt, float* y, int64_t y_stride, int64_t row_step,
                        bool first) {
    static_assert(kGemmTokens == 8);
    float out[R * kGemmTokens];  // no zeroing: the tile writes its R x nt outputs
    using TileFn = void (*)(const TileArgs&, float*);
    static constexpr TileFn kTiles[kGemmTokens] = {&tile<R, 1>, &tile<R, 2>, &tile<R, 3>,
                                                   &tile<R, 4>, &tile<R, 5>, &tile<R, 6>,
                                                   &tile<R, 7>, &tile<R, 8>};
    kTiles[nt - 1](a, out);
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < nt; ++t) {
        float& d = y[t * y_stride + i * row_step];
        d = first ? out[i * nt + t] : d + out[i * nt + t];
      }
    }
  }
};

}  // namespace

float vec_dot_q4_0_q8_0(int64_t n, const void* x, const void* y) {
  return vec_dot<Q4_0Kernel>(n, x, y);
}

QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q4_0, Q4_0Kernel)
QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q4_0x8, Q4_0x8Kernel)

}  // namespace quanta::kernels::avx2
