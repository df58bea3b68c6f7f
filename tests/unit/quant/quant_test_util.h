// Shared helpers of the quant tests: seeded test-data distributions and quantize/dequantize
// round trips through the public type-traits API.
#pragma once

#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "quant/types.h"

namespace quanta {
// gtest prints parameters with this instead of raw bytes.
inline void PrintTo(GgmlType type, std::ostream* os) {
  *os << type_name(type);
}
}  // namespace quanta

namespace quanta::testing {

enum class Dist {
  kGaussian,    // N(0, 1)
  kUniform,     // U(-1, 1)
  kLaplace,     // heavy-ish tails
  kPositive,    // U(1, 2): all values of one sign, far from zero (exercises mins/offsets)
  kOutliers,    // N(0, 1) with 1% of values multiplied by 40
  kZeroBlocks,  // N(0, 1) with every other 32-block and every third 256-block all zero
  kTiny,        // N(0, 1e-4): F16 block scales land in the subnormal range
  kConstant,    // one value repeated per 256-block (varying between blocks)
};

inline const char* dist_name(Dist d) {
  switch (d) {
    case Dist::kGaussian:
      return "gaussian";
    case Dist::kUniform:
      return "uniform";
    case Dist::kLaplace:
      return "laplace";
    case Dist::kPositive:
      return "positive";
    case Dist::kOutliers:
      return "outliers";
    case Dist::kZeroBlocks:
      return "zero-blocks";
    case Dist::kTiny:
      return "tiny";
    case Dist::kConstant:
      return "constant";
  }
  return "?";
}

inline const Dist kAllDists[] = {Dist::kGaussian, Dist::kUniform,  Dist::kLaplace,
                                 Dist::kPositive, Dist::kOutliers, Dist::kZeroBlocks,
                                 Dist::kTiny,     Dist::kConstant};

inline std::vector<float> make_data(Dist dist, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::exponential_distribution<float> expo(1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float v = 0.0f;
    switch (dist) {
      case Dist::kGaussian:
        v = normal(rng);
        break;
      case Dist::kUniform:
        v = uniform(rng);
        break;
      case Dist::kLaplace:
        v = (uniform(rng) < 0 ? -1.0f : 1.0f) * expo(rng);
        break;
      case Dist::kPositive:
        v = 1.5f + 0.5f * uniform(rng);
        break;
      case Dist::kOutliers:
        v = normal(rng) * (uniform(rng) > 0.98f ? 40.0f : 1.0f);
        break;
      case Dist::kZeroBlocks:
        v = ((i / 32) % 2 == 1 || (i / 256) % 3 == 2) ? 0.0f : normal(rng);
        break;
      case Dist::kTiny:
        v = 1e-4f * normal(rng);
        break;
      case Dist::kConstant:
        v = 0.25f * static_cast<float>(i / 256 % 7) - 0.8f;
        break;
    }
    x[static_cast<size_t>(i)] = v;
  }
  return x;
}

inline std::vector<uint8_t> quantize(GgmlType type, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(row_size(type, n));
  quantize_row(type, x.data(), q.data(), n);
  return q;
}

inline std::vector<float> dequantize(GgmlType type, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(type, q.data(), y.data(), n);
  return y;
}

// The quantizable weight types quanta supports, and the activation types.
inline const GgmlType kWeightTypes[] = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
    GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

// Largest |x| over [begin, end).
inline float abs_max(const float* x, int64_t begin, int64_t end) {
  float m = 0.0f;
  for (int64_t i = begin; i < end; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

}  // namespace quanta::testing
