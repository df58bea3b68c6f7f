// The loop structure of the AVX-512 panel kernels (F16 / BF16 weights in kernels/repack.h's
// kF16x16 / kBF16x16, one panel of 16 rows = one zmm): token chunks, panel blocks, register
// tiles of up to 2 panels x kGroupTokens tokens. A kernel K supplies the tile and the per-chunk
// preparation; whatever the tile shape, each output's arithmetic is K's one fixed chain.
// Include only from the AVX-512 ISA folders.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_simde/intrinsics.h"  // the _mm512 names (SIMDe's in the emulated build)

namespace quanta::kernels::QUANTA_ISA_NS {

inline constexpr int64_t kPanel = 16;   // rows per panel (kernels::kPanelRows)
inline constexpr int kGroupTokens = 8;  // most tokens per tile: 2 x 8 = 16 zmm accumulators

// Panels per tile for a group of T tokens: enough independent chains at one token.
constexpr int max_panels(int T) {
  return T == 1 ? 4 : 2;
}

// What a tile sees of its group of tokens: the prepared activations ([k][T] floats, for the
// kernels that prepare them) and the activation rows themselves (token 0's row, stride).
struct TokenGroup {
  const float* prep;
  const uint8_t* act;
  size_t act_row_bytes;
};

// Panels pw, pw + panel_bytes, ... (np of them) times T tokens over k values:
// out[n * T + t] = rows 0..15 of panel n for token t, lane i = row i.
using PanelTileFn = void (*)(const uint8_t* pw, size_t panel_bytes, const TokenGroup& g, int64_t k,
                             __m512* out);

// Tokens of the tile that starts a group of n: 8, 4, 2 or 1 (a group of 7 runs tiles of 4, 2
// and 1 tokens; 10 tile shapes per kernel instead of 20 keep the emulated build's compile
// time down, and a remainder group only re-reads its panels from L2).
constexpr int tile_tokens(int64_t n) {
  return n >= 8 ? 8 : n >= 4 ? 4 : n >= 2 ? 2 : 1;
}

// K::tile<NP, T> for np panels (np <= max_panels(T)) and T = tile_tokens(T) tokens.
template <class K>
PanelTileFn panel_tile(int T, int np) {
  QUANTA_ASSERT(T == tile_tokens(T) && np >= 1 && np <= max_panels(T));
  const bool two = np == 2;
  switch (T) {
    case 1:
      if (np == 4) return K::template tile<4, 1>;
      if (np == 3) return K::template tile<3, 1>;
      return two ? K::template tile<2, 1> : K::template tile<1, 1>;
    case 2:
      return two ? K::template tile<2, 2> : K::template tile<1, 2>;
    case 4:
      return two ? K::template tile<2, 4> : K::template tile<1, 4>;
    default:
      return two ? K::template tile<2, 8> : K::template tile<1, 8>;
  }
}

// Stores a tile's outputs for rows [row_begin, row_end) only (a range may cut a panel).
inline void store_panel_tile(const __m512* out, int np, int T, int64_t row0, int64_t tok0, float* y,
                             int64_t y_stride, int64_t row_begin, int64_t row_end) {
  for (int n = 0; n < np; ++n) {
    const int64_t r = row0 + kPanel * n;
    if (r + kPanel <= row_begin || r >= row_end) continue;
    const bool whole = r >= row_begin && r + kPanel <= row_end;
    for (int t = 0; t < T; ++t) {
      float* dst = y + (tok0 + t) * y_stride + r;
      if (whole) {
        _mm512_storeu_ps(dst, out[n * T + t]);
        continue;
      }
      alignas(64) float lanes[kPanel];
      _mm512_store_ps(lanes, out[n * T + t]);
      for (int i = 0; i < kPanel; ++i) {
        if (r + i >= row_begin && r + i < row_end) dst[i] = lanes[i];
      }
    }
  }
}

// The row kernel over a panel layout (KernelTable::matmul_rows contract, rows of 2k bytes):
// token chunks of K::chunk_tokens(k) (rounded down to whole groups of kGroupTokens), cut into
// groups of tile_tokens(remaining) tokens, group g prepared by K::prepare into prep + g * k
// (K::kPrepFloats > 1: K prepares its activations); with several groups the tiles hold 2
// panels, which run all groups while they sit in L2; with one group (decode) max_panels(T)
// panels share each step.
template <class K>
void panel_rows(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                int64_t row_begin, int64_t row_end) {
  if (row_end <= row_begin || n_tokens <= 0) return;
  QUANTA_ASSERT(k > 0 && k <= K::kMaxK);
  const size_t panel_bytes = static_cast<size_t>(kPanel) * row_bytes;
  const int64_t p_begin = row_begin / kPanel, p_end = (row_end + kPanel - 1) / kPanel;
  int64_t tc = K::chunk_tokens(k);
  QUANTA_ASSERT(tc >= 1);
  if (tc >= kGroupTokens) tc -= tc % kGroupTokens;
  alignas(64) float prep[K::kPrepFloats];
  __m512 out[2 * kGroupTokens];
  for (int64_t t0 = 0; t0 < n_tokens; t0 += tc) {
    const int64_t ntc = n_tokens - t0 < tc ? n_tokens - t0 : tc;
    for (int64_t g = 0; K::kPrepFloats > 1 && g < ntc; g += tile_tokens(ntc - g)) {
      const int T = tile_tokens(ntc - g);
      K::prepare(act + (t0 + g) * act_row_bytes, act_row_bytes, T, k, prep + g * k);
    }
    const int block = max_panels(tile_tokens(ntc));
    for (int64_t p = p_begin; p < p_end; p += block) {
      const int np = static_cast<int>(p_end - p < block ? p_end - p : block);
      const uint8_t* pw = w + static_cast<size_t>(p) * panel_bytes;
      for (int64_t g = 0; g < ntc; g += tile_tokens(ntc - g)) {
        const int T = tile_tokens(ntc - g);
        const float* group_prep = K::kPrepFloats > 1 ? prep + g * k : nullptr;
        const TokenGroup group{group_prep, act + (t0 + g) * act_row_bytes, act_row_bytes};
        panel_tile<K>(T, np)(pw, panel_bytes, group, k, out);
        store_panel_tile(out, np, T, p * kPanel, t0 + g, y, y_stride, row_begin, row_end);
      }
    }
  }
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
