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

// The type a layout holds (kGguf: any type; returns `type` then).
GgmlType layout_type(WeightLayout layout, GgmlType type);

// True when rows of k values of `type` can be stored in `layout`.
bool layout_fits(WeightLayout layout, GgmlType type, int64_t k);

// Rewrites n_rows rows (row_bytes = row_size(type, k) apart) from GGUF into `layout`;
// `dst` may equal `src` (each group is rewritten in place). Requires layout_fits.
void repack_rows(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* src, uint8_t* dst,
                 int64_t n_rows);

// The inverse of repack_rows (back to the GGUF bytes); `dst` may equal `src`.
void unpack_rows(WeightLayout layout, GgmlType type, int64_t k, const uint8_t* src, uint8_t* dst,
                 int64_t n_rows);

// Dequantizes row bytes `src` stored in `layout` into out[k] (exactly the GGUF row's values).
void dequantize_packed_row(WeightLayout layout, GgmlType type, const uint8_t* src, float* out,
                           int64_t k);

}  // namespace quanta::kernels
