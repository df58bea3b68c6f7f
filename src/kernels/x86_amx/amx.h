// The AMX kernels (x86_amx/*.cc, compiled with AMX-TILE, -BF16, -INT8 on top of the avx512bf16
// flags, in namespace QUANTA_ISA_NS = amx). Plain declarations; call them only through the
// amx kernel table (kernels/dispatch.cc selects it when the CPU has AMX and Linux granted
// the process its tile state, core/cpu_features.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernel_table.h"
#include "quant/types.h"

#ifndef QUANTA_ISA_NS
#error "set QUANTA_ISA_NS (the ISA folder's namespace; src/kernels/CMakeLists.txt does)"
#endif

namespace quanta::kernels::QUANTA_ISA_NS {

// The kernel-table entry for BF16 weights in the layout kBF16x16Pairs (bf16_tiles.cc):
// tdpbf16ps tile products, each output the same fixed sequence of tile steps over k (32
// values a step, from +0) whatever the tokens and rows (batch-invariant); within the
// rounding bound of the exact product, not the bits of the FMA or vdpbf16ps chains.
void matmul_rows_packed_bf16x16_pairs(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                                      const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                                      float* y, int64_t y_stride, int64_t row_begin,
                                      int64_t row_end);

// The kernel-table entries for Q4_0 / Q8_0 / Q4_K weights in the layouts kQ4_0x8 / kQ8_0x8 /
// kQ4_Kx8 (int8_tiles.cc): tdpbssd block sums with the avx2 kernels' float steps, bit-identical
// with them; calls with few tokens (or rows with a tail of blocks) go to the base table's kernels,
// which fill_table hands over first with set_int8_base_kernels.
void set_int8_base_kernels(MatmulRowsFn q4_0x8, MatmulRowsFn q8_0x8, MatmulRowsFn q4_Kx8);
void matmul_rows_packed_q4_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);
void matmul_rows_packed_q8_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);
void matmul_rows_packed_q4_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace quanta::kernels::QUANTA_ISA_NS
