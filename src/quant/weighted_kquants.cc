// Importance-weighted K-quant quantizers (ggml quantize_row_q4_K_impl, q5_K, q6_K with
// quant_weights): weighted sub-block searches, then weighted quantization of the sub-block
// scales (and mins) themselves; requantization and packing are shared with ref_kquants.cc.
#include <cmath>

#include "quant/block_steps.h"
#include "quant/blocks.h"
#include "quant/kquant_search.h"
#include "quant/weighted.h"

namespace quanta::ref {
namespace {

constexpr int kSub = kQK_K / 32;  // sub-blocks of 32 in a Q4_K/Q5_K super-block

// One Q4_K/Q5_K super-block: weighted sub-block searches, weighted quantization of the
// sub-block scales and mins (make_qp_quants), then requantization; L[256] in [0, nmax].
template <typename Block>
void weighted_scale_min_block(const float* x, const float* qw, int nmax, Block* y, uint8_t* L) {
  float sum_x2 = 0;
  for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = 2 * sum_x2 / kQK_K;
  float weights[32];
  uint8_t Laux[32];
  float sw[kSub], mins[kSub], scales[kSub];
  for (int j = 0; j < kSub; ++j) {
    for (int l = 0; l < 32; ++l) {
      weights[l] = qw[32 * j + l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
    }
    float sumw = 0;
    for (int l = 0; l < 32; ++l) sumw += weights[l];
    sw[j] = sumw;
    scales[j] = detail::make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                         -0.9f, 0.05f, 36);
  }
  uint8_t ls[kSub], lm[kSub];
  const float d_block = detail::make_qp_quants(kSub, 63, scales, ls, sw);
  const float m_block = detail::make_qp_quants(kSub, 63, mins, lm, sw);
  detail::store_scale_min_block(x, nmax, ls, lm, d_block, m_block, y, L);
}

}  // namespace

void quantize_weighted_q4_K(const float* x, void* dst, int64_t n, const float* qw) {
  BlockQ4_K* y = static_cast<BlockQ4_K*>(dst);
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    weighted_scale_min_block(x + kQK_K * i, qw + kQK_K * i, 15, &y[i], L);
    detail::pack_q4_K_levels(L, y[i].qs);
  }
}

void quantize_weighted_q5_K(const float* x, void* dst, int64_t n, const float* qw) {
  BlockQ5_K* y = static_cast<BlockQ5_K*>(dst);
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    weighted_scale_min_block(x + kQK_K * i, qw + kQK_K * i, 31, &y[i], L);
    detail::pack_q5_K_levels(L, y[i].qh, y[i].qs);
  }
}

void quantize_weighted_q6_K(const float* x, void* dst, int64_t n, const float* qw) {
  BlockQ6_K* y = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    detail::quantize_q6_K_block(x + kQK_K * i, qw + kQK_K * i, &y[i]);
  }
}

}  // namespace quanta::ref
