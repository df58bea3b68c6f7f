// AVX2 dot products and row tiles of the K-quants Q5_K and Q6_K against Q8_K activations
// (Q4_K: q4_k_dot.cc; Q6_K also repacked at load, WeightLayout::kQ6_Kx8). Sub-block scales are
// applied in the integer domain (madd of the int16 maddubs sums with broadcast scales), mins
// and the Q6_K offset of 32 through the activation's bsums, so each 256-value super-block
// needs one int->float conversion per (row, token).
#include "core/error.h"
#include "kernels/x86_avx2/avx2.h"
#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_avx2/tiling.h"
#include "quant/blocks.h"

namespace quanta::kernels::avx2 {
namespace {

static_assert(offsetof(BlockQ8_K, qs) == 4 && offsetof(BlockQ4_K, qs) == 16);
static_assert(offsetof(BlockQ5_K, qh) == 16 && offsetof(BlockQ5_K, qs) == 48);
static_assert(offsetof(BlockQ6_K, qh) == 128 && offsetof(BlockQ6_K, scales) == 192);

constexpr size_t kQ8KBytes = sizeof(BlockQ8_K);

inline float load_f32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, sizeof f);
  return f;
}

// The 8 six-bit scales and mins of a Q4_K/Q5_K super-block (12 packed bytes, see
// quant/blocks.h), as int16 vectors: scales 0..7 in both 128-bit lanes, and each min twice
// (min j at int16 lanes 2j and 2j+1, matching the 16 bsums of the activation block).
struct ScaleMin {
  __m256i scales;
  __m256i mins;
};

inline ScaleMin unpack_scale_min(const uint8_t* packed) {
  const uint32_t u0 = load_u32(packed), u1 = load_u32(packed + 4), u2 = load_u32(packed + 8);
  const uint64_t sc = (u0 & 0x3f3f3f3fu) |
                      static_cast<uint64_t>((u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u)) << 32;
  const uint64_t mn = (u1 & 0x3f3f3f3fu) |
                      static_cast<uint64_t>(((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u))
                          << 32;
  const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m128i sc8 = _mm_cvtsi64_si128(static_cast<int64_t>(sc));
  const __m128i mn8 = _mm_shuffle_epi8(_mm_cvtsi64_si128(static_cast<int64_t>(mn)), dup);
  return {_mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8)), _mm256_cvtepu8_epi16(mn8)};
}

// int16 lane pattern selecting element `s` of an 8 x int16 128-bit lane in both lanes.
inline __m256i select16(int s) {
  return _mm256_set1_epi16(static_cast<int16_t>((2 * s) | ((2 * s + 1) << 8)));
}

// Q4_K (kHigh = false) and Q5_K (kHigh = true): 8 sub-blocks of 32, value = d*sc*q - dmin*m.
template <bool kHigh>
struct ScaleMinKernel {
  static constexpr int64_t kBlockValues = kQK_K;
  static constexpr size_t kWBytes = kHigh ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  static constexpr size_t kABytes = kQ8KBytes;
  static constexpr size_t kQs = kHigh ? 48 : 16;
  static constexpr int kPrep = 0;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  static constexpr int kGemmRows = 4;
  static constexpr int kGemmTokens = 4;
  static constexpr int64_t kGemmMinTokens = 4;

  static void prepare(const uint8_t*, int64_t, float*, int64_t) {}

  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
    }
    const size_t seg_bytes = static_cast<size_t>(a.nb) * kWBytes;
    for (int64_t b = 0; b < a.nb; ++b) {
      prefetch_rows<R>(a, seg_bytes, b * kWBytes, (kWBytes + 63) / 64);
      for (int i = 0; i < R; ++i) {
        const uint8_t* x = a.w + i * a.row_stride + b * kWBytes;
        const ScaleMin sm = unpack_scale_min(x + 4);
        __m256i hbits = kHigh ? loadu256(x + 16) : _mm256_setzero_si256();
        __m256i sum[T];
        for (int t = 0; t < T; ++t) sum[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {  // 64 values: sub-blocks 2j (low nibbles), 2j+1 (high)
          const __m256i qb = loadu256(x + kQs + 32 * j);
          __m256i lo = _mm256_and_si256(qb, m4);
          __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qb, 4), m4);
          if constexpr (kHigh) {  // fifth bits: bit 2j (low) and 2j+1 (high) of qh, to 0x10
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hbits, 4), b4));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hbits, 3), b4));
            hbits = _mm256_srli_epi16(hbits, 2);
          }
          const __m256i s_lo = _mm256_shuffle_epi8(sm.scales, select16(2 * j));
          const __m256i s_hi = _mm256_shuffle_epi8(sm.scales, select16(2 * j + 1));
          for (int t = 0; t < T; ++t) {
            const uint8_t* yq = a.act + t * a.act_row_bytes + b * kABytes + 4 + 64 * j;
            const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu256(yq)), s_lo);
            const __m256i p_hi =
                _mm256_madd_epi16(_mm256_maddubs_epi16(hi, loadu256(yq + 32)), s_hi);
            sum[t] = _mm256_add_epi32(sum[t], _mm256_add_epi32(p_lo, p_hi));
          }
        }
        const float d = f16_to_f32(load_u16(x));
        const float dmin = f16_to_f32(load_u16(x + 2));
        for (int t = 0; t < T; ++t) {
          const uint8_t* yb = a.act + t * a.act_row_bytes + b * kABytes;
          const float yd = load_f32(yb);
          const __m256i mins = _mm256_madd_epi16(loadu256(yb + 260), sm.mins);
          acc[i][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_set1_ps(d * yd), acc[i][t]);
          acc[i][t] =
              _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin * yd), acc[i][t]);
        }
      }
    }
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) out[i * T + t] = hsum(acc[i][t]);
    }
  }
};

// Q6_K: 16 sub-blocks of 16, value = d * scale * (q - 32), q in [0, 63], int8 scales.
// The 32-value chunks c = 2p, 2p+1 of each half (sub-blocks 2c, 2c+1 in their 128-bit
// lanes) are paired by 64-bit interleaves: A = unpacklo64(chunk 2p, chunk 2p+1) holds values
// 0-7 and B = unpackhi64(...) values 8-15 of the same four sub-blocks at the same int16
// lanes, so the two maddubs add up in int16 (2 x 2 x 63 x 127 < 2^15) before one madd with
// the four scales: 8 maddubs and 4 madds per (row, token, super-block).
// Per output and super-block: total = madd(-32 * scales, bsums) + the pairs' madds (int32
// lanes, exact), acc = fma(float(total), d * yd, acc); out = hsum(acc).
// Prepared per token and super-block (kPrep = 64 floats): the 256 activation bytes
// interleaved the same way: half h, pair p at bytes 128h + 64p (A) and + 32 (B).
// kPacked: weights in WeightLayout::kQ6_Kx8 (kernels/repack.h), the levels of A and B already
// in that order, 6 bits each: 11 operations per half instead of ~22 to build its 4 vectors;
// the same vectors, so the same sums and bits as the GGUF layout.
template <bool kPacked>
struct Q6KKernelT {
  static constexpr int64_t kBlockValues = kQK_K;
  static constexpr size_t kWBytes = sizeof(BlockQ6_K);
  static constexpr size_t kABytes = kQ8KBytes;
  static constexpr int kPrep = 64;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  // GEMM tile 4 x 8: a row's super-block is unpacked once for 8 tokens (4 x 4 before:
  // 50-51 GMAC/s at 16-64 tokens, 4 x 8 58-60; dev/gemm/README.md).
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

  // Scales of pair p of a half (`half_scales`: its 8 scales as int16 in both 128-bit lanes)
  // at the int16 lanes of A and B: [2p' x4, 2p'+2 x4 | 2p'+1 x4, 2p'+3 x4] with p' = 2p.
  static __m256i pair_scales(__m256i half_scales, int p) {
    const auto sel = [](int e) { return static_cast<int16_t>((2 * e) | ((2 * e + 1) << 8)); };
    const int16_t s0 = sel(4 * p), s1 = sel(4 * p + 1), s2 = sel(4 * p + 2), s3 = sel(4 * p + 3);
    return _mm256_shuffle_epi8(half_scales, _mm256_setr_epi16(s0, s0, s0, s0, s2, s2, s2, s2, s1,
                                                              s1, s1, s1, s3, s3, s3, s3));
  }

  // sum[t] (int32 lanes) of the super-block at `x` against T tokens (prepared data at `yb`,
  // tokens 4 * prep_stride bytes apart; bsums at `bs`, act_row_bytes apart).
  template <int T>
  [[gnu::always_inline]] static void block_sums(const uint8_t* x, const uint8_t* yb,
                                                int64_t prep_stride, const uint8_t* bs,
                                                size_t act_row_bytes, __m256i* sum) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m30 = _mm256_set1_epi8(0x30);
    // The -32 offset first: sum = madd(-32 * scales, bsums) = -32 * sum over sub-blocks of
    // scale * (sum of its 16 activations), then the pairs' madds (exact int32 lanes).
    const __m256i neg32 = _mm256_sub_epi16(
        _mm256_setzero_si256(), _mm256_slli_epi16(_mm256_cvtepi8_epi16(loadu128(x + 192)), 5));
    for (int t = 0; t < T; ++t) sum[t] = _mm256_madd_epi16(neg32, loadu256(bs + t * act_row_bytes));
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {  // 128 values each
      const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 192 + 8 * h));
      const __m256i hs = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc8));
      const uint8_t* ql = x + 64 * h;
      const uint8_t* qh = x + 128 + 32 * h;
      const uint8_t* pq = x + 96 * h;  // kPacked: the half's three vectors X, Y, Z
#pragma GCC unroll 2
      for (int p = 0; p < 2; ++p) {
        __m256i qa, qb;
        if constexpr (kPacked) {
          // A and B of pair 0 = X, Y & 63; of pair 1: Z & 63 and the top 2 bits of X, Y, Z.
          const __m256i m3f = _mm256_set1_epi8(0x3F);
          if (p == 0) {
            qa = _mm256_and_si256(loadu256(pq), m3f);
            qb = _mm256_and_si256(loadu256(pq + 32), m3f);
          } else {
            const __m256i z = loadu256(pq + 64);
            qa = _mm256_and_si256(z, m3f);
            qb = _mm256_or_si256(
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(loadu256(pq), 6), _mm256_set1_epi8(0x03)),
                    _mm256_and_si256(_mm256_srli_epi16(loadu256(pq + 32), 4),
                                     _mm256_set1_epi8(0x0C))),
                _mm256_and_si256(_mm256_srli_epi16(z, 2), m30));
          }
        } else {
          // Chunks 2p, 2p+1 of the half (nibbles p of ql bytes 0-31 and 32-63, qh bits
          // 4p, 4p+2 as bits 4-5), built here so only one pair's vectors are live.
          const __m256i hb = loadu256(qh);
          const __m256i lo0 = loadu256(ql), lo1 = loadu256(ql + 32);
          const __m256i q0 =
              _mm256_or_si256(_mm256_and_si256(p == 0 ? lo0 : _mm256_srli_epi16(lo0, 4), m4),
                              _mm256_and_si256(p == 0 ? _mm256_slli_epi16(hb, 4) : hb, m30));
          const __m256i q1 = _mm256_or_si256(
              _mm256_and_si256(p == 0 ? lo1 : _mm256_srli_epi16(lo1, 4), m4),
              _mm256_and_si256(p == 0 ? _mm256_slli_epi16(hb, 2) : _mm256_srli_epi16(hb, 2), m30));
          qa = _mm256_unpacklo_epi64(q0, q1);
          qb = _mm256_unpackhi_epi64(q0, q1);
        }
        const __m256i s = pair_scales(hs, p);
        for (int t = 0; t < T; ++t) {
          const uint8_t* y = yb + 4 * t * prep_stride + 128 * h + 64 * p;
          const __m256i m16 = _mm256_add_epi16(_mm256_maddubs_epi16(qa, loadu256(y)),
                                               _mm256_maddubs_epi16(qb, loadu256(y + 32)));
          sum[t] = _mm256_add_epi32(sum[t], _mm256_madd_epi16(m16, s));
          __asm__("" : "+x"(sum[t]));  // a running sum in a register (no reassociation)
        }
      }
    }
  }

  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
    }
    const size_t seg_bytes = static_cast<size_t>(a.nb) * kWBytes;
    for (int64_t b = 0; b < a.nb; ++b) {
      prefetch_rows<R>(a, seg_bytes, b * kWBytes, (kWBytes + 63) / 64);
      for (int i = 0; i < R; ++i) {
        const uint8_t* x = a.w + i * a.row_stride + b * kWBytes;
        // The activations' address made opaque per row: GCC would otherwise load the
        // block's 64 activation vectors once for all R rows and spill them to the stack.
        const uint8_t* yb = reinterpret_cast<const uint8_t*>(a.prep + b * kPrep);
        __asm__("" : "+r"(yb));
        __m256i sum[T];
        block_sums<T>(x, yb, a.prep_stride, a.act + b * kABytes + 260, a.act_row_bytes, sum);
        const float d = f16_to_f32(load_u16(x + 208));
        for (int t = 0; t < T; ++t) {
          const uint8_t* yq = a.act + t * a.act_row_bytes + b * kABytes;
          acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_set1_ps(d * load_f32(yq)),
                                      acc[i][t]);
        }
      }
    }
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) out[i * T + t] = hsum(acc[i][t]);
    }
  }
};

using Q6KKernel = Q6KKernelT<false>;
using Q6Kx8Kernel = Q6KKernelT<true>;

using Q5KKernel = ScaleMinKernel<true>;

}  // namespace

float vec_dot_q5_K_q8_K(int64_t n, const void* x, const void* y) {
  return vec_dot<Q5KKernel>(n, x, y);
}
float vec_dot_q6_K_q8_K(int64_t n, const void* x, const void* y) {
  return vec_dot<Q6KKernel>(n, x, y);
}

QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q5_K, Q5KKernel)
QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q6_K, Q6KKernel)
QUANTA_AVX2_DEFINE_ROWS(matmul_rows_q6_Kx8, Q6Kx8Kernel)

void matmul_rows_packed_q6_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::Q6_K);
  matmul_rows_q6_Kx8(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                     row_end);
}

}  // namespace quanta::kernels::avx2
