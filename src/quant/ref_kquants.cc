// Scalar reference kernels for the K-quants Q4_K, Q5_K, Q6_K and the Q8_K activation type:
// ggml's quantize_row_*_ref (scale search, 6/8-bit scale quantization, requantization with the
// stored scales), dequantize_row_* and generic vec_dot_*_q8_K, with ggml's float op order.
// Also defines the K-quant block steps of block_steps.h that the weighted quantizers share.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/block_steps.h"
#include "quant/blocks.h"
#include "quant/kquant_search.h"
#include "quant/ref_kernels.h"

namespace quanta::ref {
namespace {

using detail::get_scale_min_k4;
using detail::nearest_int;

// Quantizes the 8 sub-blocks of 32 of one Q4_K/Q5_K super-block: per-sub-block asymmetric
// search, then 6-bit scales and mins relative to the largest of each, then requantization of
// every value with the stored (rounded) scales. Writes d, dmin, scales and L (levels, 0..nmax).
template <typename Block>
void quantize_scale_min_block(const float* x, int nmax, float rmin, int nstep, Block* y,
                              uint8_t* L) {
  float scales[kQK_K / 32];
  float mins[kQK_K / 32];
  float weights[32];
  uint8_t Laux[32];
  float max_scale = 0;  // the min is subtracted, so scales are non-negative
  float max_min = 0;
  for (int j = 0; j < kQK_K / 32; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = detail::make_qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin,
                                         0.1f, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[kQK_K / 32];
  uint8_t lm[kQK_K / 32];
  for (int j = 0; j < kQK_K / 32; ++j) {
    // ggml stores nearest_int into a uint8_t before clamping; keep that wrap-around.
    ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
  }
  detail::store_scale_min_block(x, nmax, ls, lm, max_scale / 63.f, max_min / 63.f, y, L);
}

// Integer part of a K-quant x Q8_K block dot in ggml's generic layout: 8 lane accumulators,
// aux32[l] = sum over groups g of 8 values of scale(g) * q8[8g + l] * a[8g + l]. `group_scale`
// holds one scale per group of 8 (QK_K/8 = 32 entries).
void lane_dot(const int8_t* a, const int8_t* q8, const int* group_scale, int32_t aux32[8]) {
  for (int l = 0; l < 8; ++l) aux32[l] = 0;
  for (int g = 0; g < kQK_K / 8; ++g) {
    for (int l = 0; l < 8; ++l) {
      const int16_t prod = static_cast<int16_t>(q8[8 * g + l] * a[8 * g + l]);
      aux32[l] += group_scale[g] * prod;
    }
  }
}

// Shared tail of the Q4_K/Q5_K dots: `a` holds the 256 unsigned levels of the block.
void accumulate_scale_min_block(const uint8_t* packed_scales, uint16_t d, uint16_t dmin,
                                const int8_t* a, const BlockQ8_K& y, float sums[8], float* sumf) {
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) get_scale_min_k4(j, packed_scales, &sc[j], &mn[j]);
  int sumi = 0;
  for (int j = 0; j < kQK_K / 16; ++j) sumi += y.bsums[j] * mn[j / 2];
  int group_scale[kQK_K / 8];
  for (int g = 0; g < kQK_K / 8; ++g) group_scale[g] = sc[g / 4];
  int32_t aux32[8];
  lane_dot(a, y.qs, group_scale, aux32);
  const float dd = f16_to_f32(d) * y.d;
  for (int l = 0; l < 8; ++l) sums[l] += dd * static_cast<float>(aux32[l]);
  const float dm = f16_to_f32(dmin) * y.d;
  *sumf -= dm * static_cast<float>(sumi);
}

// The 256 levels (0..15) of a Q4_K block, in value order.
void unpack_q4_K(const BlockQ4_K& x, int8_t* a) {
  const uint8_t* q = x.qs;
  for (int j = 0; j < kQK_K; j += 64, q += 32) {
    for (int l = 0; l < 32; ++l) a[j + l] = static_cast<int8_t>(q[l] & 0xF);
    for (int l = 0; l < 32; ++l) a[j + 32 + l] = static_cast<int8_t>(q[l] >> 4);
  }
}

// The 256 levels (0..31) of a Q5_K block, in value order.
void unpack_q5_K(const BlockQ5_K& x, int8_t* a) {
  const uint8_t* q = x.qs;
  uint8_t m = 1;
  for (int j = 0; j < kQK_K; j += 64, q += 32) {
    for (int l = 0; l < 32; ++l) {
      a[j + l] = static_cast<int8_t>((q[l] & 0xF) + (x.qh[l] & m ? 16 : 0));
    }
    m = static_cast<uint8_t>(m << 1);
    for (int l = 0; l < 32; ++l) {
      a[j + 32 + l] = static_cast<int8_t>((q[l] >> 4) + (x.qh[l] & m ? 16 : 0));
    }
    m = static_cast<uint8_t>(m << 1);
  }
}

// Q4_K/Q5_K dequantization: value = d * sc[j] * level - dmin * m[j] in sub-block j of 32.
template <typename Block, void (*kUnpack)(const Block&, int8_t*)>
void to_float_scale_min(const void* src, float* dst, int64_t n) {
  const Block* x = static_cast<const Block*>(src);
  int8_t a[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    const float min = f16_to_f32(x[i].dmin);
    kUnpack(x[i], a);
    float* y = dst + i * kQK_K;
    for (int j = 0; j < kQK_K / 32; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, x[i].scales, &sc, &m);
      const float dj = d * static_cast<float>(sc);
      const float mj = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) y[32 * j + l] = dj * static_cast<float>(a[32 * j + l]) - mj;
    }
  }
}

// Q4_K/Q5_K x Q8_K dot, ggml's generic (8-lane) order.
template <typename Block, void (*kUnpack)(const Block&, int8_t*)>
float vec_dot_scale_min(int64_t n, const void* vx, const void* vy) {
  const Block* x = static_cast<const Block*>(vx);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(vy);
  float sums[8] = {};
  float sumf = 0;
  int8_t a[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    kUnpack(x[i], a);
    accumulate_scale_min_block(x[i].scales, x[i].d, x[i].dmin, a, y[i], sums, &sumf);
  }
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

}  // namespace

// ---------------------------------------------------------------- shared steps (block_steps.h)

namespace detail {

template <typename Block>
void store_scale_min_block(const float* x, int nmax, const uint8_t* ls, const uint8_t* lm, float d,
                           float dmin, Block* y, uint8_t* L) {
  pack_scale_min_k4(ls, lm, y->scales);
  y->d = f32_to_f16(d);
  y->dmin = f32_to_f16(dmin);
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, y->scales, &sc, &m);
    const float dj = f16_to_f32(y->d) * static_cast<float>(sc);
    if (dj == 0.0f) continue;  // keep the search's levels, as ggml does
    const float dm = f16_to_f32(y->dmin) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / dj);
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

template void store_scale_min_block(const float*, int, const uint8_t*, const uint8_t*, float, float,
                                    BlockQ4_K*, uint8_t*);
template void store_scale_min_block(const float*, int, const uint8_t*, const uint8_t*, float, float,
                                    BlockQ5_K*, uint8_t*);

void pack_q4_K_levels(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 64, qs += 32) {
    for (int l = 0; l < 32; ++l) qs[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void pack_q5_K_levels(const uint8_t* L, uint8_t* qh, uint8_t* qs) {
  std::memset(qh, 0, kQK_K / 8);
  uint8_t m1 = 1, m2 = 2;
  for (int j = 0; j < kQK_K; j += 64, qs += 32) {
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
      qs[l] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
  }
}

}  // namespace detail

// ---------------------------------------------------------------- Q4_K

void from_float_q4_K(const float* src, void* dst, int64_t n) {
  BlockQ4_K* y = static_cast<BlockQ4_K*>(dst);
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    quantize_scale_min_block(src + i * kQK_K, 15, -1.0f, 20, &y[i], L);
    detail::pack_q4_K_levels(L, y[i].qs);
  }
}

void to_float_q4_K(const void* src, float* dst, int64_t n) {
  to_float_scale_min<BlockQ4_K, unpack_q4_K>(src, dst, n);
}

float vec_dot_q4_K_q8_K(int64_t n, const void* vx, const void* vy) {
  return vec_dot_scale_min<BlockQ4_K, unpack_q4_K>(n, vx, vy);
}

// ---------------------------------------------------------------- Q5_K

void from_float_q5_K(const float* src, void* dst, int64_t n) {
  BlockQ5_K* y = static_cast<BlockQ5_K*>(dst);
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    quantize_scale_min_block(src + i * kQK_K, 31, -0.5f, 15, &y[i], L);
    detail::pack_q5_K_levels(L, y[i].qh, y[i].qs);
  }
}

void to_float_q5_K(const void* src, float* dst, int64_t n) {
  to_float_scale_min<BlockQ5_K, unpack_q5_K>(src, dst, n);
}

float vec_dot_q5_K_q8_K(int64_t n, const void* vx, const void* vy) {
  return vec_dot_scale_min<BlockQ5_K, unpack_q5_K>(n, vx, vy);
}

// ---------------------------------------------------------------- Q6_K

namespace {

void pack_q6_K(const int8_t* L, BlockQ6_K* y) {
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

// The 256 signed levels (q - 32, in [-32, 31]) of a Q6_K block, in value order.
void unpack_q6_K(const BlockQ6_K& x, int8_t* a) {
  const uint8_t* ql = x.ql;
  const uint8_t* qh = x.qh;
  for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      a[j + l + 0] = static_cast<int8_t>(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
      a[j + l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
      a[j + l + 64] = static_cast<int8_t>(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      a[j + l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

}  // namespace

void detail::quantize_q6_K_block(const float* x, const float* weights, BlockQ6_K* y) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0;
  float max_abs_scale = 0;
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    const float* w = weights != nullptr ? weights + 16 * ib : nullptr;
    scales[ib] = make_qx_quants(16, 32, x + 16 * ib, w, L + 16 * ib);
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
  pack_q6_K(L, y);
}

void from_float_q6_K(const float* src, void* dst, int64_t n) {
  BlockQ6_K* y = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    detail::quantize_q6_K_block(src + i * kQK_K, nullptr, &y[i]);
  }
}

void to_float_q6_K(const void* src, float* dst, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(src);
  int8_t a[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    unpack_q6_K(x[i], a);
    float* y = dst + i * kQK_K;
    for (int j = 0; j < kQK_K; ++j) {
      y[j] = d * static_cast<float>(x[i].scales[j / 16]) * static_cast<float>(a[j]);
    }
  }
}

float vec_dot_q6_K_q8_K(int64_t n, const void* vx, const void* vy) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(vx);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(vy);
  float sums[8] = {};
  float sumf = 0;
  int8_t a[kQK_K];
  int group_scale[kQK_K / 8];
  int32_t aux32[8];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    unpack_q6_K(x[i], a);
    for (int g = 0; g < kQK_K / 8; ++g) group_scale[g] = x[i].scales[g / 2];
    lane_dot(a, y[i].qs, group_scale, aux32);
    const float d = f16_to_f32(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
  }
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

// ---------------------------------------------------------------- Q8_K

void from_float_q8_K(const float* src, void* dst, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    float max = 0;
    float amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      // ggml leaves bsums unwritten here; zero them so the block is fully defined.
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    // -127 (not -128) keeps q symmetric, as ggml (needed by its IQ2 AVX path).
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void to_float_q8_K(const void* src, float* dst, int64_t n) {
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    for (int j = 0; j < kQK_K; ++j) dst[i * kQK_K + j] = x[i].d * static_cast<float>(x[i].qs[j]);
  }
}

}  // namespace quanta::ref
