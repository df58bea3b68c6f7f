// Importance-weighted quantizers of the legacy 32-value types (ggml quantize_row_q4_0_impl,
// q4_1, q5_0, q5_1) and the quantize_row_weighted dispatcher.
#include "quant/weighted.h"

#include <cmath>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/block_steps.h"
#include "quant/blocks.h"
#include "quant/kquant_search.h"

namespace quanta {
namespace ref {
namespace {

constexpr int kQK = 32;  // values per legacy block

// sum of x^2 over the row / n: the row's mean square, ggml's sigma2.
float row_sigma2(const float* x, int64_t n) {
  float sum_x2 = 0.0f;
  for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / static_cast<float>(n);
}

// ggml's legacy-type weights: importance * sqrt(sigma2 + x^2).
void block_weights(const float* xb, const float* qw, float sigma2, float* weight) {
  for (int j = 0; j < kQK; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
}

// Symmetric types (Q4_0: nmax 8, Q5_0: nmax 16): d = weighted-search scale.
template <typename Block>
void quantize_symmetric(const float* x, Block* y, int64_t n, const float* qw, int nmax) {
  const float sigma2 = row_sigma2(x, n);
  float weight[kQK];
  int8_t L[kQK];
  for (int64_t ib = 0; ib < n / kQK; ++ib) {
    const float* xb = x + kQK * ib;
    block_weights(xb, qw + kQK * ib, sigma2, weight);
    const float d = detail::make_qx_quants(kQK, nmax, xb, weight, L);
    y[ib].d = f32_to_f16(d);
    const uint8_t* levels = reinterpret_cast<const uint8_t*>(L);
    detail::pack_nibbles(levels, y[ib].qs);
    if constexpr (sizeof(Block) == sizeof(BlockQ5_0)) detail::pack_high_bits(levels, y[ib].qh);
  }
}

// Scale-and-min types (Q4_1: nmax 15, Q5_1: nmax 31): value = d * L + m, m = -min.
template <typename Block>
void quantize_affine(const float* x, Block* y, int64_t n, const float* qw, int nmax) {
  const float sigma2 = row_sigma2(x, n);
  float weight[kQK];
  uint8_t L[kQK];
  uint8_t Laux[kQK];
  for (int64_t ib = 0; ib < n / kQK; ++ib) {
    const float* xb = x + kQK * ib;
    block_weights(xb, qw + kQK * ib, sigma2, weight);
    float min;
    const float d =
        detail::make_qkx2_quants(kQK, nmax, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36);
    y[ib].d = f32_to_f16(d);
    y[ib].m = f32_to_f16(-min);
    detail::pack_nibbles(L, y[ib].qs);
    if constexpr (sizeof(Block) == sizeof(BlockQ5_1)) detail::pack_high_bits(L, y[ib].qh);
  }
}

}  // namespace

void quantize_weighted_q4_0(const float* x, void* dst, int64_t n, const float* qw) {
  quantize_symmetric(x, static_cast<BlockQ4_0*>(dst), n, qw, 8);
}
void quantize_weighted_q5_0(const float* x, void* dst, int64_t n, const float* qw) {
  quantize_symmetric(x, static_cast<BlockQ5_0*>(dst), n, qw, 16);
}
void quantize_weighted_q4_1(const float* x, void* dst, int64_t n, const float* qw) {
  quantize_affine(x, static_cast<BlockQ4_1*>(dst), n, qw, 15);
}
void quantize_weighted_q5_1(const float* x, void* dst, int64_t n, const float* qw) {
  quantize_affine(x, static_cast<BlockQ5_1*>(dst), n, qw, 31);
}

}  // namespace ref

namespace {

using WeightedFn = void (*)(const float*, void*, int64_t, const float*);

WeightedFn weighted_fn(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return ref::quantize_weighted_q4_0;
    case GgmlType::Q4_1: return ref::quantize_weighted_q4_1;
    case GgmlType::Q5_0: return ref::quantize_weighted_q5_0;
    case GgmlType::Q5_1: return ref::quantize_weighted_q5_1;
    case GgmlType::Q4_K: return ref::quantize_weighted_q4_K;
    case GgmlType::Q5_K: return ref::quantize_weighted_q5_K;
    case GgmlType::Q6_K: return ref::quantize_weighted_q6_K;
    default: return nullptr;
  }
}

}  // namespace

bool has_weighted_quantizer(GgmlType type) { return weighted_fn(type) != nullptr; }

void quantize_row_weighted(GgmlType type, const float* src, void* dst, int64_t n,
                           const float* importance) {
  const WeightedFn fn = weighted_fn(type);
  if (importance == nullptr || fn == nullptr) {
    quantize_row(type, src, dst, n);
    return;
  }
  const int64_t block = type_traits(type).block_size;
  if (n % block != 0) {
    fail("quantize %s: row length %lld is not a multiple of the block size %lld",
         type_name(type), static_cast<long long>(n), static_cast<long long>(block));
  }
  fn(src, dst, n, importance);
}

}  // namespace quanta
