// AVX2 dot products and row tiles of Q4_K weights against Q8_K activations, in the GGUF layout
// (Q4KKernel) and repacked at load (Q4Kx8Kernel, WeightLayout::kQ4_Kx8), one kernel per layout
// for decode and for products with many tokens. Both compute every output with the same exact
// integer sums and the same float steps (bit-identical results, batch invariance): int32 lane
// L of a super-block's sum is sub-block L, the mins go through activation sums prepared once
// per token.
#include "core/error.h"
#include "kernels/x86_avx2/avx2.h"
#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_avx2/tiling.h"
#include "quant/blocks.h"

namespace quanta::kernels::avx2 {
namespace {

static_assert(sizeof(BlockQ4_K) == 144 && offsetof(BlockQ4_K, qs) == 16);
static_assert(offsetof(BlockQ8_K, qs) == 4 && sizeof(BlockQ8_K) == 292);
// kernels::kQ4_KScalesAt (repack.h is not included: its std:: headers must not be compiled
// with AVX2): d, dmin at 128, the 8 scale bytes at 132, the mins' high bits at 140.
constexpr size_t kQ4_KScalesAt = 132;

// Per output (row, token) and super-block, in both layouts:
//   P_L = sum over sub-block L of level * qy (int16 lane pair summed: exact), S = madd(P, sc)
//   (int32 lane L = sc[L] * P_L, exact), then
//   acc = fma(float(S), d * yd, acc); acc = fnmadd(dmin * m, C, acc)
// with C_L = yd * (sum of the 32 activations of sub-block L) prepared once per token, and
// out = hsum(acc) per segment of the reduction (segment_blocks<Q4KKernel>, both kernels).
// The scales of one super-block: sc[L] at both int16 halves of int32 lane L, d, dmin * m[L].
struct Scales {
  __m256i sc;
  float d;
  __m256 mins;
};

// int16 pairs (v, v) of int32 lanes holding v < 2^15.
inline __m256i dup16(__m256i v) {
  return _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
}

// dmin * m[L] from the 8 mins m[L] as int32 lanes.
inline __m256 scaled_mins(__m256i m, const uint8_t* x) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(f16_to_f32(load_u16(x + 2))));
}

// The float steps of one (row, token, super-block) from the exact int32 sums S (lane L =
// sc[L] * P_L): the same operations in every tile, path and layout.
[[gnu::always_inline]] inline __m256 finish(__m256 acc, __m256i s, float dy, __m256 mins,
                                            const float* c) {
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dy), acc);
  return _mm256_fnmadd_ps(mins, _mm256_loadu_ps(c), acc);
}

// C_L = yd * (bsums 2L + 2L+1) of one Q8_K block at prep (the int16 pairs summed by a madd
// with ones: exact).
inline void prepare_mins(const uint8_t* blk, float* prep) {
  const __m256i b32 = _mm256_madd_epi16(loadu256(blk + 260), _mm256_set1_epi16(1));
  float yd;
  std::memcpy(&yd, blk, sizeof yd);
  _mm256_storeu_ps(prep, _mm256_mul_ps(_mm256_cvtepi32_ps(b32), _mm256_set1_ps(yd)));
}

inline float block_yd(const uint8_t* act) {
  float yd;
  std::memcpy(&yd, act, sizeof yd);
  return yd;
}

// GGUF layout. Chunk c (qs bytes 32c..32c+31) holds sub-block 2c (low nibbles) and 2c+1
// (high nibbles). The 4 chunks are transposed in registers: vector P_k, int32 lane 4h + c =
// dword 4h + k of chunk c; the maddubs products add up in int16 per parity (e: sub-blocks 2c,
// o: 2c+1; 4 x 2 x 15 x 128 < 2^15), then two interleaves and a lane-crossing add bring each
// sub-block's two halves h to lane L (still int16 pairs: 8 x 2 x 15 x 128 < 2^15).
// Prepared per token and super-block (kPrep = 72 floats): 256 activation bytes: vectors A_k
// (k = 0..3, bytes 32k) and B_k (bytes 128 + 32k), lane L = 4h + c holding the 4 activations
// of lane L's values of sub-block 2c (A) and 2c+1 (B); then C_0..C_7 (floats 64..71).
struct Q4KKernel {
  static constexpr int64_t kBlockValues = kQK_K;
  static constexpr size_t kWBytes = sizeof(BlockQ4_K);
  static constexpr size_t kABytes = sizeof(BlockQ8_K);
  static constexpr int kPrep = 72;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  // GEMM tile 4 x 16, super-blocks outer (4 x 6 row by row before: 55 GMAC/s at 64 tokens;
  // 4 x 8 62, 4 x 16 64, 4 x 24 about the same; dev/gemm/README.md).
  static constexpr int kGemmRows = 4;
  static constexpr int kGemmTokens = 16;
  static constexpr int64_t kGemmMinTokens = 3;

  static void prepare(const uint8_t* act, int64_t nb, float* prep, int64_t) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* qs = act + b * kABytes + 4;
      auto* out = reinterpret_cast<__m256i*>(prep + b * kPrep);
      for (int par = 0; par < 2; ++par) {  // A_k: sub-blocks 0, 2, 4, 6; B_k: 1, 3, 5, 7
        const __m256i in[4] = {loadu256(qs + 32 * par), loadu256(qs + 64 + 32 * par),
                               loadu256(qs + 128 + 32 * par), loadu256(qs + 192 + 32 * par)};
        __m256i t[4];
        transpose4(in, t);
        for (int k = 0; k < 4; ++k) _mm256_storeu_si256(out + 4 * par + k, t[k]);
      }
      prepare_mins(act + b * kABytes, prep + b * kPrep + 64);
    }
  }

  // Scales and mins of one super-block (12 packed bytes, see quant/blocks.h).
  static Scales unpack_scales(const uint8_t* x) {
    const uint8_t* packed = x + 4;
    const uint32_t u0 = load_u32(packed), u1 = load_u32(packed + 4), u2 = load_u32(packed + 8);
    const uint64_t sc = (u0 & 0x3f3f3f3fu) |
                        static_cast<uint64_t>((u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u)) << 32;
    const uint64_t mn = (u1 & 0x3f3f3f3fu) |
                        static_cast<uint64_t>(((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u))
                            << 32;
    const auto bytes = [](uint64_t v) {
      return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(v)));
    };
    return {dup16(bytes(sc)), f16_to_f32(load_u16(x)), scaled_mins(bytes(mn), x)};
  }

  // 4 x 4 dword transposes within the 128-bit halves: out[k] int32 lane 4h + c = dword
  // 4h + k of in[c].
  static void transpose4(const __m256i* in, __m256i* out) {
    const __m256i t0 = _mm256_unpacklo_epi32(in[0], in[1]),
                  t1 = _mm256_unpackhi_epi32(in[0], in[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(in[2], in[3]),
                  t3 = _mm256_unpackhi_epi32(in[2], in[3]);
    out[0] = _mm256_unpacklo_epi64(t0, t2);
    out[1] = _mm256_unpackhi_epi64(t0, t2);
    out[2] = _mm256_unpacklo_epi64(t1, t3);
    out[3] = _mm256_unpackhi_epi64(t1, t3);
  }

  // Levels of one super-block transposed: lo[k] / hi[k] low / high nibbles of P_k.
  static void levels(const uint8_t* x, __m256i* lo, __m256i* hi) {
    const __m256i c[4] = {loadu256(x + 16), loadu256(x + 48), loadu256(x + 80), loadu256(x + 112)};
    __m256i p[4];
    transpose4(c, p);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int k = 0; k < 4; ++k) {
      lo[k] = _mm256_and_si256(p[k], m4);
      hi[k] = _mm256_and_si256(_mm256_srli_epi16(p[k], 4), m4);
    }
  }

  // One super-block of one row against nt tokens (activation rows `act`, prepared data),
  // inlined into row_blocks and the GEMM tile with a compile-time count.
  [[gnu::always_inline]] static inline void block_row(const uint8_t* x, const uint8_t* act,
                                                      size_t act_row_bytes, const float* prep,
                                                      int64_t prep_stride, int nt, __m256* acc) {
    __m256i lo[4], hi[4];
    levels(x, lo, hi);
    const Scales s = unpack_scales(x);
    for (int t = 0; t < nt; ++t) {
      const float* pt = prep + t * prep_stride;
      const auto* y = reinterpret_cast<const uint8_t*>(pt);
      __m256i e = _mm256_maddubs_epi16(lo[0], loadu256(y));
      __m256i o = _mm256_maddubs_epi16(hi[0], loadu256(y + 128));
      for (int k = 1; k < 4; ++k) {
        e = _mm256_add_epi16(e, _mm256_maddubs_epi16(lo[k], loadu256(y + 32 * k)));
        o = _mm256_add_epi16(o, _mm256_maddubs_epi16(hi[k], loadu256(y + 128 + 32 * k)));
      }
      // Lanes 4h + c of e / o -> lane L = 2c + parity (halves h = 0 and 1 added in int16).
      const __m256i u = _mm256_unpacklo_epi32(e, o), v = _mm256_unpackhi_epi32(e, o);
      const __m256i p = _mm256_add_epi16(_mm256_permute2x128_si256(u, v, 0x20),
                                         _mm256_permute2x128_si256(u, v, 0x31));
      const float dy = s.d * block_yd(act + t * act_row_bytes);
      acc[t] = finish(acc[t], _mm256_madd_epi16(p, s.sc), dy, s.mins, pt + 64);
    }
  }

  // All super-blocks of one row against T tokens; the T accumulators stay in registers.
  template <int T>
  [[gnu::noinline]] static void row_blocks(const uint8_t* w, const TileArgs& a, __m256* acc_io) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = acc_io[t];
    for (int64_t b = 0; b < a.nb; ++b) {
      const uint8_t* x = w + b * kWBytes;
      for (int l = 0; l < 3; ++l) prefetch(x + kPrefetchBytes + 64 * l);  // never faults
      block_row(x, a.act + b * kABytes, a.act_row_bytes, a.prep + b * kPrep, a.prep_stride, T, acc);
    }
    for (int t = 0; t < T; ++t) acc_io[t] = acc[t];
  }

  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
    }
    if constexpr (T >= 3) {
      // GEMM shapes: super-blocks outer, rows inner, the R x T accumulators in memory: a
      // super-block's prepared activations of the T tokens (4.5 KiB) stay in L1 for the R
      // rows, whose levels are unpacked once for all T tokens (row by row over all
      // super-blocks, a tile's tokens no longer fit L1 at k = 5632: 6.3 KiB per token).
      const size_t seg_bytes = static_cast<size_t>(a.nb) * kWBytes;
      for (int64_t b = 0; b < a.nb; ++b) {
        prefetch_rows<R>(a, seg_bytes, b * kWBytes, 3);
        for (int i = 0; i < R; ++i) {
          block_row(a.w + i * a.row_stride + b * kWBytes, a.act + b * kABytes, a.act_row_bytes,
                    a.prep + b * kPrep, a.prep_stride, T, acc[i]);
        }
      }
    } else {
      // Decode shapes: each row's super-blocks against the T tokens, accumulators in registers.
      for (int i = 0; i < R; ++i) row_blocks<T>(a.w + i * a.row_stride, a, acc[i]);
    }
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) out[i * T + t] = hsum(acc[i][t]);
    }
  }
};

// kQ4_Kx8 (kernels/repack.h): vector j of a super-block holds, in int32 lane L, values
// 4j..4j+3 (low nibbles) and 16+4j..16+4j+3 (high nibbles) of sub-block L, so a super-block
// is a group of 8 Q4_0x8-like blocks: step m (0..7) multiplies the levels of values
// 4m..4m+3 of every sub-block (4 loads, 4 ands, 4 shift+ands) and the 8 maddubs products add
// up in int16 (8 x 2 x 15 x 128 < 2^15) to the same P as Q4KKernel. The scales come from 12
// bytes without the GGUF bit shuffle. Prepared per token and super-block (kPrep = 72): the
// 256 activation bytes dword-transposed (vector m, lane L = values 4m..4m+3 of sub-block L),
// then C_0..C_7. GEMM: tiles of 4 rows x the chunk's tokens (see kGemmTokens).
struct Q4Kx8Kernel {
  static constexpr int64_t kBlockValues = kQK_K;
  static constexpr size_t kWBytes = sizeof(BlockQ4_K);
  static constexpr size_t kABytes = sizeof(BlockQ8_K);
  static constexpr int kPrep = 72;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  static constexpr int64_t kSegBlocks = segment_blocks<Q4KKernel>();  // the same sums
  // GEMM tiles of 3 rows x all the tokens of a chunk (up to 64; the driver's chunks hold
  // 56 tokens at k = 2048, 18 at k = 5632): the rows' scales unpacked once per tile, then
  // groups of up to kGroup tokens in whole 4-token blocks where possible (56 = 16 + 16 +
  // 12 + 12, 18 = 12 + 6), super-blocks outer; within a group, register blocks of 3 rows x
  // 3-4 tokens (group_block, Q4_0x8Kernel's scheme): each weight vector is unpacked once for
  // the block's tokens and each activation vector loaded once for its 3 rows. Measured
  // against the former row-by-row groups (each row's levels unpacked once per super-block
  // for up to 16 tokens, every activation loaded once per row), bit-identical, in one
  // process (dev/gemm ab_objects, AB_KERNEL=q4_Kx8, both orders): 3 tokens +9-23%, 16 +1-4%,
  // 56 +8%, 64 -1 to +16%, 18 at k = 5632 0-9%. (Earlier 3 x 4 blocks that spilled the
  // weights ran at 62-67 GMAC/s against 68-69; groups of 12 or 32 tokens were slower.)
  static constexpr int kGemmRows = 3;
  static constexpr int kGemmTokens = 64;
  static constexpr int kGroup = 16;
  static constexpr int64_t kGemmMinTokens = 3;

  static void prepare(const uint8_t* act, int64_t nb, float* prep, int64_t) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* qs = act + b * kABytes + 4;
      __m256i u[8];  // lane L of step m: values 4m..4m+3 of sub-block L
      transpose_8x8_dwords(qs, 32, u);
      auto* out = reinterpret_cast<__m256i*>(prep + b * kPrep);
      for (int m = 0; m < 8; ++m) _mm256_storeu_si256(out + m, u[m]);
      prepare_mins(act + b * kABytes, prep + b * kPrep + 64);
    }
  }

  static Scales unpack_scales(const uint8_t* x) {
    const __m256i b =
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + kQ4_KScalesAt)));
    const __m256i hi = _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(load_u32(x + 140))),
                                         _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
    const __m256i m = _mm256_or_si256(
        _mm256_srli_epi32(b, 6), _mm256_slli_epi32(_mm256_and_si256(hi, _mm256_set1_epi32(15)), 2));
    return {dup16(_mm256_and_si256(b, _mm256_set1_epi32(63))), f16_to_f32(load_u16(x + 128)),
            scaled_mins(m, x + 128)};
  }

  static void levels(const uint8_t* x, __m256i* v) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int j = 0; j < 4; ++j) {
      const __m256i w = loadu256(x + 32 * j);
      v[j] = _mm256_and_si256(w, m4);
      v[j + 4] = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
    }
  }

  // All super-blocks of one row against T tokens (decode shapes), accumulators in registers.
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
        const float* pt = a.prep + b * kPrep + t * a.prep_stride;
        const auto* y = reinterpret_cast<const uint8_t*>(pt);
        __m256i p = _mm256_maddubs_epi16(v[0], loadu256(y));
        for (int m = 1; m < 8; ++m) {
          p = _mm256_add_epi16(p, _mm256_maddubs_epi16(v[m], loadu256(y + 32 * m)));
          if constexpr (T > 1) __asm__("" : "+x"(p));
        }
        const float dy = s.d * block_yd(a.act + t * a.act_row_bytes + b * kABytes);
        acc[t] = finish(acc[t], _mm256_madd_epi16(p, s.sc), dy, s.mins, pt + 64);
      }
    }
    for (int t = 0; t < T; ++t) acc_io[t] = acc[t];
  }

  // The scales of one row's super-block as the GEMM reads them (from memory), unpacked once
  // per tile for all its tokens.
  struct RowScales {
    __m256i sc;
    __m256 mins;
  };

  // One register block of R rows x TB tokens: the exact int16 sums P (lane L: sub-block L,
  // see Q4KKernel) in registers (tiling.h's nibble_block_sums, the Q4_0x8 GEMM block's
  // scheme), then each (row, token) output's float steps (finish, the same in every kernel of
  // this type) on its accumulator acc[i * kGroup + t].
  template <int R, int TB>
  [[gnu::always_inline]] static inline void group_block(const uint8_t* const* x, const float* prep,
                                                        int64_t prep_stride, const RowScales* rs,
                                                        const float* d, const float* yd,
                                                        __m256* acc) {
    __m256i p[R][TB];
    nibble_block_sums<R, TB, false>(x, reinterpret_cast<const uint8_t*>(prep),
                                    prep_stride * sizeof(float), p);
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < TB; ++t) {
        __m256& out = acc[i * kGroup + t];
        out = finish(out, _mm256_madd_epi16(p[i][t], rs[i].sc), d[i] * yd[t], rs[i].mins,
                     prep + t * prep_stride + 64);
      }
    }
  }

  // All super-blocks of R rows (scales rs[b * R + i], d[b * R + i]) against a group of
  // nt <= kGroup tokens in register blocks of R rows x 3-4 tokens (group_block); the
  // accumulators acc[i * kGroup + t] in memory.
  template <int R>
  [[gnu::noinline]] static void gemm_group(const TileArgs& a, int nt, const RowScales* rs,
                                           const float* d, __m256* acc) {
    alignas(32) float yd[kGroup];
    for (int64_t b = 0; b < a.nb; ++b) {
      gather_yds(a, nt, b, yd);
      const uint8_t* x[R];
      for (int i = 0; i < R; ++i) {
        x[i] = a.w + i * a.row_stride + b * kWBytes;
        for (int l = 0; l < 3; ++l) prefetch(x[i] + kPrefetchBytes + 64 * l);
      }
      const float* prep = a.prep + b * kPrep;
      const RowScales* rsb = rs + b * R;
      const float* db = d + b * R;
      for (int t0 = 0, tb = 0; t0 < nt; t0 += tb) {
        tb = block_tokens_3_4(nt, t0);
        const float* pt = prep + t0 * a.prep_stride;
        __m256* at = acc + t0;
        switch (tb) {
          case 4:
            group_block<R, 4>(x, pt, a.prep_stride, rsb, db, yd + t0, at);
            break;
          case 3:
            group_block<R, 3>(x, pt, a.prep_stride, rsb, db, yd + t0, at);
            break;
          case 2:
            group_block<R, 2>(x, pt, a.prep_stride, rsb, db, yd + t0, at);
            break;
          default:
            group_block<R, 1>(x, pt, a.prep_stride, rsb, db, yd + t0, at);
        }
      }
    }
  }

  // yd of super-block b for tokens 0..nt-1 of a group (the rest of the kGroup zero).
  static void gather_yds(const TileArgs& a, int nt, int64_t b, float* yd) {
    for (int t = 0; t < kGroup; ++t) {
      yd[t] = t < nt ? block_yd(a.act + t * a.act_row_bytes + b * kABytes) : 0.0f;
    }
  }

  // Decode shapes (1-2 tokens): a row at a time, accumulators in registers. (tiling.h calls
  // gemm_tile directly for GEMM shapes; the GEMM tiles it instantiates here forward to it.)
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

  // A GEMM tile of R rows x nt <= kGemmTokens tokens written to y (output (i, t) at
  // y[t * y_stride + i * row_step]), stored when `first` (the reduction's first segment),
  // else added: the rows' scales unpacked once, then the tokens in groups of at most kGroup
  // (a group's prepared data, 16 x 288 bytes per super-block, stays in L1 for its rows).
  template <int R>
  static void gemm_tile(const TileArgs& a, int nt, float* y, int64_t y_stride, int64_t row_step,
                        bool first) {
    constexpr int64_t kMaxBlocks = segment_blocks<Q4KKernel>();
    RowScales rs[kMaxBlocks * R];
    float d[kMaxBlocks * R];
    for (int64_t b = 0; b < a.nb; ++b) {
      for (int i = 0; i < R; ++i) {
        const Scales s = unpack_scales(a.w + i * a.row_stride + b * kWBytes);
        rs[b * R + i] = {s.sc, s.mins};
        d[b * R + i] = s.d;
      }
    }
    // Groups of at most kGroup tokens, as even as possible in whole 4-token blocks
    // (18 = 12 + 6, 56 = 16 + 16 + 12 + 12, not 16 + 2 or 14 x 4).
    const int groups = (nt + kGroup - 1) / kGroup;
    for (int j = 0, t0 = 0, n = 0; j < groups; ++j, t0 += n) {
      n = static_cast<int>(min64(nt - t0, ((nt - t0) / (groups - j) + 3) / 4 * 4));
      QUANTA_ASSERT(n >= 1 && n <= kGroup);
      TileArgs g = a;
      g.act += t0 * a.act_row_bytes;
      g.prep += t0 * a.prep_stride;
      __m256 acc[R * kGroup];
      __m256 zero = _mm256_setzero_ps();
      for (int z = 0; z < R * kGroup; ++z) {
        __asm__("" : "+x"(zero));  // vector stores, not a `rep stos` (slow to start)
        acc[z] = zero;
      }
      gemm_group<R>(g, n, rs, d, acc);
      for (int i = 0; i < R; ++i) {
        for (int t = 0; t < n; ++t) {
          float& out = y[(t0 + t) * y_stride + i * row_step];
          const float v = hsum(acc[i * kGroup + t]);
          out = first ? v : out + v;
        }
      }
    }
  }
};

}  // namespace

float vec_dot_q4_K_q8_K(int64_t n, const void* x, const void* y) {
  return vec_dot<Q4KKernel>(n, x, y);
}

QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q4_K, Q4KKernel)
QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q4_Kx8, Q4Kx8Kernel)

void matmul_rows_packed_q4_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::Q4_K);
  matmul_rows_q4_Kx8(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                     row_end);
}

}  // namespace quanta::kernels::avx2
