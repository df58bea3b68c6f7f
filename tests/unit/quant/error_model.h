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

// Per-element worst-case |dequant(quant(x)) - x| for the types whose scale is a closed-form
// function of the block (F16, BF16, Q8_0, Q4_0, Q5_0, Q4_1, Q5_1). With d the ideal (f32)
// scale and d' = f16(d), |x - q d'| <= |x - q d| + |q| |d - d'|:
//   Q8_0: d = amax/127, q = round(x/d): d/2 + 127 f16_err(d) (the ggml "amax/254" bound).
//   Q4_0/Q5_0: d = -max/8 (/16), levels -8..7 (-16..15); t = x/d lies in [-8, 8]: the value
//     at t > 7.5 (the opposite extreme) is clamped to 7, so err <= d * max(1/2, t - 7).
//   Q4_1/Q5_1: d = (max - min)/15 (/31), levels 0..15 (0..31) above min, min stored in F16:
//     d/2 + 15 f16_err(d) + f16_err(min).
// Returns one bound per element (empty for types without a closed form).
inline std::vector<double> worst_case_bounds(GgmlType type, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<double> b(x.size(), 0.0);
  auto block_extremes = [&](int64_t s, double* amax, double* signed_max, double* mn, double* mx) {
    *amax = 0, *signed_max = 0, *mn = x[s], *mx = x[s];
    for (int64_t i = s; i < s + 32; ++i) {
      if (std::fabs(x[i]) > *amax) *amax = std::fabs(x[i]), *signed_max = x[i];
      *mn = std::min(*mn, static_cast<double>(x[i]));
      *mx = std::max(*mx, static_cast<double>(x[i]));
    }
  };
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
      break;
    default:
      return {};
  }
  for (int64_t s = 0; s < n; s += 32) {
    double amax, smax, mn, mx;
    block_extremes(s, &amax, &smax, &mn, &mx);
    for (int64_t i = s; i < s + 32; ++i) {
      double bound = 0;
      if (type == GgmlType::Q8_0) {
        const double d = amax / 127;
        bound = d / 2 + 127 * f16_err(d);
      } else if (type == GgmlType::Q4_0 || type == GgmlType::Q5_0) {
        const double half = type == GgmlType::Q4_0 ? 8 : 16;
        const double d = smax / -half;
        const double t = d != 0 ? x[i] / d : 0;
        bound = std::fabs(d) * std::max(0.5, t - (half - 1)) + half * f16_err(d);
      } else {
        const double levels = type == GgmlType::Q4_1 ? 15 : 31;
        const double d = (mx - mn) / levels;
        bound = d / 2 + levels * f16_err(d) + f16_err(mn);
      }
      b[i] = bound * (1 + 1e-5) + 1e-30;  // slack for the f32 arithmetic of the quantizer
    }
  }
  return b;
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
  const int64_t n = static_cast<int64_t>(x.size());
  double acc = 0;
  auto amax = [&](int64_t b, int64_t e) {
    double m = 0;
    for (int64_t i = b; i < e; ++i) m = std::max(m, static_cast<double>(std::fabs(x[i])));
    return m;
  };
  auto lo_hi = [&](int64_t b, int64_t e, double* lo, double* hi) {
    *lo = x[b], *hi = x[b];
    for (int64_t i = b; i < e; ++i) {
      *lo = std::min(*lo, static_cast<double>(x[i]));
      *hi = std::max(*hi, static_cast<double>(x[i]));
    }
  };
  switch (type) {
    case GgmlType::F32:
      return 0;
    case GgmlType::F16:
    case GgmlType::BF16: {
      const std::vector<double> b = worst_case_bounds(type, x);
      for (double v : b) acc += v * v / 3;
      return acc / n;
    }
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q5_0: {
      const double levels = type == GgmlType::Q8_0 ? 127 : type == GgmlType::Q4_0 ? 8 : 16;
      for (int64_t s = 0; s < n; s += 32) {
        const double d = amax(s, s + 32) / levels;
        if (d == 0) continue;
        for (int64_t i = s; i < s + 32; ++i) {
          const double se = std::fabs(x[i]) / d * f16_err(d);
          acc += d * d / 12 + se * se;
        }
      }
      return acc / n;
    }
    case GgmlType::Q4_1:
    case GgmlType::Q5_1: {
      const double levels = type == GgmlType::Q4_1 ? 15 : 31;
      for (int64_t s = 0; s < n; s += 32) {
        double lo, hi;
        lo_hi(s, s + 32, &lo, &hi);
        const double d = (hi - lo) / levels;
        for (int64_t i = s; i < s + 32; ++i) {
          const double se = (d > 0 ? (x[i] - lo) / d * f16_err(d) : 0) + f16_err(lo);
          acc += d * d / 12 + se * se;
        }
      }
      return acc / n;
    }
    case GgmlType::Q6_K: {
      for (int64_t s = 0; s < n; s += 256) {
        double m = 0;
        for (int j = 0; j < 16; ++j) m = std::max(m, amax(s + 16 * j, s + 16 * j + 16) / 32);
        if (m == 0) continue;
        const double d = m / 128;
        for (int j = 0; j < 16; ++j) {
          const double step = amax(s + 16 * j, s + 16 * j + 16) / 32 + m / 256;
          for (int64_t i = s + 16 * j; i < s + 16 * j + 16; ++i) {
            const double se = std::fabs(x[i]) / d * f16_err(d);
            acc += step * step / 12 + se * se;
          }
        }
      }
      return acc / n;
    }
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {
      const double levels = type == GgmlType::Q4_K ? 15 : 31;
      for (int64_t s = 0; s < n; s += 256) {
        double step[8], off[8], smax = 0, mmax = 0;
        for (int j = 0; j < 8; ++j) {
          double lo, hi;
          lo_hi(s + 32 * j, s + 32 * j + 32, &lo, &hi);
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
      return acc / n;
    }
    default:
      return 0;
  }
}

}  // namespace quanta::testing
