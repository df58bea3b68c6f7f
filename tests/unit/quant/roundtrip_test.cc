// Quantize -> dequantize round trips of every supported weight type on several seeded data
// distributions (incl. all-zero blocks, outliers, subnormal-scale data): worst-case element
// bounds, the RMS error model of error_model.h, and the nearest-level property of K-quants.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "error_model.h"
#include "quant/blocks.h"
#include "quant/kquant_search.h"
#include "quant_test_util.h"

namespace quanta {
namespace {

using testing::Dist;
using testing::kAllDists;
using testing::kWeightTypes;

constexpr int64_t kN = 256 * 32;  // 32 super-blocks, 256 legacy blocks

// Closed-form worst-case bounds (exact for F32), see error_model.h.
TEST(RoundTripWorstCase, ClosedFormTypes) {
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0,
                        GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_1, GgmlType::Q5_1}) {
    for (Dist dist : kAllDists) {
      const std::vector<float> x = testing::make_data(dist, kN, 11);
      const std::vector<double> bound = testing::worst_case_bounds(type, x);
      ASSERT_EQ(bound.size(), x.size()) << type_name(type);
      const std::vector<float> y = testing::dequantize(type, testing::quantize(type, x), kN);
      int bad = 0;
      for (int64_t i = 0; i < kN && bad < 5; ++i) {
        if (std::fabs(static_cast<double>(y[i]) - x[i]) > bound[i]) {
          ADD_FAILURE() << type_name(type) << " " << testing::dist_name(dist) << " element " << i
                        << ": x=" << x[i] << " y=" << y[i] << " bound=" << bound[i];
          ++bad;
        }
      }
    }
  }
}

class RoundTrip : public ::testing::TestWithParam<GgmlType> {};

// RMS error over the row <= 1.25 x the modelled RMS error. The model is the expected error
// of round-to-nearest on the ideal grid (step^2/12) plus scale-storage terms; measured ratios
// are 0.5-1.1 (the excess for Q4_0/Q4_1 comes from the clamped extreme and outlier blocks),
// so 1.25 leaves margin while a wrong scale, shift or nibble order lands far above it.
TEST_P(RoundTrip, RmseWithinModel) {
  const GgmlType type = GetParam();  // F32: the model is 0 and the round trip exact
  for (Dist dist : kAllDists) {
    for (uint32_t seed : {1u, 2u}) {
      const std::vector<float> x = testing::make_data(dist, kN, seed);
      const std::vector<float> y = testing::dequantize(type, testing::quantize(type, x), kN);
      double se = 0;
      for (int64_t i = 0; i < kN; ++i) se += std::pow(static_cast<double>(y[i]) - x[i], 2);
      const double rmse = std::sqrt(se / kN);
      const double model = std::sqrt(testing::modelled_mse(type, x));
      EXPECT_LE(rmse, 1.25 * model + 1e-30)
          << type_name(type) << " " << testing::dist_name(dist) << " seed " << seed;
    }
  }
}

// All-zero input gives exactly zero back, and (for the block types) zero scales.
TEST_P(RoundTrip, ZeroBlocksAreExact) {
  const GgmlType type = GetParam();
  const std::vector<float> x(kN, 0.0f);
  const std::vector<uint8_t> q = testing::quantize(type, x);
  const std::vector<float> y = testing::dequantize(type, q, kN);
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(y[i], 0.0f) << type_name(type) << " at " << i;
  if (type == GgmlType::Q6_K || type == GgmlType::Q8_0) {
    for (size_t i = 0; i < q.size(); ++i) ASSERT_EQ(q[i], 0) << type_name(type) << " byte " << i;
  }
  if (type == GgmlType::Q4_0) {  // d = 0 / -8 = -0 (as ggml); levels 8 mean 0
    for (size_t i = 0; i < q.size(); ++i) {
      const uint8_t want = i % 18 == 1 ? 0x80 : i % 18 == 0 ? 0x00 : 0x88;
      ASSERT_EQ(q[i], want) << type_name(type) << " byte " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, RoundTrip, ::testing::ValuesIn(kWeightTypes),
                         [](const auto& info) { return std::string(type_name(info.param)); });

// ----------------------------------------------------------------------------------------
// K-quants: every value must sit on the nearest level of its stored grid (or the grid end
// when it lies outside), given the block's stored scales. This checks requantization and
// bit packing independently of the scale search.

// |y - x| allowed for a value x on a grid {s*l - m : lo <= l <= hi} (s > 0 or < 0).
double nearest_level_error(double x, double s, double m, int lo, int hi) {
  const double t = (x + m) / s;
  const double l = std::max<double>(lo, std::min<double>(hi, std::nearbyint(t)));
  return std::fabs(s * l - m - x);
}

void check_nearest_level(GgmlType type, const std::vector<float>& x, const char* dist) {
  const std::vector<uint8_t> q = testing::quantize(type, x);
  const std::vector<float> y = testing::dequantize(type, q, kN);
  const size_t bs = type_traits(type).type_size;
  for (int64_t b = 0; b < kN / kQK_K; ++b) {
    const uint8_t* blk = q.data() + b * bs;
    const int sub = type == GgmlType::Q6_K ? 16 : 32;
    for (int j = 0; j < kQK_K / sub; ++j) {
      double s = 0, m = 0;
      int lo = 0, hi = 0;
      if (type == GgmlType::Q6_K) {
        const auto* k = reinterpret_cast<const BlockQ6_K*>(blk);
        s = f16_to_f32(k->d) * k->scales[j];
        lo = -32, hi = 31;
      } else {
        const auto* k = reinterpret_cast<const BlockQ4_K*>(blk);  // same header as Q5_K
        uint8_t sc, mn;
        ref::detail::get_scale_min_k4(j, k->scales, &sc, &mn);
        s = static_cast<double>(f16_to_f32(k->d)) * sc;
        m = static_cast<double>(f16_to_f32(k->dmin)) * mn;
        hi = type == GgmlType::Q4_K ? 15 : 31;
      }
      if (s == 0) continue;  // ggml keeps the search's levels for a zero sub-scale
      for (int i = 0; i < sub; ++i) {
        const int64_t e = b * kQK_K + j * sub + i;
        const double want = nearest_level_error(x[e], s, m, lo, hi);
        const double got = std::fabs(static_cast<double>(y[e]) - x[e]);
        // Ties and f32 rounding of (x + m)/s may pick the other neighbour: allow ~1e-4 step.
        ASSERT_LE(got, want + 1e-4 * std::fabs(s) + 1e-6 * std::fabs(x[e]))
            << type_name(type) << " " << dist << " element " << e;
      }
    }
  }
}

TEST(KQuantRoundTrip, ValuesOnNearestStoredLevel) {
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    for (Dist dist : kAllDists) {
      check_nearest_level(type, testing::make_data(dist, kN, 5), testing::dist_name(dist));
    }
  }
}

// Sub-block scales are relative to the largest one: an outlier in one sub-block must not
// destroy the other sub-blocks of the super-block beyond the sub-scale resolution. Each
// super-block gets a spike of 50 in its second 32-value sub-block; the others hold U(-1, 1).
// Their stored step is the ideal 2/levels +- half a sub-scale unit D/2 (D = 51/levels/63 for
// the 6-bit scales of Q4_K/Q5_K, 50/32/128 for the 8-bit ones of Q6_K). Rounding costs half
// a step; a step rounded down clamps the top of the range by up to levels*D/2 = 51/126
// (50/256 for Q6_K); the 6-bit min adds up to 1/126. Zeroed or mis-scaled sub-blocks would
// err by up to 1.
TEST(KQuantRoundTrip, OutlierSubBlockLeavesOthersUsable) {
  std::vector<float> x = testing::make_data(Dist::kUniform, kN, 9);
  for (int64_t i = 0; i < kN; i += kQK_K) x[i + 40] = 50.0f;
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const std::vector<float> y = testing::dequantize(type, testing::quantize(type, x), kN);
    const bool q6 = type == GgmlType::Q6_K;
    const double levels = type == GgmlType::Q4_K ? 15 : type == GgmlType::Q5_K ? 31 : 32;
    const double bound = q6 ? 1.0 / 32 + 50.0 / 256 : 1.0 / levels + 51.0 / 126 + 1.0 / 126;
    for (int64_t b = 0; b < kN; b += kQK_K) {
      EXPECT_NEAR(y[b + 40], 50.0, 51.0 / levels) << type_name(type);
    }
    double worst = 0;
    for (int64_t i = 0; i < kN; ++i) {
      if (i % kQK_K / 32 == 1) continue;  // the spike's own sub-block
      worst = std::max(worst, static_cast<double>(std::fabs(y[i] - x[i])));
    }
    EXPECT_LE(worst, bound) << type_name(type);
  }
}

}  // namespace
}  // namespace quanta
