// Importance-weighted scale searches (ggml's quant_weights path). Each keeps ggml's float
// operation order; the compile flags of quanta_quant forbid fused multiply-adds.
#include "quant/weighted_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/kquant_search.h"

namespace quanta::ref::detail {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml GROUP_MAX_EPS

int clamp_level(int l, int lo, int hi) { return std::max(lo, std::min(hi, l)); }

// sum w*x*l and sum w*l*l for the levels round(iscale * x) clamped to [-nmax, nmax - 1].
void symmetric_sums(int n, int nmax, const float* x, const float* w, float iscale, float* sumlx,
                    float* suml2) {
  *sumlx = 0.0f;
  *suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float l = static_cast<float>(clamp_level(nearest_int(iscale * x[i]), -nmax, nmax - 1));
    *sumlx += w[i] * x[i] * l;
    *suml2 += w[i] * l * l;
  }
}

void symmetric_levels(int n, int nmax, const float* x, float iscale, int8_t* L) {
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<int8_t>(nmax + clamp_level(nearest_int(iscale * x[i]), -nmax, nmax - 1));
  }
}

// Levels clamp(round(iscale * (x - min)), 0, nmax) with their weighted sums.
void asymmetric_levels(int n, int nmax, const float* x, const float* w, float iscale, float min,
                       uint8_t* L, float* sum_l, float* sum_l2, float* sum_xl) {
  *sum_l = *sum_l2 = *sum_xl = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_level(nearest_int(iscale * (x[i] - min)), 0, nmax);
    L[i] = static_cast<uint8_t>(l);
    const float fl = static_cast<float>(l);
    *sum_l += w[i] * fl;
    *sum_l2 += w[i] * fl * fl;
    *sum_xl += w[i] * fl * x[i];
  }
}

// sum w * (scale * L + min - x)^2.
float asymmetric_error(int n, const float* x, const float* w, const uint8_t* L, float scale,
                       float min) {
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = diff * diff;
    err += w[i] * diff;
  }
  return err;
}

// Weighted squared error of x against scale * min(nmax, round(iscale * x)).
float grid_error(int n, int nmax, const float* x, const float* w, float iscale) {
  const float scale = 1 / iscale;
  float mse = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    const float diff = x[i] - scale * static_cast<float>(l);
    mse += w[i] * diff * diff;
  }
  return mse;
}

}  // namespace

float make_qx_quants_weighted(int n, int nmax, const float* x, const float* w, int8_t* L) {
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
    std::memset(L, 0, static_cast<size_t>(n));
    return 0.0f;
  }
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx, suml2;
  symmetric_levels(n, nmax, x, iscale, L);
  symmetric_sums(n, nmax, x, w, iscale, &sumlx, &suml2);
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    symmetric_sums(n, nmax, x, w, iscale, &sumlx, &suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      symmetric_levels(n, nmax, x, iscale, L);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float make_qkx3_quants(int n, int nmax, const float* x, const float* w, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0];
  float max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max <= min) {
    std::memset(L, 0, static_cast<size_t>(n));
    *the_min = -min;
    return 0.0f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = fnmax / (max - min);
  float scale = 1 / iscale;
  float unused_l, unused_l2, unused_xl;
  asymmetric_levels(n, nmax, x, w, iscale, min, L, &unused_l, &unused_l2, &unused_xl);
  float best_error = asymmetric_error(n, x, w, L, scale, min);
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + fnmax) / (max - min);
    float sum_l, sum_l2, sum_xl;
    asymmetric_levels(n, nmax, x, w, iscale, min, Laux, &sum_l, &sum_l2, &sum_xl);
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    const float err = asymmetric_error(n, x, w, Laux, this_scale, this_min);
    if (err < best_error) {
      std::memcpy(L, Laux, static_cast<size_t>(n));
      best_error = err;
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
  {
    const float scale = 1 / iscale;
    float best_mse = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float diff = x[i] - scale * static_cast<float>(static_cast<uint8_t>(nearest_int(iscale * x[i])));
      best_mse += w[i] * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
      if (is == 0) continue;
      const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
      const float mse = grid_error(n, nmax, x, w, iscale_is);
      if (mse < best_mse) {
        best_mse = mse;
        iscale = iscale_is;
      }
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

}  // namespace quanta::ref::detail
