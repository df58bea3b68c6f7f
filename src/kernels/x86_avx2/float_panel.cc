// AVX2 products of F16 / BF16 weights stored in panels of 16 rows (kernels/repack.h: kF16x16,
// kBF16x16) in outer-product form: lane i of a vector is row 16p + 8h + i, and step j
// multiplies value j of the panel's 16 rows by activation j of a token, broadcast. Each output
// (row, token) is one FMA chain acc = fma(w[j], x[j], acc) over j = 0..k-1 from +0, whatever
// the tile, the token count and the row range: decode and GEMM give the same bits.
#include "core/error.h"
#include "kernels/x86_avx2/avx2.h"
#include "kernels/x86_avx2/simd.h"

namespace quanta::kernels::avx2 {
namespace {

constexpr int64_t kPanel = 16;  // rows per panel (kernels::kPanelRows; repack.h is not
                                // included: its std:: headers must not be compiled with AVX2)
constexpr int64_t kPrepFloats = 128 * 1024;    // prepared activations per token chunk (512 KiB)
constexpr size_t kPrefetchBytes = 1024;        // weight prefetch distance within a panel

// F16 panel: value j of rows 0..7 at 32 j, rows 8..15 at 32 j + 16.
struct F16Panel {
  static constexpr int kGroupTokens = 6;  // 12 accumulators + 2 weights + 1 broadcast
  static void load(const uint8_t* p, __m256& lo, __m256& hi) {
    lo = _mm256_cvtph_ps(loadu128(p));
    hi = _mm256_cvtph_ps(loadu128(p + 16));
  }
  static __m256 act8(const uint8_t* a) { return _mm256_cvtph_ps(loadu128(a)); }
  static float act1(const uint8_t* a) { return f16_to_f32(load_u16(a)); }
};

// BF16 panel: 32 bytes per value j whose 16-bit words, unpacked under zeros per 128-bit lane,
// give rows 0..7 (low words of each lane) and 8..15 (high words) as exact F32.
struct BF16Panel {
  static constexpr int kGroupTokens = 5;  // 10 accumulators + 2 weights + 1 broadcast + zero
  static void load(const uint8_t* p, __m256& lo, __m256& hi) {
    const __m256i v = loadu256(p);
    const __m256i z = _mm256_setzero_si256();
    lo = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, v));
    hi = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, v));
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

// out[j * T + t] = activation j of token t (t < T, tokens act_row_bytes apart) as F32.
template <class P>
void prepare(const uint8_t* act, size_t act_row_bytes, int T, int64_t k, float* out) {
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

// One step j of NP panels x T tokens: two weight vectors per panel, one broadcast per token.
template <class P, int NP, int T>
inline void step(const uint8_t* pw, size_t panel_bytes, const float* xj, __m256 (&acc)[NP][2][T]) {
#pragma GCC unroll 8
  for (int n = 0; n < NP; ++n) {
    __m256 lo, hi;
    P::load(pw + n * panel_bytes, lo, hi);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m256 b = _mm256_broadcast_ss(xj + t);
      acc[n][0][t] = _mm256_fmadd_ps(lo, b, acc[n][0][t]);
      acc[n][1][t] = _mm256_fmadd_ps(hi, b, acc[n][1][t]);
    }
  }
}

// Panels pw, pw + panel_bytes, ... (NP of them, at value 0) times T tokens (x[j * T + t])
// over k values: out[(2 n + h) * T + t] = rows 8h..8h+7 of panel n for token t.
template <class P, int NP, int T>
[[gnu::noinline]] void tile(const uint8_t* pw, size_t panel_bytes, const float* x, int64_t k,
                            __m256* out) {
  __m256 acc[NP][2][T];
#pragma GCC unroll 8
  for (int n = 0; n < NP; ++n) {
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[n][0][t] = acc[n][1][t] = _mm256_setzero_ps();
  }
  int64_t j = 0;
  for (; j + 2 <= k; j += 2) {  // one 64-byte line of each panel
#pragma GCC unroll 8
    for (int n = 0; n < NP; ++n) prefetch(pw + n * panel_bytes + 32 * j + kPrefetchBytes);
    step<P, NP, T>(pw + 32 * j, panel_bytes, x + j * T, acc);
    step<P, NP, T>(pw + 32 * (j + 1), panel_bytes, x + (j + 1) * T, acc);
  }
  if (j < k) step<P, NP, T>(pw + 32 * j, panel_bytes, x + j * T, acc);
#pragma GCC unroll 8
  for (int n = 0; n < NP; ++n) {
#pragma GCC unroll 8
    for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) out[(2 * n + h) * T + t] = acc[n][h][t];
    }
  }
}

using TileFn = void (*)(const uint8_t*, size_t, const float*, int64_t, __m256*);

// Panels per tile for T tokens: enough independent FMA chains (>= 8) at one and two tokens.
constexpr int max_panels(int T) {
  return T == 1 ? 4 : T == 2 ? 2 : 1;
}

template <class P, int T>
TileFn tile_for_tokens(int np) {
  if constexpr (T == 1) {
    switch (np) {
      case 4:
        return tile<P, 4, 1>;
      case 3:
        return tile<P, 3, 1>;
      case 2:
        return tile<P, 2, 1>;
      default:
        return tile<P, 1, 1>;
    }
  } else if constexpr (T == 2) {
    return np == 2 ? tile<P, 2, 2> : tile<P, 1, 2>;
  } else {
    return tile<P, 1, T>;
  }
}

template <class P>
TileFn tile_for(int T, int np) {
  switch (T) {
    case 1:
      return tile_for_tokens<P, 1>(np);
    case 2:
      return tile_for_tokens<P, 2>(np);
    case 3:
      return tile_for_tokens<P, 3>(np);
    case 4:
      return tile_for_tokens<P, 4>(np);
    case 5:
      return tile_for_tokens<P, 5>(np);
    default:
      if constexpr (P::kGroupTokens >= 6) return tile_for_tokens<P, 6>(np);
      QUANTA_ASSERT(false);  // groups hold at most P::kGroupTokens tokens
      return nullptr;
  }
}

// Stores a tile's outputs for rows [row_begin, row_end) only (a range may cut a panel).
void store_tile(const __m256* out, int np, int T, int64_t row0, int64_t tok0, float* y,
                int64_t y_stride, int64_t row_begin, int64_t row_end) {
  for (int v = 0; v < 2 * np; ++v) {
    const int64_t r = row0 + 8 * v;
    if (r + 8 <= row_begin || r >= row_end) continue;
    const bool whole = r >= row_begin && r + 8 <= row_end;
    for (int t = 0; t < T; ++t) {
      float* dst = y + (tok0 + t) * y_stride + r;
      if (whole) {
        _mm256_storeu_ps(dst, out[v * T + t]);
        continue;
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, out[v * T + t]);
      for (int i = 0; i < 8; ++i) {
        if (r + i >= row_begin && r + i < row_end) dst[i] = lanes[i];
      }
    }
  }
}

// The row kernel of a panel layout: token chunks whose prepared activations fit
// kPrepFloats, in groups of P::kGroupTokens tokens ([k][T] each); with several groups each
// panel runs all groups while it sits in L2, with one group (decode) max_panels(T) panels
// share each step.
template <class P>
void panel_rows(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                int64_t row_begin, int64_t row_end) {
  if (row_end <= row_begin || n_tokens <= 0) return;
  QUANTA_ASSERT(k > 0 && k <= kPrepFloats);
  const size_t panel_bytes = static_cast<size_t>(kPanel) * row_bytes;
  const int64_t p_begin = row_begin / kPanel, p_end = (row_end + kPanel - 1) / kPanel;
  int64_t tc = kPrepFloats / k;
  if (tc >= P::kGroupTokens) tc -= tc % P::kGroupTokens;
  alignas(32) float prep[kPrepFloats];
  __m256 out[2 * 4 * 2];
  for (int64_t t0 = 0; t0 < n_tokens; t0 += tc) {
    const int64_t ntc = n_tokens - t0 < tc ? n_tokens - t0 : tc;
    for (int64_t g = 0; g < ntc; g += P::kGroupTokens) {
      const int T = static_cast<int>(ntc - g < P::kGroupTokens ? ntc - g : P::kGroupTokens);
      prepare<P>(act + (t0 + g) * act_row_bytes, act_row_bytes, T, k, prep + g * k);
    }
    const int block = ntc > P::kGroupTokens ? 1 : max_panels(static_cast<int>(ntc));
    for (int64_t p = p_begin; p < p_end; p += block) {
      const int np = static_cast<int>(p_end - p < block ? p_end - p : block);
      const uint8_t* pw = w + static_cast<size_t>(p) * panel_bytes;
      for (int64_t g = 0; g < ntc; g += P::kGroupTokens) {
        const int T = static_cast<int>(ntc - g < P::kGroupTokens ? ntc - g : P::kGroupTokens);
        tile_for<P>(T, np)(pw, panel_bytes, prep + g * k, k, out);
        store_tile(out, np, T, p * kPanel, t0 + g, y, y_stride, row_begin, row_end);
      }
    }
  }
}

}  // namespace

void matmul_rows_packed_f16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::F16 && row_bytes == static_cast<size_t>(2 * k));
  panel_rows<F16Panel>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                       row_end);
}

void matmul_rows_packed_bf16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                                const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                                float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::BF16 && row_bytes == static_cast<size_t>(2 * k));
  panel_rows<BF16Panel>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                        row_end);
}

}  // namespace quanta::kernels::avx2
