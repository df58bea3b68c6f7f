// AVX2 pieces of a quantized KV cache's store path (kv/metric_rounding.cc, kv/kv_transform.cc):
// Q4_0 level searches under a metric, their errors and sums, the Walsh-Hadamard transform and
// small matrix-vector products. Each gives the same bits as the scalar code it replaces there
// (same operations in the same order; no FMA). Plain declarations: call only when the CPU has
// AVX2.
#pragma once

#include <cstdint>

namespace quanta::kernels::avx2 {

// Values per Q4_0 block, and kept partial choices per beam search (one per AVX2 lane): the
// caller's constants must match (it checks with static_assert).
constexpr int32_t kKvQ4Block = 32;
constexpr int32_t kKvBeamWidth = 8;

// The beam search of kv's quantize_q4_0_under_metric for one head of n (<= kKvQ4Block) values
// x and each of `count` scales: levels l[c][0 .. n) in [-8, 7] making r^T L L^T r small,
// r = x / scales[c] - l[c] (lf: the lower-triangular factor L, n x n row-major). Searches run
// four scales at a time. Returns the mask of the scales whose levels it set (bit c); the
// others met a NaN cost, whose order only the scalar search defines. count <= 32.
uint32_t kv_beam_levels(const float* x, const float* lf, int32_t n, const float* scales,
                        int32_t count, int8_t* const* l);

// Local search on one head's levels l (hd = 8, 16 or 32 values) at scale d: single-level moves
// that lower r^T S r (r = x / d - l, S = metric, hd x hd), up to 8 passes.
void kv_search_levels(const float* x, const float* metric, int32_t hd, float d, int8_t* l);

// Error sum over the heads of one 32-value block of (x - d l)^T S_h (x - d l), heads of
// hd = 8, 16 or 32 values, their metrics S_h (hd x hd each) consecutive in `metrics`.
double kv_block_error(const float* xb, const int8_t* l, float d, int32_t hd, const float* metrics);

// For one 32-value block (heads of hd values, hd a multiple of 4, metrics consecutive):
// out = {sum l_i S_ij x_j, sum l_i S_ij l_j, sum |l_i S_ij x_j|, sum |l_i S_ij l_j|} in
// double, summed four lanes at a time (not in the scalar order: within 2.3e-13 of the
// magnitude sums of the exact values).
void kv_least_squares_sums(const float* xb, const int8_t* l, int32_t hd, const float* metrics,
                           double* out);

// In-place orthonormal fast Walsh-Hadamard transform of n values, n a power of two and a
// multiple of 8.
void walsh_hadamard(float* x, int32_t n);

// out[i] = sum over j of m_ij v_j (j from 0, a product then an add) for mt = m transposed
// (n x n row-major), n a multiple of 8 and at most kMaxTransposedProductDim. out may not be v.
constexpr int32_t kMaxTransposedProductDim = 32;
void transposed_product(const float* mt, int32_t n, const float* v, float* out);

}  // namespace quanta::kernels::avx2
