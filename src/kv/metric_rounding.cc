// Q4_0 rounding of a quantized KV cache's stored rows under a metric (the queries' second
// moment for keys, the output projection's for values, in the stored basis): levels and scales
// chosen to make the error small as e^T S e instead of |e|^2; ordinary block_q4_0 output.
// Scalar reference code; the AVX2 kernels (kernels/x86_avx2/kv_rounding_avx2.h, unless
// QUANTA_FORCE_ISA=ref) give the same bytes.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/kernel_table.h"
#if defined(__x86_64__)
#include "kernels/x86_avx2/kv_rounding_avx2.h"
#endif
#include "kv/kv_transform.h"
#include "quant/blocks.h"
#include "quant/weighted.h"

namespace quanta::kv {

#if defined(__x86_64__)
static_assert(kQ4Block == kernels::avx2::kKvQ4Block && kBeamWidth == kernels::avx2::kKvBeamWidth,
              "the AVX2 searches' block and beam sizes");
#endif

void metric_factor(const float* s, int32_t n, float* l) {
  double trace = 0.0;
  for (int32_t i = 0; i < n; ++i) trace += s[i * n + i];
  const double ridge = 1e-6 * std::max(trace, 1e-30) / n;
  std::fill(l, l + static_cast<size_t>(n) * n, 0.0f);
  for (int32_t j = 0; j < n; ++j) {  // Cholesky-Banachiewicz, column j below the diagonal
    double diag = s[j * n + j] + ridge;
    for (int32_t k = 0; k < j; ++k) diag -= static_cast<double>(l[j * n + k]) * l[j * n + k];
    const double ljj = std::sqrt(std::max(diag, ridge));
    l[j * n + j] = static_cast<float>(ljj);
    for (int32_t i = j + 1; i < n; ++i) {
      double acc = s[i * n + j];
      for (int32_t k = 0; k < j; ++k) acc -= static_cast<double>(l[i * n + k]) * l[j * n + k];
      l[i * n + j] = static_cast<float>(acc / ljj);
    }
  }
}

namespace {

// Error (x - d l)^T S (x - d l) of one 32-value block, summed over its heads (metrics of the
// block's heads contiguous, hd x hd each).
// Sums S r as rows r_i S_i (S symmetric): axpys, which vectorize.
double block_error(const float* xb, const int8_t* l, float d, int32_t hd, const float* metrics) {
  float r[kQ4Block], sr[kQ4Block];
  for (int32_t i = 0; i < kQ4Block; ++i) r[i] = xb[i] - d * static_cast<float>(l[i]);
  double total = 0.0;
  for (int32_t s = 0; s < kQ4Block; s += hd) {
    const float* m = metrics + (s / hd) * hd * hd;
    std::fill(sr, sr + hd, 0.0f);
    for (int32_t i = 0; i < hd; ++i) {
      const float ri = r[s + i];
      for (int32_t j = 0; j < hd; ++j) sr[j] += ri * m[i * hd + j];
    }
    for (int32_t j = 0; j < hd; ++j) total += static_cast<double>(r[s + j]) * sr[j];
  }
  return total;
}

// One head's levels l in [-8, 7] for scale d: the best floor/ceil choice of every x_i / d under
// the metric (all 2^hd, in Gray-code order, one level changing per step; hd <= kExhaustiveDim;
// HD > 0 fixes hd at compile time).
template <int32_t HD>
void exhaustive_levels(const float* x, const float* metric, int32_t hd_runtime, float d,
                       int8_t* l) {
  const int32_t hd = HD > 0 ? HD : hd_runtime;
  float g[kExhaustiveDim];
  int8_t cur[kExhaustiveDim];
  float r[kExhaustiveDim];
  for (int32_t i = 0; i < hd; ++i) {
    cur[i] = static_cast<int8_t>(std::clamp(static_cast<int32_t>(std::floor(x[i] / d)), -8, 7));
    r[i] = x[i] / d - cur[i];
  }
  float f = 0.0f;  // r^T S r, with g = S r
  for (int32_t i = 0; i < hd; ++i) {
    float acc = 0.0f;
    for (int32_t j = 0; j < hd; ++j) acc += metric[i * hd + j] * r[j];
    g[i] = acc;
    f += r[i] * acc;
  }
  uint32_t fixed = 0;  // levels already at 7 cannot move up
  for (int32_t i = 0; i < hd; ++i) fixed |= static_cast<uint32_t>(cur[i] == 7) << i;
  float fbest = f;
  uint32_t best_code = 0;  // Gray code: bit i set = level i one up from cur
  for (uint32_t k = 1; k < (1u << hd); ++k) {
    const int32_t i = __builtin_ctz(k);
    if ((fixed >> i) & 1u) continue;
    const uint32_t next = k ^ (k >> 1);
    const float step = (next >> i) & 1u ? 1.0f : -1.0f;
    // Moving level i by `step` (r_i -= step) changes the error by -2 step g_i + S_ii (S
    // symmetric: row i is column i).
    f += -2.0f * step * g[i] + metric[i * hd + i];
    const float* row = metric + i * hd;
    for (int32_t j = 0; j < hd; ++j) g[j] -= step * row[j];
    if (f < fbest) fbest = f, best_code = next & ~fixed;
  }
  for (int32_t i = 0; i < hd; ++i) l[i] = static_cast<int8_t>(cur[i] + ((best_code >> i) & 1u));
}

// Local search on one head's levels: single-level moves that lower r^T S r (r = x / d - l)
// until none does.
void search_levels(const float* x, const float* metric, int32_t hd, float d, int8_t* l) {
  float r[kQ4Block], g[kQ4Block];
  for (int32_t i = 0; i < hd; ++i) r[i] = x[i] / d - l[i];
  std::fill(g, g + hd, 0.0f);
  for (int32_t j = 0; j < hd; ++j) {  // g = S r as axpys (S symmetric)
    for (int32_t i = 0; i < hd; ++i) g[i] += r[j] * metric[j * hd + i];
  }
  for (int32_t pass = 0; pass < 8; ++pass) {
    bool moved = false;
    for (int32_t i = 0; i < hd; ++i) {
      const float sii = metric[i * hd + i];
      for (int32_t step : {1, -1}) {
        const int32_t to = l[i] + step;
        if (to < -8 || to > 7) continue;
        if (-2.0f * step * g[i] + sii < -1e-7f * sii) {  // r -> r - step e_i lowers the error
          l[i] = static_cast<int8_t>(to);
          r[i] -= step;
          for (int32_t j = 0; j < hd; ++j) g[j] -= step * metric[j * hd + i];
          moved = true;
          break;
        }
      }
    }
    if (!moved) break;
  }
}

// One head's levels l (n <= kQ4Block values) for scale d making r^T S r small, r = x / d - l,
// S = L L^T (L lower triangular, row-major): |L^T r|^2, whose component i depends on r_i..r_n-1
// only. Levels are decided from the last value to the first, each step extending every kept
// partial choice by the floor and the ceiling of its own nearest-plane target and keeping the
// kBeamWidth of smallest partial cost (width 1 would be Babai's rounding). Per kept
// choice, z holds sum over decided j of L_jk r_j for the undecided k (row j of L: an axpy).
void beam_levels(const float* x, const float* lf, int32_t n, float d, int8_t* l) {
  float z[2][kBeamWidth][kQ4Block];
  float cost[kBeamWidth], cand_cost[2 * kBeamWidth], cand_res[2 * kBeamWidth];
  int8_t parent[kQ4Block][kBeamWidth], level[kQ4Block][kBeamWidth];
  int8_t cand_parent[2 * kBeamWidth], cand_level[2 * kBeamWidth];
  int32_t order[2 * kBeamWidth];
  int32_t n_keep = 1, cur = 0;
  cost[0] = 0.0f;
  std::fill(z[0][0], z[0][0] + n, 0.0f);
  for (int32_t i = n - 1; i >= 0; --i) {
    const float u = x[i] / d, lii = lf[i * n + i], inv_lii = 1.0f / lii;
    int32_t n_cand = 0;
    for (int32_t p = 0; p < n_keep; ++p) {
      const float acc = z[cur][p][i];
      const float target = std::clamp(u + acc * inv_lii, -16.0f, 16.0f);
      const int32_t t = static_cast<int32_t>(target);  // floor without a libm call
      const int32_t f = t - (target < static_cast<float>(t) ? 1 : 0);
      const int32_t lo = std::clamp(f, -8, 7), hi = std::clamp(f + 1, -8, 7);
      for (int32_t lv = lo; lv <= hi; ++lv) {
        const float res = u - static_cast<float>(lv), comp = lii * res + acc;
        cand_cost[n_cand] = cost[p] + comp * comp;
        cand_res[n_cand] = res;
        cand_parent[n_cand] = static_cast<int8_t>(p);
        cand_level[n_cand++] = static_cast<int8_t>(lv);
      }
    }
    // The kBeamWidth cheapest candidates, in order (insertion into a short sorted list).
    n_keep = 0;
    for (int32_t c = 0; c < n_cand; ++c) {
      if (n_keep == kBeamWidth && cand_cost[c] >= cand_cost[order[n_keep - 1]]) continue;
      int32_t at = n_keep < kBeamWidth ? n_keep++ : n_keep - 1;
      for (; at > 0 && cand_cost[order[at - 1]] > cand_cost[c]; --at) order[at] = order[at - 1];
      order[at] = c;
    }
    const float* row = lf + i * n;
    for (int32_t k = 0; k < n_keep; ++k) {
      const int32_t c = order[k];
      const float* from = z[cur][cand_parent[c]];
      float* to = z[cur ^ 1][k];
      for (int32_t j = 0; j < i; ++j) to[j] = from[j] + row[j] * cand_res[c];
      cost[k] = cand_cost[c];
      parent[i][k] = cand_parent[c];
      level[i][k] = cand_level[c];
    }
    cur ^= 1;
  }
  int32_t best = 0;
  for (int32_t k = 1; k < n_keep; ++k) best = cost[k] < cost[best] ? k : best;
  for (int32_t i = 0, p = best; i < n; ++i) {  // back from the best complete choice
    l[i] = level[i][p];
    p = parent[i][p];
  }
}


// block_error, by the AVX2 code where `simd` allows (the same value).
double error_of(const float* xb, const int8_t* l, float d, int32_t hd, const float* metrics,
                bool simd) {
#if defined(__x86_64__)
  if (simd && (hd == 8 || hd == 16 || hd == 32)) {
    return kernels::avx2::kv_block_error(xb, l, d, hd, metrics);
  }
#endif
  return block_error(xb, l, d, hd, metrics);
}

// The least-squares scale of levels l at scale d in the metric: f16(num / den) for num =
// sum l_i S_ij x_j, den = sum l_i S_ij l_j, summed in double in (head, i, j) order; false
// (no scale) unless den > 0 and num has the sign of d (ggml's scales are negative when the
// largest magnitude is positive).
bool ordered_least_squares_scale(const float* xb, const int8_t* l, float d, int32_t hd,
                                 const float* mb, float* dls) {
  double num = 0.0, den = 0.0;
  for (int32_t s = 0; s < kQ4Block; s += hd) {
    const float* m = mb + (s / hd) * hd * hd;
    for (int32_t i = 0; i < hd; ++i) {
      for (int32_t j = 0; j < hd; ++j) {
        num += static_cast<double>(l[s + i]) * m[i * hd + j] * xb[s + j];
        den += static_cast<double>(l[s + i]) * m[i * hd + j] * l[s + j];
      }
    }
  }
  if (!(den > 0.0 && num * d > 0.0)) return false;
  *dls = f16_to_f32(f32_to_f16(static_cast<float>(num / den)));
  return true;
}

// ordered_least_squares_scale's answer, from the faster sums where they settle it: with the
// ordered sums within 4e-13 of the magnitudes of these (twice gamma_1024 = 2.3e-13, with
// room for the rounding of the bounds), the signs are certain where the bounds agree, and
// the scale where every corner of the box rounds to the same f16 (division and rounding are
// monotone). Else the ordered sums.
bool least_squares_scale(const float* xb, const int8_t* l, float d, int32_t hd, const float* mb,
                         bool simd, float* dls) {
#if defined(__x86_64__)
  if (simd && hd % 4 == 0 && d != 0.0f) {
    double sums[4];
    kernels::avx2::kv_least_squares_sums(xb, l, hd, mb, sums);
    const double en = 4e-13 * sums[2], ed = 4e-13 * sums[3];
    const double num_lo = sums[0] - en, num_hi = sums[0] + en;
    const double den_lo = sums[1] - ed, den_hi = sums[1] + ed;
    if (den_hi <= 0.0) return false;                           // den <= 0 for certain
    if (d > 0.0f ? num_hi < 0.0 : num_lo > 0.0) return false;  // num of the other sign
    const bool num_sure = d > 0.0f ? num_lo > 0.0 : num_hi < 0.0;
    if (den_lo > 0.0 && num_sure) {
      uint16_t h[4];
      const double corners[4] = {num_lo / den_lo, num_lo / den_hi, num_hi / den_lo,
                                 num_hi / den_hi};
      for (int32_t k = 0; k < 4; ++k) h[k] = f32_to_f16(static_cast<float>(corners[k]));
      if (h[0] == h[1] && h[0] == h[2] && h[0] == h[3]) {
        *dls = f16_to_f32(h[0]);
        return true;
      }
    }
  }
#endif
  return ordered_least_squares_scale(xb, l, d, hd, mb, dls);
}

// A block's levels l[c] for each of `count` (at most kMaxScales) scales: per head, the
// exhaustive choice for small heads, else the beam search with a metric factor (the AVX2 one
// where `simd`: the same levels) or nearest rounding without; then the local search.
constexpr int32_t kMaxScales = 2 * kScaleCandidates + 1;
void levels_for(const float* xb, const float* scales, int32_t count, int32_t hd,
                const float* metrics, const float* factors, bool simd, int8_t (*l)[kQ4Block]) {
  QUANTA_ASSERT(count <= kMaxScales);
  for (int32_t s = 0; s < kQ4Block; s += hd) {
    const float* m = metrics + (s / hd) * hd * hd;
    const float* lf = factors != nullptr ? factors + (s / hd) * hd * hd : nullptr;
    int8_t* head[kMaxScales];
    for (int32_t c = 0; c < count; ++c) head[c] = l[c] + s;
    uint32_t done = 0;
#if defined(__x86_64__)
    if (simd && lf != nullptr && hd > kExhaustiveDim) {
      done = kernels::avx2::kv_beam_levels(xb + s, lf, hd, scales, count, head);
    }
#endif
    for (int32_t c = 0; c < count; ++c) {
      const float d = scales[c];
      if ((done >> c) & 1u) {
      } else if (hd == kExhaustiveDim) {
        exhaustive_levels<kExhaustiveDim>(xb + s, m, hd, d, head[c]);
      } else if (hd < kExhaustiveDim) {
        exhaustive_levels<0>(xb + s, m, hd, d, head[c]);
      } else if (lf != nullptr) {
        beam_levels(xb + s, lf, hd, d, head[c]);
      } else {
        for (int32_t i = 0; i < hd; ++i) {
          head[c][i] = static_cast<int8_t>(
              std::clamp(static_cast<int32_t>(std::lround(xb[s + i] / d)), -8, 7));
        }
      }
#if defined(__x86_64__)
      if (simd && (hd == 8 || hd == 16 || hd == 32)) {
        kernels::avx2::kv_search_levels(xb + s, m, hd, d, head[c]);
        continue;
      }
#endif
      search_levels(xb + s, m, hd, d, head[c]);
    }
  }
}

}  // namespace

void quantize_q4_0_under_metric(const float* x, void* dst, int64_t n, int32_t head_dim,
                                const float* metrics, const float* factors) {
  QUANTA_ASSERT(n % kQ4Block == 0);
  // ggml's scale search over the whole row first (its weights use the row's mean square).
  thread_local std::vector<float> ones;
  if (static_cast<int64_t>(ones.size()) < n) ones.assign(n, 1.0f);
  quantize_row_weighted(GgmlType::Q4_0, x, dst, n, ones.data());
  const int32_t hd = head_dim;
  const bool whole_heads = hd <= kQ4Block && kQ4Block % hd == 0;
  BlockQ4_0* blocks = static_cast<BlockQ4_0*>(dst);
  const bool simd = kernels::avx2_active();  // same bits either way
  for (int64_t b = 0; b < n / kQ4Block; ++b) {
    BlockQ4_0& blk = blocks[b];
    const float* xb = x + b * kQ4Block;
    const float d0 = f16_to_f32(blk.d);
    if (!whole_heads || d0 == 0.0f) continue;
    const float* mb = metrics + (b * kQ4Block / hd) * hd * hd;
    const float* fb = factors != nullptr ? factors + (b * kQ4Block / hd) * hd * hd : nullptr;
    // ggml's scale first, then the candidates around it: the first smallest error wins.
    float scales[kMaxScales];
    int8_t levels[kMaxScales][kQ4Block], l[kQ4Block], trial[1][kQ4Block];
    scales[0] = d0;
    for (int32_t c = 1; c <= kScaleCandidates; ++c) {
      scales[c] = f16_to_f32(f32_to_f16(d0 * (1.0f + kScaleStep * (c - kScaleCandidates - 1))));
      scales[c + kScaleCandidates] = f16_to_f32(f32_to_f16(d0 * (1.0f + kScaleStep * c)));
    }
    levels_for(xb, scales, kMaxScales, hd, mb, fb, simd, levels);
    float d = d0;
    int32_t pick = 0;
    double best = error_of(xb, levels[0], d0, hd, mb, simd);
    for (int32_t c = 1; c < kMaxScales; ++c) {
      const double e = error_of(xb, levels[c], scales[c], hd, mb, simd);
      if (e < best) best = e, d = scales[c], pick = c;
    }
    std::copy(levels[pick], levels[pick] + kQ4Block, l);
    // The best levels' least-squares scale in the metric, its levels searched again.
    float dls = 0.0f;
    // A scale already tried would give its levels and error again: no better.
    if (least_squares_scale(xb, l, d, hd, mb, simd, &dls) &&
        std::find(scales, scales + kMaxScales, dls) == scales + kMaxScales) {
      levels_for(xb, &dls, 1, hd, mb, fb, simd, trial);
      const double e = error_of(xb, trial[0], dls, hd, mb, simd);
      if (e < best) best = e, d = dls, std::copy(trial[0], trial[0] + kQ4Block, l);
    }
    blk.d = f32_to_f16(d);
    for (int32_t j = 0; j < kQ4Block / 2; ++j) {
      blk.qs[j] = static_cast<uint8_t>((l[j] + 8) | ((l[j + kQ4Block / 2] + 8) << 4));
    }
  }
}

}  // namespace quanta::kv
