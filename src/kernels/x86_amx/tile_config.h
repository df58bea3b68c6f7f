// The AMX tile configuration shared by the amx kernels (bf16_tiles.cc, int8_tiles.cc): the
// 64-byte LDTILECFG operand. Include only from x86_amx/*.cc.
#pragma once

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

}  // namespace
}  // namespace quanta::kernels::QUANTA_ISA_NS
