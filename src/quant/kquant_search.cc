// The K-quant scale searches (ggml make_qx_quants / make_qkx2_quants / make_qp_quants), for
// both the round-to-nearest and the importance-weighted (imatrix) quantizers. Float operations
// keep ggml's order so results are bit-exact; quanta_quant is built without fused multiply-add.
#include "quant/kquant_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace quanta::ref::detail {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml GROUP_MAX_EPS: below this a group is all zero

int clamp_signed(int l, int nmax) {
  return std::max(-nmax, std::min(nmax - 1, l));
}

// Weighted sums for one trial iscale: sumlx = sum w*x*l, suml2 = sum w*l*l, with
// w = weights[i], or x[i]^2 when weights is null.
void qx_sums(int n, int nmax, const float* x, const float* weights, float iscale, float* sumlx,
             float* suml2) {
  *sumlx = 0.0f;
  *suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_signed(nearest_int(iscale * x[i]), nmax);
    const float w = weights != nullptr ? weights[i] : x[i] * x[i];
    const float fl = static_cast<float>(l);
    *sumlx += w * x[i] * fl;
    *suml2 += w * fl * fl;
  }
}

void qx_levels(int n, int nmax, const float* x, float iscale, int8_t* L) {
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<int8_t>(nmax + clamp_signed(nearest_int(iscale * x[i]), nmax));
  }
}

// Levels clamp(round(iscale * (x - min)), 0, nmax).
void asym_levels(int n, int nmax, const float* x, float iscale, float min, uint8_t* L) {
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
  }
}

// sum w * (scale * L + min - x)^2, in ggml's operation order.
float weighted_sq_error(int n, const float* x, const float* weights, const uint8_t* L, float scale,
                        float min) {
  float error = 0;
  for (int i = 0; i < n; ++i) {
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = diff * diff;
    error += weights[i] * diff;
  }
  return error;
}

// Weighted least-squares scale and min for fixed levels L (min clamped to <= 0). False when
// the system is singular (all levels equal).
bool fit_scale_min(int n, const float* x, const float* weights, const uint8_t* L, float sum_w,
                   float sum_x, float* scale, float* min) {
  float sum_l = 0, sum_l2 = 0, sum_xl = 0;
  for (int i = 0; i < n; ++i) {
    const float w = weights[i];
    const float fl = static_cast<float>(L[i]);
    sum_l += w * fl;
    sum_l2 += w * fl * fl;
    sum_xl += w * fl * x[i];
  }
  const float D = sum_w * sum_l2 - sum_l * sum_l;
  if (!(D > 0)) return false;
  *scale = (sum_w * sum_xl - sum_x * sum_l) / D;
  *min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
  if (*min > 0) {
    *min = 0;
    *scale = sum_xl / sum_l2;
  }
  return true;
}

// Weighted squared error of x against scale * min(nmax, round(iscale * x)). NOTE: ggml's
// first trial stores round(iscale * x) in a uint8_t with no clamp; wrap_u8 keeps that.
float grid_error(int n, int nmax, const float* x, const float* w, float iscale, bool wrap_u8) {
  const float scale = 1 / iscale;
  float mse = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int r = nearest_int(iscale * x[i]);
    const int l = wrap_u8 ? static_cast<uint8_t>(r) : std::min(nmax, r);
    const float diff = x[i] - scale * static_cast<float>(l);
    mse += w[i] * diff * diff;
  }
  return mse;
}

}  // namespace

float make_qx_quants(int n, int nmax, const float* x, const float* weights, int8_t* L) {
  float max = 0.0f;
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx, suml2;
  qx_levels(n, nmax, x, iscale, L);
  qx_sums(n, nmax, x, weights, iscale, &sumlx, &suml2);
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    qx_sums(n, nmax, x, weights, iscale, &sumlx, &suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      qx_levels(n, nmax, x, iscale, L);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = fnmax / (max - min);
  float scale = 1 / iscale;
  asym_levels(n, nmax, x, iscale, min, L);
  float best_error = weighted_sq_error(n, x, weights, L, scale, min);
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + fnmax) / (max - min);
    asym_levels(n, nmax, x, iscale, min, Laux);
    float this_scale, this_min;
    if (!fit_scale_min(n, x, weights, Laux, sum_w, sum_x, &this_scale, &this_min)) continue;
    const float cur_error = weighted_sq_error(n, x, weights, Laux, this_scale, this_min);
    if (cur_error < best_error) {
      for (int i = 0; i < n; ++i) L[i] = Laux[i];
      best_error = cur_error;
      scale = this_scale;
      min = this_min;
    }
  }
  *the_min = -min;
  return scale;
}

float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* w) {
  float max = 0.0f;
  for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max == 0.0f) {
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.0f;
  }
  // Coarse search: the grid iscale (nmax + 0.1*is) / max with the least weighted error.
  float iscale = static_cast<float>(nmax) / max;
  float best_mse = grid_error(n, nmax, x, w, iscale, /*wrap_u8=*/true);
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
    const float mse = grid_error(n, nmax, x, w, iscale_is, /*wrap_u8=*/false);
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0.0f;
  float suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    L[i] = static_cast<uint8_t>(l);
    sumlx += w[i] * x[i] * static_cast<float>(l);
    suml2 += w[i] * static_cast<float>(l) * static_cast<float>(l);
  }
  // Coordinate descent: move single levels while the least-squares fit improves.
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w[i] * x[i] * li;
      float sl2 = suml2 - w[i] * li * li;
      if (!(slx > 0 && sl2 > 0)) continue;
      const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
      if (new_l == L[i]) continue;
      const float fl = static_cast<float>(new_l);
      slx += w[i] * x[i] * fl;
      sl2 += w[i] * fl * fl;
      if (slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<uint8_t>(new_l);
        sumlx = slx;
        suml2 = sl2;
        ++n_changed;
      }
    }
    if (n_changed == 0) break;
  }
  return sumlx / suml2;
}

void pack_scale_min_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* q) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      q[j] = ls[j];
      q[j + 4] = lm[j];
    } else {
      q[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      q[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      q[j - 0] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

}  // namespace quanta::ref::detail
