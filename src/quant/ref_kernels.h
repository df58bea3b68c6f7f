// Scalar reference kernels (the oracle): dequantize (to_float), round-to-nearest quantize
// (from_float, bit-exact with ggml's quantize_row_*_ref) and dot products with ggml's generic
// CPU math. Signatures match the TypeTraits function pointers; `n` is a multiple of the block.
#pragma once

#include <cstdint>

namespace quanta::ref {

// --- F32 / F16 / BF16 (ref_float.cc). Dots: f32 products summed in double, as ggml's scalar
// ggml_vec_dot_f32/f16/bf16 (ggml_float accumulator), returned as f32.
void to_float_f32(const void* src, float* dst, int64_t n);
void from_float_f32(const float* src, void* dst, int64_t n);
float vec_dot_f32(int64_t n, const void* x, const void* y);
void to_float_f16(const void* src, float* dst, int64_t n);
void from_float_f16(const float* src, void* dst, int64_t n);
float vec_dot_f16(int64_t n, const void* x, const void* y);
void to_float_bf16(const void* src, float* dst, int64_t n);
void from_float_bf16(const float* src, void* dst, int64_t n);
float vec_dot_bf16(int64_t n, const void* x, const void* y);

// --- Legacy 32-value blocks (ref_legacy.cc).
void to_float_q4_0(const void* src, float* dst, int64_t n);
void from_float_q4_0(const float* src, void* dst, int64_t n);
float vec_dot_q4_0_q8_0(int64_t n, const void* x, const void* y);
void to_float_q4_1(const void* src, float* dst, int64_t n);
void from_float_q4_1(const float* src, void* dst, int64_t n);
float vec_dot_q4_1_q8_1(int64_t n, const void* x, const void* y);
void to_float_q5_0(const void* src, float* dst, int64_t n);
void from_float_q5_0(const float* src, void* dst, int64_t n);
float vec_dot_q5_0_q8_0(int64_t n, const void* x, const void* y);
void to_float_q5_1(const void* src, float* dst, int64_t n);
void from_float_q5_1(const float* src, void* dst, int64_t n);
float vec_dot_q5_1_q8_1(int64_t n, const void* x, const void* y);
void to_float_q8_0(const void* src, float* dst, int64_t n);
void from_float_q8_0(const float* src, void* dst, int64_t n);
float vec_dot_q8_0_q8_0(int64_t n, const void* x, const void* y);
void to_float_q8_1(const void* src, float* dst, int64_t n);
void from_float_q8_1(const float* src, void* dst, int64_t n);

// --- K-quants, 256-value super-blocks (ref_kquants.cc, search helpers in kquant_search.cc).
void to_float_q4_K(const void* src, float* dst, int64_t n);
void from_float_q4_K(const float* src, void* dst, int64_t n);
float vec_dot_q4_K_q8_K(int64_t n, const void* x, const void* y);
void to_float_q5_K(const void* src, float* dst, int64_t n);
void from_float_q5_K(const float* src, void* dst, int64_t n);
float vec_dot_q5_K_q8_K(int64_t n, const void* x, const void* y);
void to_float_q6_K(const void* src, float* dst, int64_t n);
void from_float_q6_K(const float* src, void* dst, int64_t n);
float vec_dot_q6_K_q8_K(int64_t n, const void* x, const void* y);
void to_float_q8_K(const void* src, float* dst, int64_t n);
void from_float_q8_K(const float* src, void* dst, int64_t n);

}  // namespace quanta::ref
