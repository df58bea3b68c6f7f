// vec_dot of every supported weight type against its vec_dot_type: (1) against a double
// dot of the dequantized operands (tight: only f32 rounding of block sums may differ), and
// (2) against the f64 dot of the original floats (bounded by the quantization errors).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "error_model.h"
#include "quant/blocks.h"
#include "quant_test_util.h"

namespace quanta {
namespace {

using testing::Dist;

struct DotCase {
  std::vector<float> x, y;  // originals
  std::vector<uint8_t> xq, yq;
  std::vector<float> xd, yd;  // dequantized
  float dot = 0;
};

DotCase run_dot(GgmlType type, Dist dist_x, Dist dist_y, int64_t n, uint32_t seed) {
  const GgmlType vdt = type_traits(type).vec_dot_type;
  DotCase c;
  c.x = testing::make_data(dist_x, n, seed);
  c.y = testing::make_data(dist_y, n, seed + 1000);
  c.xq = testing::quantize(type, c.x);
  c.yq = testing::quantize(vdt, c.y);
  c.xd = testing::dequantize(type, c.xq, n);
  c.yd = testing::dequantize(vdt, c.yq, n);
  c.dot = type_traits(type).vec_dot(n, c.xq.data(), c.yq.data());
  return c;
}

// Extra difference for Q4_1/Q5_1: the dot uses the Q8_1 block sum s = f16(d * sum q) (with
// the unrounded d) where the dequantized dot has f16(d) * sum q: per block
// |m_x| (f16_err(s) + |sum q| f16_err(d)).
double q8_1_sum_slack(GgmlType type, const DotCase& c, int64_t n) {
  if (type != GgmlType::Q4_1 && type != GgmlType::Q5_1) return 0;
  double slack = 0;
  const size_t xs = type_traits(type).type_size;
  for (int64_t b = 0; b < n / 32; ++b) {
    uint16_t m;
    std::memcpy(&m, c.xq.data() + b * xs + 2, 2);  // Q4_1/Q5_1: d at 0, m at 2
    const auto* yb = reinterpret_cast<const BlockQ8_1*>(c.yq.data()) + b;
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += yb->qs[j];
    slack += std::fabs(f16_to_f32(m)) * (testing::f16_err(f16_to_f32(yb->s)) +
                                         std::abs(sum) * testing::f16_err(f16_to_f32(yb->d)));
  }
  return slack;
}

// f32 rounding of the per-block products and the running sum: each term is computed with a
// few roundings (relative 2^-24 each) and summed over n/block terms, plus the block offsets
// (mins) that cancel inside a block: 1e-5 of sum (|x| + offset)|y| covers n = 4096 with a
// large margin (the measured difference is ~1e-7 of it).
double tight_tolerance(GgmlType type, const DotCase& c) {
  double amax = 0;
  for (float v : c.xd) amax = std::max(amax, static_cast<double>(std::fabs(v)));
  const bool has_offsets = type == GgmlType::Q4_1 || type == GgmlType::Q5_1 ||
                           type == GgmlType::Q4_K || type == GgmlType::Q5_K;
  double mag = 0;
  for (size_t i = 0; i < c.xd.size(); ++i) {
    mag += (std::fabs(c.xd[i]) + (has_offsets ? amax : 0.0)) * std::fabs(c.yd[i]);
  }
  return 1e-5 * mag + 1e-30;
}

class VecDot : public ::testing::TestWithParam<GgmlType> {};

TEST_P(VecDot, MatchesDoubleDotOfDequantized) {
  const GgmlType type = GetParam();
  const int64_t n = 4096;
  uint32_t seed = 1;
  for (Dist dx :
       {Dist::kGaussian, Dist::kPositive, Dist::kOutliers, Dist::kZeroBlocks, Dist::kTiny}) {
    for (Dist dy : {Dist::kGaussian, Dist::kPositive, Dist::kZeroBlocks}) {
      const DotCase c = run_dot(type, dx, dy, n, seed++);
      double ref = 0;
      for (int64_t i = 0; i < n; ++i) ref += static_cast<double>(c.xd[i]) * c.yd[i];
      const double tol = tight_tolerance(type, c) + q8_1_sum_slack(type, c, n);
      EXPECT_NEAR(c.dot, ref, tol)
          << type_name(type) << " x:" << testing::dist_name(dx) << " y:" << testing::dist_name(dy);
    }
  }
}

// Against the exact dot of the originals: |dot - sum x y| <= sum |ex| |yd| + sum |x| |ey|
// (triangle inequality, e = dequantized - original) plus the tight tolerance; and, for a
// zero-mean y independent of x, the quantization noise adds up like a random walk: within 6
// standard deviations sqrt(sum (ex yd)^2 + (x ey)^2).
TEST_P(VecDot, CloseToExactDotOfOriginals) {
  const GgmlType type = GetParam();
  const int64_t n = 4096;
  uint32_t seed = 100;
  for (Dist dx : {Dist::kGaussian, Dist::kLaplace, Dist::kPositive, Dist::kOutliers}) {
    const DotCase c = run_dot(type, dx, Dist::kGaussian, n, seed++);
    double exact = 0, worst = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) {
      exact += static_cast<double>(c.x[i]) * c.y[i];
      const double ex = static_cast<double>(c.xd[i]) - c.x[i];
      const double ey = static_cast<double>(c.yd[i]) - c.y[i];
      worst += std::fabs(ex * c.yd[i]) + std::fabs(c.x[i] * ey);
      var += std::pow(ex * c.yd[i], 2) + std::pow(c.x[i] * ey, 2);
    }
    const double tol = tight_tolerance(type, c) + q8_1_sum_slack(type, c, n);
    EXPECT_LE(std::fabs(c.dot - exact), worst + tol) << type_name(type);
    EXPECT_LE(std::fabs(c.dot - exact), 6 * std::sqrt(var) + tol)
        << type_name(type) << " x:" << testing::dist_name(dx);
  }
}

// A single block and a zero activation row.
TEST_P(VecDot, SingleBlockAndZeroRow) {
  const GgmlType type = GetParam();
  const GgmlType vdt = type_traits(type).vec_dot_type;
  const int64_t n = std::max(type_traits(type).block_size, type_traits(vdt).block_size);
  const DotCase c = run_dot(type, Dist::kUniform, Dist::kUniform, n, 7);
  double ref = 0;
  for (int64_t i = 0; i < n; ++i) ref += static_cast<double>(c.xd[i]) * c.yd[i];
  EXPECT_NEAR(c.dot, ref, tight_tolerance(type, c) + q8_1_sum_slack(type, c, n));
  const std::vector<uint8_t> zq = testing::quantize(vdt, std::vector<float>(n, 0.0f));
  EXPECT_EQ(type_traits(type).vec_dot(n, c.xq.data(), zq.data()), 0.0f);
}

const GgmlType kDotTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                              GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                              GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

INSTANTIATE_TEST_SUITE_P(Types, VecDot, ::testing::ValuesIn(kDotTypes),
                         [](const auto& info) { return std::string(type_name(info.param)); });

}  // namespace
}  // namespace quanta
