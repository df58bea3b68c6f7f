// AVX-512 products of F16 / BF16 weights in the panel layouts (kernels/repack.h: kF16x16,
// kBF16x16): one zmm holds value j of a panel's 16 rows (lane i = row i), times activation j
// of a token, broadcast. Each output (row, token) is the FMA chain acc = fma(w[j], x[j], acc)
// over j = 0..k-1 from +0, as in x86_avx2/float_panel.cc: the same bits as the AVX2 path,
// whatever the tile, the token count and the row range.
#include "kernels/x86_avx512/avx512.h"
#include "kernels/x86_avx512/panel.h"
#include "kernels/x86_simde/intrinsics.h"

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

constexpr size_t kPrefetchBytes = 1024;  // weight prefetch distance within a panel

// F16 panel: value j of rows 0..15 at 32 j, in row order.
struct F16Panel {
  static __m512 load(const uint8_t* p) {
#if QUANTA_SIMDE_EMULATION  // SIMDe 0.7.4 has no _mm512_cvtph_ps: two F16C halves (exact)
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_cvtph_ps(loadu128(p))),
                              _mm256_cvtph_ps(loadu128(p + 16)), 1);
#else  // (the zero-masked form: GCC 12 warns on the undefined source of _mm512_cvtph_ps)
    return _mm512_maskz_cvtph_ps(0xFFFF, loadu256(p));
#endif
  }
  static __m256 act8(const uint8_t* a) {
    return _mm256_cvtph_ps(loadu128(a));
  }
  static float act1(const uint8_t* a) {
    return f16_to_f32(load_u16(a));
  }
};

// BF16 panel: value j of row i at word s(i) of 32 j (repack.h); one word permutation puts
// word s(i) in the high half of lane i and zeros in the low half: row i as exact F32.
struct BF16Panel {
  static __m512 load(const uint8_t* p) {
    alignas(64) static constexpr uint16_t kIdx[32] = {0, 0, 0,  1,  0,  2,  0, 3,  0, 8, 0,
                                                      9, 0, 10, 0,  11, 0,  4, 0,  5, 0, 6,
                                                      0, 7, 0,  12, 0,  13, 0, 14, 0, 15};
    const __m512i idx = _mm512_load_si512(kIdx);
    const __m512i v = _mm512_castsi256_si512(loadu256(p));
    return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, idx, v));
  }
  static __m256 act8(const uint8_t* a) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(a)), 16));
  }
  static float act1(const uint8_t* a) {
    const uint32_t u = static_cast<uint32_t>(load_u16(a)) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
};

// The FMA-chain kernel of panel type P (panel.h's K): activations prepared as F32.
template <class P>
struct FmaPanel {
  static constexpr int64_t kMaxK = 128 * 1024;        // kernels::kPanelMaxK
  static constexpr int64_t kPrepFloats = 128 * 1024;  // per token chunk (512 KiB)
  static int64_t chunk_tokens(int64_t k) { return kPrepFloats / k; }

  // out[j * T + t] = activation j of token t (t < T, tokens act_row_bytes apart) as F32.
  static void prepare(const uint8_t* act, size_t act_row_bytes, int T, int64_t k, float* out) {
    for (int t = 0; t < T; ++t) {
      const uint8_t* a = act + t * act_row_bytes;
      int64_t j = 0;
      for (; j + 8 <= k; j += 8) {
        alignas(32) float v[8];
        _mm256_store_ps(v, P::act8(a + 2 * j));
        for (int i = 0; i < 8; ++i) out[(j + i) * T + t] = v[i];
      }
      for (; j < k; ++j) out[j * T + t] = P::act1(a + 2 * j);
    }
  }

  // One step j of NP panels x T tokens: one weight vector per panel, one broadcast per token.
  template <int NP, int T>
  static void step(const uint8_t* pw, size_t panel_bytes, const float* xj, __m512 (&acc)[NP][T]) {
#pragma GCC unroll 4
    for (int n = 0; n < NP; ++n) {
      const __m512 w = P::load(pw + n * panel_bytes);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[n][t] = _mm512_fmadd_ps(w, _mm512_set1_ps(xj[t]), acc[n][t]);
    }
  }

  template <int NP, int T>
  [[gnu::noinline]] static void tile(const uint8_t* pw, size_t panel_bytes, const TokenGroup& g,
                                     int64_t k, __m512* out) {
    const float* x = g.prep;
    __m512 acc[NP][T];
#pragma GCC unroll 4
    for (int n = 0; n < NP; ++n) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[n][t] = _mm512_setzero_ps();
    }
    int64_t j = 0;
    for (; j + 2 <= k; j += 2) {  // one 64-byte line of each panel
#pragma GCC unroll 4
      for (int n = 0; n < NP; ++n) prefetch(pw + n * panel_bytes + 32 * j + kPrefetchBytes);
      step<NP, T>(pw + 32 * j, panel_bytes, x + j * T, acc);
      step<NP, T>(pw + 32 * (j + 1), panel_bytes, x + (j + 1) * T, acc);
    }
    if (j < k) step<NP, T>(pw + 32 * j, panel_bytes, x + j * T, acc);
#pragma GCC unroll 4
    for (int n = 0; n < NP; ++n) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) out[n * T + t] = acc[n][t];
    }
  }
};

}  // namespace

void matmul_rows_packed_f16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::F16 && row_bytes == static_cast<size_t>(2 * k));
  panel_rows<FmaPanel<F16Panel>>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride,
                                 row_begin, row_end);
}

void matmul_rows_packed_bf16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                                const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                                float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::BF16 && row_bytes == static_cast<size_t>(2 * k));
  panel_rows<FmaPanel<BF16Panel>>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride,
                                  row_begin, row_end);
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
