// The AMX kernels (x86_amx/*.cc, compiled with AMX-TILE + AMX-BF16 on top of the avx512bf16
// flags, in namespace QUANTA_ISA_NS = amx). Plain declarations; call them only through the
// amx kernel table (kernels/dispatch.cc selects it when the CPU has AMX and Linux granted
// the process its tile state, core/cpu_features.h).
#pragma once

#include <cstddef>
#include <cstdint>

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

}  // namespace quanta::kernels::QUANTA_ISA_NS
