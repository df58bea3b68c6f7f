// AVX-512 products of F32 weights in the GGUF layout, bit-identical with x86_avx2/float_dot.cc:
// each output is the AVX2 kernel's 8-lane FMA chain over the row's full 16-value lines (values
// 16m..16m+7, then 16m+8..16m+15, into the same 8 lanes), summed by simd.h's hsum, plus the
// last k % 16 products one at a time. Two rows share a zmm (lanes 0-7 row i, 8-15 row i + 1)
// against a token's 8 values broadcast to both halves: twice the AVX2 FMA width, the same bits.
// (The zero-masked forms with all-ones masks: GCC 12 warns on the undefined sources of the
// plain _mm512_broadcast_f32x8 / _mm512_extractf64x4_pd / _mm512_castps512_ps256, and folds the
// masks away.)
#include "core/error.h"
#include "kernels/x86_avx2/avx2.h"
#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_avx512/avx512.h"
#include "kernels/x86_simde/intrinsics.h"

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

constexpr int kPairs = 2;                      // row pairs per tile (4 rows)
constexpr int kTileTokens = 4;                 // most tokens per tile: 2 x 4 accumulators
constexpr size_t kActChunkBytes = 256 * 1024;  // activation rows reused across row tiles
constexpr int64_t kPrefetchFloats = 256;       // 1 KiB ahead in each weight row

// Tokens of the tile that starts a group of n tokens (3 runs tiles of 2 and 1).
constexpr int tile_tokens(int64_t n) {
  return n >= 4 ? 4 : n >= 2 ? 2 : 1;
}

// Rows wr[0..2P) (wr[2p], wr[2p + 1] share zmm p) times T tokens (x + t * xs) over k values:
// out[i * T + t] = dot(row i, token t), computed as the AVX2 F32 kernel computes it.
template <int P, int T>
[[gnu::noinline]] void tile(const float* const* wr, const float* x, int64_t xs, int64_t k,
                            float* out) {
  __m512 acc[P][T];
  for (int p = 0; p < P; ++p) {
    for (int t = 0; t < T; ++t) acc[p][t] = _mm512_setzero_ps();
  }
  const int64_t full = k - k % 16;
  for (int64_t v = 0; v < full; v += 16) {
    for (int i = 0; i < 2 * P; ++i) {
      prefetch(reinterpret_cast<const uint8_t*>(wr[i] + v + kPrefetchFloats));
    }
#pragma GCC unroll 2
    for (int c = 0; c < 2; ++c) {
      __m512 wv[P];
      for (int p = 0; p < P; ++p) {
        wv[p] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(wr[2 * p] + v + 8 * c)),
                                   _mm256_loadu_ps(wr[2 * p + 1] + v + 8 * c), 1);
      }
      for (int t = 0; t < T; ++t) {
        const __m512 xv =
            _mm512_maskz_broadcast_f32x8(0xFFFF, _mm256_loadu_ps(x + t * xs + v + 8 * c));
        for (int p = 0; p < P; ++p) acc[p][t] = _mm512_fmadd_ps(wv[p], xv, acc[p][t]);
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    for (int t = 0; t < T; ++t) {
      const __m512d a = _mm512_castps_pd(acc[p][t]);
      const __m256 half[2] = {_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, a, 0)),
                              _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, a, 1))};
      for (int h = 0; h < 2; ++h) {
        const float* w = wr[2 * p + h];
        float sum = hsum(half[h]);
        for (int64_t e = full; e < k; ++e) sum += w[e] * x[t * xs + e];  // the last, partial line
        out[(2 * p + h) * T + t] = sum;
      }
    }
  }
}

using TileFn = void (*)(const float* const*, const float*, int64_t, int64_t, float*);

TileFn tile_for(int pairs, int T) {
  const bool two = pairs == 2;
  switch (T) {
    case 1:
      return two ? tile<2, 1> : tile<1, 1>;
    case 2:
      return two ? tile<2, 2> : tile<1, 2>;
    default:
      return two ? tile<2, 4> : tile<1, 4>;
  }
}

// Token chunks whose activations stay in L2; in each, tiles of 4 rows (the last 1..3 rows: a
// tile whose missing rows repeat the last one, their results dropped) run every token group.
void f32_rows(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
              size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin,
              int64_t row_end) {
  if (n_tokens <= 0 || row_end <= row_begin) return;
  QUANTA_ASSERT(row_bytes % sizeof(float) == 0 && act_row_bytes % sizeof(float) == 0);
  const int64_t xs = static_cast<int64_t>(act_row_bytes / sizeof(float));
  int64_t tc = static_cast<int64_t>(kActChunkBytes / act_row_bytes);
  tc = tc < kTileTokens ? kTileTokens : tc - tc % kTileTokens;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += tc) {
    const int64_t ntc = n_tokens - t0 < tc ? n_tokens - t0 : tc;
    for (int64_t r0 = row_begin; r0 < row_end; r0 += 2 * kPairs) {
      const int nr = static_cast<int>(row_end - r0 < 2 * kPairs ? row_end - r0 : 2 * kPairs);
      const int pairs = (nr + 1) / 2;
      const float* wr[2 * kPairs];
      for (int i = 0; i < 2 * pairs; ++i) {
        wr[i] = reinterpret_cast<const float*>(w + (r0 + (i < nr ? i : nr - 1)) * row_bytes);
      }
      for (int64_t g = 0; g < ntc; g += tile_tokens(ntc - g)) {
        const int T = tile_tokens(ntc - g);
        const float* x = reinterpret_cast<const float*>(act + (t0 + g) * act_row_bytes);
        float out[2 * kPairs * kTileTokens];
        tile_for(pairs, T)(wr, x, xs, k, out);
        for (int i = 0; i < nr; ++i) {
          for (int t = 0; t < T; ++t) y[(t0 + g + t) * y_stride + r0 + i] = out[i * T + t];
        }
      }
    }
  }
}

}  // namespace

void matmul_rows(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                 size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end) {
  if (type == GgmlType::F32) {
    return f32_rows(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin, row_end);
  }
  avx2::matmul_rows(type, w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                    row_end);
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
