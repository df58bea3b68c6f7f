// At-load weight repacking: byte permutations between the GGUF layout of a weight matrix and
// the layouts some kernel paths multiply faster (KernelTable::preferred_layout). Portable
// code; a repacked row has the same size as the GGUF row, and packing is exactly invertible.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernel_table.h"

namespace quanta::kernels {

// WeightLayout::kQ4_0x8, per row of nb = k / 32 Q4_0 blocks (18 bytes each in GGUF):
//   group g < nb / 8 (blocks 8g..8g+7) at bytes [144 g, 144 g + 144):
//     [0, 128)   four 32-byte vectors; vector j, bytes 4L..4L+3 = qs[4j..4j+3] of block 8g+L
//                (low nibbles: values 4j..4j+3 of block L; high nibbles: values 16+4j..)
//     [128, 144) the 8 blocks' f16 scales d, block 8g+L at 128 + 2L
//   then the last nb % 8 blocks exactly as in GGUF.
inline constexpr size_t kQ4_0x8GroupBytes = 144;

// WeightLayout::kQ8_0x8, per row of nb = k / 32 Q8_0 blocks (34 bytes each in GGUF):
//   group g < nb / 8 (blocks 8g..8g+7) at bytes [272 g, 272 g + 272):
//     [0, 256)   eight 32-byte vectors; vector m, bytes 4L..4L+3 = qs[4m..4m+3] of block 8g+L
//     [256, 272) the 8 blocks' f16 scales d, block 8g+L at 256 + 2L
//   then the last nb % 8 blocks exactly as in GGUF.
inline constexpr size_t kQ8_0x8GroupBytes = 272;

// WeightLayout::kQ4_Kx8, per row of nb = k / 256 Q4_K super-blocks (144 bytes each, same
// places as in GGUF), the nibbles regrouped so that int32 lane L of a vector is sub-block L:
//   [0, 128)   four 32-byte vectors; vector j, bytes 4L..4L+3: low nibbles = levels of values
//              4j..4j+3 of sub-block L, high nibbles = values 16+4j..16+4j+3 of sub-block L
//   [128, 132) d, dmin (f16) as in GGUF
//   [132, 140) byte 132+L = sc[L] | (m[L] & 3) << 6 (6-bit scale, low 2 bits of the min)
//   [140, 144) u32, bits 4L..4L+3 = m[L] >> 2
inline constexpr size_t kQ4_KBlockBytes = 144;
inline constexpr size_t kQ4_KScalesAt = 132;

// WeightLayout::kQ6_Kx8, per row of nb = k / 256 Q6_K super-blocks (210 bytes each, same
// places as in GGUF); half h (values 128h..128h+127) in three 32-byte vectors X, Y, Z at
// 96h, 96h + 32, 96h + 64, the 6-bit levels q (0..63) of four vectors V0..V3 of the AVX2
// kernel's order packed as X = V0 | (V3 & 3) << 6, Y = V1 | (V3 >> 2 & 3) << 6,
// Z = V2 | (V3 >> 4) << 6. Byte e of V(2p + s) (p, s in {0, 1}) is the level of value
// 128h + 32c + l with c = 2p + (e / 8) % 2, l = 16 (e / 16) + 8s + e % 8.
//   [192, 208) the 16 int8 scales, [208, 210) d (f16), as in GGUF.
inline constexpr size_t kQ6_KBlockBytes = 210;

// WeightLayout::kF16x16 (panel layout), n_rows a multiple of 16, row_bytes = 2k:
//   panel p (rows 16p..16p+15) at bytes [16 p row_bytes, 16 (p + 1) row_bytes):
//     value j of row 16p + i at byte 32 j + 2 i (the 16 rows' values j side by side).
// WeightLayout::kBF16x16: the same for BF16, but value j of row 16p + i at 32 j + 2 s(i),
//   s = (0 1 2 3 8 9 10 11 4 5 6 7 12 13 14 15) (s is its own inverse): a 32-byte load
//   unpacked with zeros below each value (vpunpcklwd / vpunpckhwd per 128-bit lane) gives
//   rows 0..7 and 8..15 as exact F32 vectors in row order.
// WeightLayout::kBF16x16Pairs (the AMX tile layout), k a multiple of 32: panel p as above,
//   but values 2m and 2m + 1 of row 16p + i side by side at bytes 64 m + 4 i and 64 m + 4 i + 2
//   (each 64-byte line is the dword pairs of the 16 rows: a row of an AMX B tile; 16 lines
//   are the tile of 32 values).
// Kernels compute row r from panel r / 16, lane r % 16, whatever the row range. Rows of up
// to kPanelMaxK values (the AVX2 kernel prepares at least one token's k values on the stack).
inline constexpr int64_t kPanelRows = 16;
inline constexpr int64_t kPanelMaxK = 128 * 1024;

// True for the layouts that interleave rows (kF16x16, kBF16x16, kBF16x16Pairs).
bool is_panel_layout(WeightLayout layout);

// The type a layout holds (kGguf: any type; returns `type` then).
GgmlType layout_type(WeightLayout layout, GgmlType type);

// True when a matrix of n_rows rows of k values of `type` can be stored in `layout`.
bool layout_fits(WeightLayout layout, GgmlType type, int64_t k, int64_t n_rows);

// Rewrites n_rows rows (row_bytes = row_size(type, k) apart) from GGUF into `layout`;
// `dst` may equal `src` (each group or panel is rewritten in place). Requires layout_fits.
void repack_rows(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* src, uint8_t* dst,
                 int64_t n_rows);

// The inverse of repack_rows (back to the GGUF bytes); `dst` may equal `src`.
void unpack_rows(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* src, uint8_t* dst,
                 int64_t n_rows);

// Dequantizes row bytes `src` stored in a row layout (not a panel layout) into out[k]
// (exactly the GGUF row's values).
void dequantize_packed_row(WeightLayout layout, GgmlType type, const uint8_t* src, float* out,
                           int64_t k);

// Copies row r of a matrix stored in `layout` (`data`: the matrix, rows of k values) into
// `dst` as its GGUF bytes (row_size(type, k)).
void extract_gguf_row(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* data, int64_t r,
                      uint8_t* dst);

// Dequantizes row r of a matrix stored in any layout into out[k] (the GGUF row's values).
void dequantize_layout_row(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* data,
                           int64_t r, float* out);

}  // namespace quanta::kernels
