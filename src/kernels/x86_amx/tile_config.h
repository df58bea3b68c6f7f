// The AMX tile configuration and C-tile store shared by the amx kernels (bf16_tiles.cc,
// int8_tiles.cc): the 64-byte LDTILECFG operand, TILESTORED by tile number. Include only from
// x86_amx/*.cc.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

// The LDTILECFG operand (palette 1): rows and bytes per row of tiles 0..15 (a tile with 0
// rows is unconfigured; using it faults).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

// TILESTORED of tile `tile` (0..3; the instruction names its tile) to dst, rows stride_bytes
// apart: the C tiles of both kernels.
inline void store_tile(int tile, void* dst, long stride_bytes) {
  switch (tile) {
    case 0:
      _tile_stored(0, dst, stride_bytes);
      break;
    case 1:
      _tile_stored(1, dst, stride_bytes);
      break;
    case 2:
      _tile_stored(2, dst, stride_bytes);
      break;
    default:
      _tile_stored(3, dst, stride_bytes);
      break;
  }
}

}  // namespace
}  // namespace quanta::kernels::QUANTA_ISA_NS
