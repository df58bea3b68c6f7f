// The AVX-512 (F/BW/VL/DQ) kernels (x86_avx512/*.cc, compiled with those flags on top of
// AVX2+FMA+F16C, in namespace QUANTA_ISA_NS = avx512). Plain declarations; call them only
// through the avx512 kernel table (kernels/dispatch.cc selects it when the CPU has the ISA).
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

#ifndef QUANTA_ISA_NS
#error "set QUANTA_ISA_NS (the ISA folder's namespace; src/kernels/CMakeLists.txt does)"
#endif

namespace quanta::kernels::QUANTA_ISA_NS {

// The kernel-table entries for F16 / BF16 weights in the panel layouts kF16x16 / kBF16x16
// (float_panel.cc): bit-identical with the AVX2 entries (one sequential FMA chain over k per
// output, whatever the tokens), with 512-bit vectors.
void matmul_rows_packed_f16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);
void matmul_rows_packed_bf16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                                const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                                float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

// The kernel-table matmul_rows (float_rows.cc): F32 weights (GGUF layout) with two rows per
// zmm, bit-identical with the AVX2 F32 kernel; every other type goes to avx2::matmul_rows.
void matmul_rows(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                 size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end);

}  // namespace quanta::kernels::QUANTA_ISA_NS
