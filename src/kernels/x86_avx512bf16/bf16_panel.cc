// AVX512-BF16 products of BF16 weights in the panel layout kBF16x16 (kernels/repack.h) with
// vdpbf16ps: lane i of a zmm holds values j, j+1 of panel row i (one word permutation of the
// panel's 64 bytes at 32 j), times the BF16 pair (x[j], x[j+1]) of a token, broadcast as one
// dword straight from its activation row. Each output (row, token) is one chain over the
// pairs j = 0, 2, 4, ... from +0 (and the lone last value of an odd k, paired with zeros):
// acc = dpbf16(acc, pair), whatever the tile, the token count and the row range, so a token
// gets the same bits in every batch. Not the AVX2 bits: each vdpbf16ps adds its two exact
// products with two roundings and flushes denormals (tests bound it by the chain length).
#include "kernels/x86_avx512/panel.h"
#include "kernels/x86_avx512bf16/avx512bf16.h"
#include "kernels/x86_simde/intrinsics.h"

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

constexpr size_t kActChunkBytes = 512 * 1024;  // activation rows reused across panel blocks

// Lane i = (word s(i), word 16 + s(i)) of values j, j+1 (repack.h's s: row i's word).
alignas(64) constexpr uint16_t kPairIdx[32] = {0,  16, 1,  17, 2,  18, 3,  19, 8,  24, 9,
                                               25, 10, 26, 11, 27, 4,  20, 5,  21, 6,  22,
                                               7,  23, 12, 28, 13, 29, 14, 30, 15, 31};

inline __m512bh as_bh(__m512i v) {
  return (__m512bh)v;
}

// The vdpbf16ps kernel (x86_avx512/panel.h's K): no prepared activations.
struct DotPairPanel {
  static constexpr int64_t kMaxK = 128 * 1024;  // kernels::kPanelMaxK
  static constexpr int64_t kPrepFloats = 1;
  static int64_t chunk_tokens(int64_t k) {
    const int64_t n = static_cast<int64_t>(kActChunkBytes) / (2 * k);
    return n > 1 ? n : 1;
  }
  static void prepare(const uint8_t*, size_t, int, int64_t, float*) {}

  template <int NP, int T>
  [[gnu::noinline]] static void tile(const uint8_t* pw, size_t panel_bytes, const TokenGroup& g,
                                     int64_t k, __m512* out) {
    const __m512i idx = _mm512_load_si512(kPairIdx);
    const uint8_t* a = g.act;
    const size_t ab = g.act_row_bytes;
    __m512 acc[NP][T];
#pragma GCC unroll 4
    for (int n = 0; n < NP; ++n) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[n][t] = _mm512_setzero_ps();
    }
    int64_t j = 0;
    for (; j + 2 <= k; j += 2) {  // one 64-byte line of each panel
#pragma GCC unroll 4
      for (int n = 0; n < NP; ++n) {
        const uint8_t* p = pw + n * panel_bytes + 32 * j;
        prefetch(p + 1024);
        const __m512i w = _mm512_permutexvar_epi16(idx, _mm512_loadu_si512(p));
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m512i x = _mm512_set1_epi32(static_cast<int>(load_u32(a + t * ab + 2 * j)));
          acc[n][t] = _mm512_dpbf16_ps(acc[n][t], as_bh(w), as_bh(x));
        }
      }
    }
    if (j < k) {  // value k - 1 alone: the words of value k are masked to zero
#pragma GCC unroll 4
      for (int n = 0; n < NP; ++n) {
        const __m512i v = _mm512_castsi256_si512(loadu256(pw + n * panel_bytes + 32 * j));
        const __m512i w = _mm512_maskz_permutexvar_epi16(0x55555555u, idx, v);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m512i x = _mm512_set1_epi32(static_cast<int>(load_u16(a + t * ab + 2 * j)));
          acc[n][t] = _mm512_dpbf16_ps(acc[n][t], as_bh(w), as_bh(x));
        }
      }
    }
#pragma GCC unroll 4
    for (int n = 0; n < NP; ++n) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) out[n * T + t] = acc[n][t];
    }
  }
};

}  // namespace

void matmul_rows_packed_bf16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                                const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                                float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::BF16 && row_bytes == static_cast<size_t>(2 * k));
  panel_rows<DotPairPanel>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                           row_end);
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
