// The AVX512-BF16 kernels (x86_avx512bf16/*.cc, compiled with AVX-512 F/BW/VL/DQ + VNNI +
// BF16 on top of AVX2+FMA+F16C, in namespace QUANTA_ISA_NS = avx512bf16). Plain declarations;
// call them only through the avx512bf16 kernel table (kernels/dispatch.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

#ifndef QUANTA_ISA_NS
#error "set QUANTA_ISA_NS (the ISA folder's namespace; src/kernels/CMakeLists.txt does)"
#endif

namespace quanta::kernels::QUANTA_ISA_NS {

// The kernel-table entry for BF16 weights in the panel layout kBF16x16 (bf16_panel.cc):
// vdpbf16ps over pairs of values, one fixed chain per output whatever the tokens and rows
// (batch-invariant); within the chain-length rounding bound of the exact product, not
// bit-identical with the AVX2 / AVX-512F FMA chain.
void matmul_rows_packed_bf16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                                const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                                float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace quanta::kernels::QUANTA_ISA_NS
