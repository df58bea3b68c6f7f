// Quantization error bounds for the quant tests, derived from each format's grid:
// a worst-case per-element bound for F16/BF16 and the legacy types, and an RMS error model
// (uniform rounding noise on the ideal grid plus scale-storage terms) for every type.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "quant/types.h"

namespace quanta::testing {

// Largest |f16(v) - v| for a value v in F16 range: half an ulp, 2^-11 relative for normal
// values and 2^-25 absolute (half the subnormal spacing) below 2^-14.
inline double f16_err(double v) {
  return std::max(std::ldexp(std::fabs(v), -11), std::ldexp(1.0, -25));
}

// Block statistics over x[b, e).
inline double block_amax(const std::vector<float>& x, int64_t b, int64_t e) {
  double m = 0;
  for (int64_t i = b; i < e; ++i) m = std::max(m, static_cast<double>(std::fabs(x[i])));
  return m;
}
inline double block_signed_max(const std::vector<float>& x, int64_t b, int64_t e) {
  double amax = 0, max = 0;
  for (int64_t i = b; i < e; ++i) {
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), max = x[i];
  }
  return max;
}
inline void block_lo_hi(const std::vector<float>& x, int64_t b, int64_t e, double* lo, double* hi) {
  *lo = x[b], *hi = x[b];
  for (int64_t i = b; i < e; ++i) {
    *lo = std::min(*lo, static_cast<double>(x[i]));
    *hi = std::max(*hi, static_cast<double>(x[i]));
  }
}

// Worst-case bound for element i of a 32-block starting at s of a legacy type (see below).
inline double legacy_bound(GgmlType type, const std::vector<float>& x, int64_t s, int64_t i) {
  if (type == GgmlType::Q8_0) {
    const double d = block_amax(x, s, s + 32) / 127;
    return d / 2 + 127 * f16_err(d);
  }
  if (type == GgmlType::Q4_0 || type == GgmlType::Q5_0) {
    const double half = type == GgmlType::Q4_0 ? 8 : 16;
    const double d = block_signed_max(x, s, s + 32) / -half;
    const double t = d != 0 ? x[i] / d : 0;
    return std::fabs(d) * std::max(0.5, t - (half - 1)) + half * f16_err(d);
  }
  const double levels = type == GgmlType::Q4_1 ? 15 : 31;
  double lo, hi;
  block_lo_hi(x, s, s + 32, &lo, &hi);
  const double d = (hi - lo) / levels;
  return d / 2 + levels * f16_err(d) + f16_err(lo);
}

// Per-element worst-case |dequant(quant(x)) - x| for the types whose scale is a closed-form
// function of the block (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_1, Q5_1). With d the ideal
// (f32) scale and d' = f16(d), |x - q d'| <= |x - q d| + |q| |d - d'|:
//   Q8_0: d = amax/127, q = round(x/d): d/2 + 127 f16_err(d) (the ggml "amax/254" bound).
//   Q4_0/Q5_0: d = -max/8 (/16), levels -8..7 (-16..15); t = x/d lies in [-8, 8]: the value
//     at t > 7.5 (the opposite extreme) is clamped to 7, so err <= d * max(1/2, t - 7).
//   Q4_1/Q5_1: d = (max - min)/15 (/31), levels 0..15 (0..31) above min, min stored in F16:
//     d/2 + 15 f16_err(d) + f16_err(min).
// Returns one bound per element (empty for types without a closed form).
inline std::vector<double> worst_case_bounds(GgmlType type, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<double> b(x.size(), 0.0);
  switch (type) {
    case GgmlType::F32:
      return b;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) b[i] = f16_err(x[i]);
      return b;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) b[i] = std::ldexp(std::fabs(x[i]), -8);
      return b;
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
      for (int64_t i = 0; i < n; ++i) {
        // slack for the f32 arithmetic of the quantizer (1/d, x * id)
        b[i] = legacy_bound(type, x, i / 32 * 32, i) * (1 + 1e-5) + 1e-30;
      }
      return b;
    default:
      return {};
  }
}

// Sum over x of the modelled squared error of the symmetric and offset legacy types.
inline double legacy_sq_error(GgmlType type, const std::vector<float>& x) {
  double acc = 0;
  for (int64_t s = 0; s < static_cast<int64_t>(x.size()); s += 32) {
    double d = 0, lo = 0, hi = 0;
    const bool offset = type == GgmlType::Q4_1 || type == GgmlType::Q5_1;
    if (offset) {
      block_lo_hi(x, s, s + 32, &lo, &hi);
      d = (hi - lo) / (type == GgmlType::Q4_1 ? 15 : 31);
    } else {
      const double levels = type == GgmlType::Q8_0 ? 127 : type == GgmlType::Q4_0 ? 8 : 16;
      d = block_amax(x, s, s + 32) / levels;
    }
    if (d == 0 && !offset) continue;
    for (int64_t i = s; i < s + 32; ++i) {
      const double se = offset ? (d > 0 ? (x[i] - lo) / d * f16_err(d) : 0) + f16_err(lo)
                               : std::fabs(x[i]) / d * f16_err(d);
      acc += d * d / 12 + se * se;
    }
  }
  return acc;
}

inline double q6_K_sq_error(const std::vector<float>& x) {
  double acc = 0;
  for (int64_t s = 0; s < static_cast<int64_t>(x.size()); s += 256) {
    double m = 0;
    for (int j = 0; j < 16; ++j) m = std::max(m, block_amax(x, s + 16 * j, s + 16 * j + 16) / 32);
    if (m == 0) continue;
    const double d = m / 128;
    for (int j = 0; j < 16; ++j) {
      const double step = block_amax(x, s + 16 * j, s + 16 * j + 16) / 32 + m / 256;
      for (int64_t i = s + 16 * j; i < s + 16 * j + 16; ++i) {
        const double se = std::fabs(x[i]) / d * f16_err(d);
        acc += step * step / 12 + se * se;
      }
    }
  }
  return acc;
}

inline double scale_min_K_sq_error(GgmlType type, const std::vector<float>& x) {
  const double levels = type == GgmlType::Q4_K ? 15 : 31;
  double acc = 0;
  for (int64_t s = 0; s < static_cast<int64_t>(x.size()); s += 256) {
    double step[8], off[8], smax = 0, mmax = 0;
    for (int j = 0; j < 8; ++j) {
      double lo, hi;
      block_lo_hi(x, s + 32 * j, s + 32 * j + 32, &lo, &hi);
      lo = std::min(lo, 0.0);
      step[j] = (hi - lo) / levels;
      off[j] = -lo;
      smax = std::max(smax, step[j]);
      mmax = std::max(mmax, off[j]);
    }
    const double d = smax / 63, dmin = mmax / 63;
    for (int j = 0; j < 8; ++j) {
      const double st = step[j] + smax / 126;
      for (int64_t i = s + 32 * j; i < s + 32 * j + 32; ++i) {
        const double se = (d > 0 ? std::fabs(x[i] + off[j]) / d * f16_err(d) : 0) +
                          (dmin > 0 ? 63 * f16_err(dmin) : 0) + mmax / 126;
        acc += st * st / 12 + se * se;
      }
    }
  }
  return acc;
}

// Modelled mean squared error of quantizing x: per element step^2/12 (uniform rounding on
// the ideal grid) plus the squared worst-case error of storing the scales, where
//   Q8_0/Q4_0/Q5_0: step = amax/127 (/8, /16) per 32-block; scale error |x|/d * f16_err(d).
//   Q4_1/Q5_1: step = range/15 (/31); scale and min errors as above.
//   Q6_K: step = amax_j/32 per 16-sub-block plus M/256 (8-bit sub-scale rounding, M the
//     largest sub-block step); super-scale d = M/128 stored in F16.
//   Q4_K/Q5_K: step = range_j/15 (/31) per 32-sub-block (range including 0) plus S/126 (6-bit
//     sub-scale rounding, S the largest step); min error M/126 + 63 f16_err(M/63) (6-bit
//     mins, F16 dmin); F16 d = S/63.
//   F16/BF16: uniform error within half an ulp: bound^2/3.  F32: 0.
inline double modelled_mse(GgmlType type, const std::vector<float>& x) {
  const double n = static_cast<double>(x.size());
  switch (type) {
    case GgmlType::F16:
    case GgmlType::BF16: {
      double acc = 0;
      for (double v : worst_case_bounds(type, x)) acc += v * v / 3;
      return acc / n;
    }
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
      return legacy_sq_error(type, x) / n;
    case GgmlType::Q6_K:
      return q6_K_sq_error(x) / n;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
      return scale_min_K_sq_error(type, x) / n;
    default:
      return 0;  // F32 is exact
  }
}

}  // namespace quanta::testing
