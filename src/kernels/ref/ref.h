// Scalar reference kernels that are not per-type quant kernels (those live in src/quant).
#pragma once

#include "kernels/kernel_table.h"

namespace quanta::kernels::ref {

void matmul_rows(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                 const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                 int64_t y_stride, int64_t row_begin, int64_t row_end);

// matmul_rows for Q4_0 weights in WeightLayout::kQ4_0x8: each row unpacked to GGUF, then the
// reference vec_dot (the same results as matmul_rows on the unpacked weights).
void matmul_rows_q4_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                        const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                        int64_t y_stride, int64_t row_begin, int64_t row_end);
// The same for Q8_0 weights in WeightLayout::kQ8_0x8.
void matmul_rows_q8_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                        const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                        int64_t y_stride, int64_t row_begin, int64_t row_end);
// The same for F16 / BF16 weights in the panel layouts WeightLayout::kF16x16 / kBF16x16
// (each row gathered from its panel).
void matmul_rows_f16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                        const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                        int64_t y_stride, int64_t row_begin, int64_t row_end);
void matmul_rows_bf16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                         const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                         int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace quanta::kernels::ref
