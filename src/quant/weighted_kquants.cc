// Importance-weighted K-quant quantizers (ggml quantize_row_q4_K_impl, q5_K, q6_K with
// quant_weights): weighted sub-block searches, then weighted quantization of the sub-block
// scales (and mins) themselves, then requantization with the stored scales.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/kquant_search.h"
#include "quant/weighted.h"
#include "quant/weighted_search.h"

namespace quanta::ref {
namespace {

using detail::get_scale_min_k4;
using detail::nearest_int;

constexpr int kSub = kQK_K / 32;  // sub-blocks of 32 in a Q4_K/Q5_K super-block

// One Q4_K/Q5_K super-block: levels L[256] in [0, nmax], d, dmin and packed scales.
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
    scales[j] = detail::make_qkx3_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j],
                                         Laux, -0.9f, 0.05f, 36);
  }
  uint8_t ls[kSub], lm[kSub];
  const float d_block = detail::make_qp_quants(kSub, 63, scales, ls, sw);
  const float m_block = detail::make_qp_quants(kSub, 63, mins, lm, sw);
  std::memset(y->scales, 0, sizeof y->scales);
  detail::pack_scale_min_k4(ls, lm, y->scales);
  y->d = f32_to_f16(d_block);
  y->dmin = f32_to_f16(m_block);
  for (int j = 0; j < kSub; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, y->scales, &sc, &m);
    const float d = f16_to_f32(y->d) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = f16_to_f32(y->dmin) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

void pack_q4_K_levels(const uint8_t* L, uint8_t* q) {
  for (int j = 0; j < kQK_K; j += 64, q += 32) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void pack_q5_K_levels(const uint8_t* L, uint8_t* qh, uint8_t* ql) {
  std::memset(qh, 0, kQK_K / 8);
  uint8_t m1 = 1, m2 = 2;
  for (int j = 0; j < kQK_K; j += 64, ql += 32) {
    for (int l = 0; l < 32; ++l) {
      int l1 = L[j + l];
      int l2 = L[j + l + 32];
      if (l1 > 15) {
        l1 -= 16;
        qh[l] |= m1;
      }
      if (l2 > 15) {
        l2 -= 16;
        qh[l] |= m2;
      }
      ql[l] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
  }
}

// Q6_K packing of 256 levels in [0, 63] (same layout as the reference quantizer).
void pack_q6_K_levels(const int8_t* L, BlockQ6_K* y) {
  uint8_t* ql = y->ql;
  uint8_t* qh = y->qh;
  for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t q1 = L[j + l + 0] & 0xF;
      const uint8_t q2 = L[j + l + 32] & 0xF;
      const uint8_t q3 = L[j + l + 64] & 0xF;
      const uint8_t q4 = L[j + l + 96] & 0xF;
      ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                   ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
    }
  }
}

// One Q6_K super-block. NOTE: ggml passes the importance directly as the search weights here
// (no sqrt(sigma2 + x^2) factor), unlike the other types.
void weighted_q6_K_block(const float* x, const float* qw, BlockQ6_K* y) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0;
  float max_abs_scale = 0;
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    scales[ib] = detail::make_qx_quants_weighted(16, 32, x + 16 * ib, qw + 16 * ib, L + 16 * ib);
    if (std::fabs(scales[ib]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < 1e-15f) {  // GROUP_MAX_EPS: an all-zero block
    std::memset(y, 0, sizeof(BlockQ6_K));
    return;
  }
  const float iscale = -128.f / max_scale;
  y->d = f32_to_f16(1 / iscale);
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    y->scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  }
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = f16_to_f32(y->d) * static_cast<float>(y->scales[j]);
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      const int l = std::max(-32, std::min(31, nearest_int(x[16 * j + ii] / d)));
      L[16 * j + ii] = static_cast<int8_t>(l + 32);
    }
  }
  pack_q6_K_levels(L, y);
}

}  // namespace

void quantize_weighted_q4_K(const float* x, void* dst, int64_t n, const float* qw) {
  BlockQ4_K* y = static_cast<BlockQ4_K*>(dst);
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    weighted_scale_min_block(x + kQK_K * i, qw + kQK_K * i, 15, &y[i], L);
    pack_q4_K_levels(L, y[i].qs);
  }
}

void quantize_weighted_q5_K(const float* x, void* dst, int64_t n, const float* qw) {
  BlockQ5_K* y = static_cast<BlockQ5_K*>(dst);
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    weighted_scale_min_block(x + kQK_K * i, qw + kQK_K * i, 31, &y[i], L);
    pack_q5_K_levels(L, y[i].qh, y[i].qs);
  }
}

void quantize_weighted_q6_K(const float* x, void* dst, int64_t n, const float* qw) {
  BlockQ6_K* y = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    weighted_q6_K_block(x + kQK_K * i, qw + kQK_K * i, &y[i]);
  }
}

}  // namespace quanta::ref
