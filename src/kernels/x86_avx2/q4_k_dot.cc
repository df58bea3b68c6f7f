// AVX2 dot products and row tiles of Q4_K weights against Q8_K activations, one kernel for
// decode and for products with many tokens (every tile shape computes each output the same
// way: batch invariance). The 8 sub-blocks of a super-block are transposed in registers so
// that each int32 lane holds a fixed set of values of two sub-blocks; the maddubs products
// then add up in int16 before the sub-block scales (4 x 2 x 15 x 128 < 2^15), and the mins
// go through activation sums prepared once per token.
#include "kernels/x86_avx2/avx2.h"
#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_avx2/tiling.h"
#include "quant/blocks.h"

namespace quanta::kernels::avx2 {
namespace {

static_assert(sizeof(BlockQ4_K) == 144 && offsetof(BlockQ4_K, qs) == 16);
static_assert(offsetof(BlockQ8_K, qs) == 4 && sizeof(BlockQ8_K) == 292);

// Transposed layout: chunk c (qs bytes 32c..32c+31) holds sub-block 2c (low nibbles) and
// 2c+1 (high nibbles). Vector P_k, int32 lane L = 4h + c: dword m = 4h + k of chunk c, i.e.
// values 4m..4m+3 of sub-blocks 2c (low nibbles) and 2c+1 (high nibbles).
// Per output and super-block:
//   S_L = sc[2c] * sum(low levels * qy) + sc[2c+1] * sum(high levels * qy) over lane L's values
//   acc = fma(float(S), d * yd, acc); acc = fnmadd(dmin * min, C, acc)
// with C_j = yd * (sum of the 32 activations of sub-block j) prepared once per token (lane j),
// so the mins cost one FMA per (row, token, super-block); out = hsum(acc).
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
      // C_j = yd * (bsums 2j + 2j+1), the int16 pairs summed by a madd with ones (exact).
      const __m256i b32 =
          _mm256_madd_epi16(loadu256(act + b * kABytes + 260), _mm256_set1_epi16(1));
      float yd;
      std::memcpy(&yd, act + b * kABytes, sizeof yd);
      _mm256_storeu_ps(prep + b * kPrep + 64,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(b32), _mm256_set1_ps(yd)));
    }
  }

  // Scales and mins of one super-block (12 packed bytes, see quant/blocks.h): even and odd
  // sub-block scales at the int16 pairs of the lanes (se: sc[2c], so: sc[2c+1] for c = lane
  // % 4), d broadcast, and dmin * min[j] at lane j.
  struct Scales {
    __m256i se, so;
    __m256 d, mins;
  };
  static Scales unpack_scales(const uint8_t* x) {
    const uint8_t* packed = x + 4;
    const uint32_t u0 = load_u32(packed), u1 = load_u32(packed + 4), u2 = load_u32(packed + 8);
    const uint64_t sc = (u0 & 0x3f3f3f3fu) |
                        static_cast<uint64_t>((u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u)) << 32;
    const uint64_t mn = (u1 & 0x3f3f3f3fu) |
                        static_cast<uint64_t>(((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u))
                            << 32;
    const __m128i sc8 = _mm_cvtsi64_si128(static_cast<int64_t>(sc));
    // int16 lanes (2c, 2c+1) <- byte 2c (even) or 2c+1 (odd), zero high bytes.
    const __m128i even = _mm_setr_epi8(0, -1, 0, -1, 2, -1, 2, -1, 4, -1, 4, -1, 6, -1, 6, -1);
    const __m128i odd = _mm_setr_epi8(1, -1, 1, -1, 3, -1, 3, -1, 5, -1, 5, -1, 7, -1, 7, -1);
    const __m256 mins =
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(mn))));
    return {_mm256_broadcastsi128_si256(_mm_shuffle_epi8(sc8, even)),
            _mm256_broadcastsi128_si256(_mm_shuffle_epi8(sc8, odd)),
            _mm256_set1_ps(f16_to_f32(load_u16(x))),
            _mm256_mul_ps(mins, _mm256_set1_ps(f16_to_f32(load_u16(x + 2))))};
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

  // The float steps of one (row, token, super-block) from its exact integer sums: the same
  // operations in the decode and the GEMM tiles (bit-identical outputs).
  [[gnu::always_inline]] static inline __m256 finish(__m256 acc, __m256i sum, const Scales& s,
                                                     const float* yd, const float* prep) {
    const __m256 dy = _mm256_mul_ps(s.d, _mm256_broadcast_ss(yd));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), dy, acc);
    return _mm256_fnmadd_ps(s.mins, _mm256_loadu_ps(prep + 64), acc);
  }

  // One super-block of one row against nt tokens (decode shapes; activation rows `act`,
  // prepared data), inlined into row_blocks with a compile-time count.
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
      const __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(e, s.se), _mm256_madd_epi16(o, s.so));
      acc[t] = finish(acc[t], sum, s, reinterpret_cast<const float*>(act + t * act_row_bytes), pt);
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

}  // namespace

float vec_dot_q4_K_q8_K(int64_t n, const void* x, const void* y) {
  return vec_dot<Q4KKernel>(n, x, y);
}

QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q4_K, Q4KKernel)

}  // namespace quanta::kernels::avx2
