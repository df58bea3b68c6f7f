// Scalar reference kernels that are not per-type quant kernels (those live in src/quant).
#pragma once

#include "kernels/kernel_table.h"

namespace quanta::kernels::ref {

void matmul_rows(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                 const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                 int64_t y_stride, int64_t row_begin, int64_t row_end);

// matmul_rows for weights in a repacked `Layout` (kQ4_0x8, kQ8_0x8, kF16x16, kBF16x16): each
// row brought back to its GGUF bytes (unpacked, or gathered from its panel), then the
// reference vec_dot (the same results as matmul_rows on the GGUF-layout weights).
template <WeightLayout Layout>
void matmul_rows_layout(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                        const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                        int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace quanta::kernels::ref
