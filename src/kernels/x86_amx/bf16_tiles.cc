// AMX products of BF16 weights in the tile layout kBF16x16Pairs (kernels/repack.h): each
// 1 KiB run of a panel is a B tile (16 rows x 32 values as dword pairs), the tokens' BF16
// activation rows are A tiles read in place (16 tokens x 32 values, one row per token), and
// one tdpbf16ps adds a step of 32 values to a C tile of 16 tokens x 16 rows. A block of up
// to 32 tokens x 2 panels holds 4 C tiles, 2 A and 2 B (the 8 tile registers). Each output is
// the same sequence of tile steps over k from +0 in every block shape (a tile's outputs do
// not depend on its other rows), so a token gets the same bits alone or in any batch and
// row split.
#include <immintrin.h>

#include "core/error.h"
#include "kernels/x86_amx/amx.h"
#include "kernels/x86_amx/tile_config.h"

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

constexpr int64_t kPanel = 16;                  // rows per panel = columns of a C tile
constexpr int64_t kTileTokens = 16;             // tokens per A / C tile
constexpr int64_t kTileK = 32;                  // values per tile step (64 bytes of BF16)
constexpr size_t kTileLineBytes = 64;           // one tile row
constexpr size_t kActChunkBytes = 1024 * 1024;  // activation rows kept in L2 across panels

// Tiles 0..3: C (token half a, panel b) at 2a + b; 4, 5: A of token halves 0, 1; 6, 7: B of
// panels 0, 1. A block of m0 + m1 tokens (m1 = 0: one half) sizes the A and C tiles.
void configure(int m0, int m1) {
  TileConfig cfg;
  const int rows[8] = {m0, m0, m1, m1, m0, m1, kPanel, kPanel};
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = static_cast<uint8_t>(rows[t]);
    cfg.colsb[t] = static_cast<uint16_t>(rows[t] > 0 ? kTileLineBytes : 0);
  }
  _tile_loadconfig(&cfg);
}

// The block's tile steps over k: A from the activation rows (a, stride ab), B from the
// panels at b0 and b0 + panel_bytes.
template <bool kTwoHalves, bool kTwoPanels>
void block_steps(const uint8_t* a, size_t ab, const uint8_t* b0, size_t panel_bytes, int64_t k) {
  _tile_zero(0);
  if constexpr (kTwoPanels) _tile_zero(1);
  if constexpr (kTwoHalves) _tile_zero(2);
  if constexpr (kTwoHalves && kTwoPanels) _tile_zero(3);
  const auto stride = static_cast<long>(ab);
  for (int64_t k0 = 0; k0 < k; k0 += kTileK) {
    _tile_loadd(4, a + 2 * k0, stride);
    if constexpr (kTwoHalves) _tile_loadd(5, a + kTileTokens * ab + 2 * k0, stride);
    _tile_loadd(6, b0 + kPanel * 2 * k0, kTileLineBytes);
    if constexpr (kTwoPanels) _tile_loadd(7, b0 + panel_bytes + kPanel * 2 * k0, kTileLineBytes);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (kTwoPanels) _tile_dpbf16ps(1, 4, 7);
    if constexpr (kTwoHalves) _tile_dpbf16ps(2, 5, 6);
    if constexpr (kTwoHalves && kTwoPanels) _tile_dpbf16ps(3, 5, 7);
  }
}

// C tile `tile` (`tokens` rows: tokens tok.., columns: rows row0..row0+15) into y, rows
// [row_begin, row_end) only.
void store_outputs(int tile, int tokens, int64_t tok, int64_t row0, float* y, int64_t y_stride,
                   int64_t row_begin, int64_t row_end) {
  float* dst = y + tok * y_stride + row0;
  if (row0 >= row_begin && row0 + kPanel <= row_end) {
    store_tile(tile, dst, static_cast<long>(y_stride * static_cast<int64_t>(sizeof(float))));
    return;
  }
  alignas(64) float c[kTileTokens * kPanel];
  store_tile(tile, c, static_cast<long>(kTileLineBytes));
  for (int m = 0; m < tokens; ++m) {
    for (int64_t n = 0; n < kPanel; ++n) {
      if (row0 + n >= row_begin && row0 + n < row_end) dst[m * y_stride + n] = c[m * kPanel + n];
    }
  }
}

// One block: m0 + m1 tokens (at a) x one or two panels (at b0), outputs into y.
void run_block(int m0, int m1, bool two_panels, const uint8_t* a, size_t ab, const uint8_t* b0,
               size_t panel_bytes, int64_t k) {
  if (m1 > 0) {
    if (two_panels) return block_steps<true, true>(a, ab, b0, panel_bytes, k);
    return block_steps<true, false>(a, ab, b0, panel_bytes, k);
  }
  if (two_panels) return block_steps<false, true>(a, ab, b0, panel_bytes, k);
  block_steps<false, false>(a, ab, b0, panel_bytes, k);
}

}  // namespace

void matmul_rows_packed_bf16x16_pairs(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                                      const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                                      float* y, int64_t y_stride, int64_t row_begin,
                                      int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::BF16 && k > 0 && k % kTileK == 0 &&
                row_bytes == static_cast<size_t>(2 * k) && act_row_bytes >= row_bytes);
  if (row_end <= row_begin || n_tokens <= 0) return;
  const size_t panel_bytes = static_cast<size_t>(kPanel) * row_bytes;
  const int64_t p_begin = row_begin / kPanel, p_end = (row_end + kPanel - 1) / kPanel;
  const int64_t block_tokens = 2 * kTileTokens;
  int64_t tc = static_cast<int64_t>(kActChunkBytes / act_row_bytes);
  tc = tc < block_tokens ? block_tokens : tc - tc % block_tokens;
  int loaded0 = -1, loaded1 = -1;  // the configuration in the tile registers
  for (int64_t t0 = 0; t0 < n_tokens; t0 += tc) {
    const int64_t ntc = n_tokens - t0 < tc ? n_tokens - t0 : tc;
    for (int64_t p = p_begin; p < p_end; p += 2) {
      const bool two_panels = p + 1 < p_end;
      const uint8_t* b0 = w + static_cast<size_t>(p) * panel_bytes;
      for (int64_t g = 0; g < ntc; g += block_tokens) {
        const int64_t nt = ntc - g < block_tokens ? ntc - g : block_tokens;
        const int m0 = static_cast<int>(nt < kTileTokens ? nt : kTileTokens);
        const int m1 = static_cast<int>(nt - m0);
        if (m0 != loaded0 || m1 != loaded1) {
          configure(m0, m1);
          loaded0 = m0;
          loaded1 = m1;
        }
        const int64_t tok = t0 + g;
        run_block(m0, m1, two_panels, act + tok * act_row_bytes, act_row_bytes, b0, panel_bytes, k);
        const int64_t row0 = p * kPanel;
        store_outputs(0, m0, tok, row0, y, y_stride, row_begin, row_end);
        if (two_panels) store_outputs(1, m0, tok, row0 + kPanel, y, y_stride, row_begin, row_end);
        if (m1 > 0) {
          store_outputs(2, m1, tok + kTileTokens, row0, y, y_stride, row_begin, row_end);
          if (two_panels) {
            store_outputs(3, m1, tok + kTileTokens, row0 + kPanel, y, y_stride, row_begin, row_end);
          }
        }
      }
    }
  }
  _tile_release();
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
