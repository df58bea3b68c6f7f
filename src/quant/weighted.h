// Importance-weighted quantization (llama.cpp's imatrix path): per-column weights, the
// mean squared activation each weight column multiplies, steer the scale search so that
// the error is small where the activations are large. Rows only; threads are the caller's.
#pragma once

#include <cstdint>

#include "quant/types.h"

namespace quanta {

// True when `type` has an importance-weighted quantizer (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
// Q5_K, Q6_K). Other types ignore the weights, as llama.cpp does (Q8_0 included).
bool has_weighted_quantizer(GgmlType type);

// Quantizes one row of `n` values into row_size(type, n) bytes. `importance` [n] holds
// the per-column weights (llama.cpp's quant_weights: imatrix sums / counts); null, or a
// type without a weighted quantizer, gives quantize_row's round-to-nearest result. The
// weighted results follow ggml's quantize_row_*_impl. Throws quanta::Error for a type
// quanta cannot quantize or an `n` that is not a multiple of the block size.
void quantize_row_weighted(GgmlType type, const float* src, void* dst, int64_t n,
                           const float* importance);

namespace ref {
// The weighted row quantizers behind quantize_row_weighted (importance non-null).
void quantize_weighted_q4_0(const float* x, void* dst, int64_t n, const float* importance);
void quantize_weighted_q4_1(const float* x, void* dst, int64_t n, const float* importance);
void quantize_weighted_q5_0(const float* x, void* dst, int64_t n, const float* importance);
void quantize_weighted_q5_1(const float* x, void* dst, int64_t n, const float* importance);
void quantize_weighted_q4_K(const float* x, void* dst, int64_t n, const float* importance);
void quantize_weighted_q5_K(const float* x, void* dst, int64_t n, const float* importance);
void quantize_weighted_q6_K(const float* x, void* dst, int64_t n, const float* importance);
}  // namespace ref

}  // namespace quanta
