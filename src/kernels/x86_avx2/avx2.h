// The AVX2+FMA+F16C kernels (x86_avx2/*.cc, each compiled with those flags). Plain
// declarations: safe to include anywhere, but call them only when cpu_features() reports
// avx2, fma and f16c (kernels/dispatch.cc does).
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace quanta::kernels::avx2 {

// Activation conversions (convert.cc), bit-identical with the scalar reference.
void from_float_f16(const float* src, void* dst, int64_t n);
void from_float_bf16(const float* src, void* dst, int64_t n);
void from_float_q8_0(const float* src, void* dst, int64_t n);
void from_float_q8_1(const float* src, void* dst, int64_t n);
void from_float_q8_K(const float* src, void* dst, int64_t n);

// Dot products (x in the weight type, y in its vec_dot_type).
float vec_dot_f32(int64_t n, const void* x, const void* y);  // float_dot.cc
float vec_dot_f16(int64_t n, const void* x, const void* y);
float vec_dot_bf16(int64_t n, const void* x, const void* y);
float vec_dot_q4_0_q8_0(int64_t n, const void* x, const void* y);  // q4_0_dot.cc
float vec_dot_q4_1_q8_1(int64_t n, const void* x, const void* y);  // legacy_dot.cc
float vec_dot_q5_0_q8_0(int64_t n, const void* x, const void* y);
float vec_dot_q5_1_q8_1(int64_t n, const void* x, const void* y);
float vec_dot_q8_0_q8_0(int64_t n, const void* x, const void* y);  // q8_0_dot.cc
float vec_dot_q4_K_q8_K(int64_t n, const void* x, const void* y);  // q4_k_dot.cc
float vec_dot_q5_K_q8_K(int64_t n, const void* x, const void* y);  // kquant_dot.cc
float vec_dot_q6_K_q8_K(int64_t n, const void* x, const void* y);

// Row-tiled products of one weight type, same contract as KernelTable::matmul_rows.
using TypedRowsFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                             size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                             int64_t row_begin, int64_t row_end);
#define QUANTA_AVX2_DECLARE_ROWS(name)                                                             \
  void name(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,                     \
            size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, \
            int64_t row_end)
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_f32);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_f16);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_bf16);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q4_0);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q4_1);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q5_0);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q5_1);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q8_0);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q4_K);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q5_K);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q6_K);
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q4_0x8);  // Q4_0 in WeightLayout::kQ4_0x8 (q4_0_dot.cc)
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q8_0x8);  // Q8_0 in WeightLayout::kQ8_0x8 (q8_0_dot.cc)
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q4_Kx8);  // Q4_K in WeightLayout::kQ4_Kx8 (q4_k_dot.cc)
QUANTA_AVX2_DECLARE_ROWS(matmul_rows_q6_Kx8);  // Q6_K in WeightLayout::kQ6_Kx8 (kquant_dot.cc)
#undef QUANTA_AVX2_DECLARE_ROWS

// The kernel-table entry (matmul_rows.cc): dispatches on `type` to the functions above.
void matmul_rows(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                 size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end);
// The kernel-table entry for Q4_0 weights repacked to WeightLayout::kQ4_0x8.
void matmul_rows_packed_q4_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);
// The kernel-table entry for Q8_0 weights repacked to WeightLayout::kQ8_0x8.
void matmul_rows_packed_q8_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);
// The kernel-table entry for Q4_K weights repacked to WeightLayout::kQ4_Kx8 (q4_k_dot.cc).
void matmul_rows_packed_q4_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);
// The kernel-table entry for Q6_K weights repacked to WeightLayout::kQ6_Kx8 (kquant_dot.cc).
void matmul_rows_packed_q6_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);
// The kernel-table entries for F16 / BF16 weights in the panel layouts kF16x16 / kBF16x16
// (float_panel.cc): every output is a sequential FMA chain over k, whatever the tokens.
void matmul_rows_packed_f16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);
void matmul_rows_packed_bf16x16(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                                const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                                float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace quanta::kernels::avx2
