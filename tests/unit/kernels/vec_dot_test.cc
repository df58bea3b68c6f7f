// vec_dot of every fast ISA and weight type: equal to the reference up to summation order,
// equal to the f64 dot product of the stored values to the same bound, and within the
// type's quantization bound of the f64 dot product of the original floats.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.h"

namespace quanta::kernels {
namespace {

using testing::act_type;
using testing::fast_isas;
using testing::IsaScope;

// Largest relative RMS quantization error ||x - deq(q(x))|| / ||x|| of a type on Gaussian
// rows (block-wise absmax scaling): the measured maxima over these tests are about 2/3 of
// these (F16/BF16: half an ulp of the format; Q8: d/2 with d = amax/127; Q4/Q5: 4/5 bits).
double relative_error_bound(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
      return 0.0;
    case GgmlType::F16:
      return 0x1p-11;
    case GgmlType::BF16:
      return 0x1p-8;
    case GgmlType::Q8_0:
    case GgmlType::Q8_1:
    case GgmlType::Q8_K:
      return 0.012;
    case GgmlType::Q6_K:
      return 0.04;
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q5_K:
      return 0.07;
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q4_K:
      return 0.14;
    default:
      return 1.0;
  }
}

double norm(const std::vector<float>& v) {
  double s = 0.0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

double relative_error(GgmlType t, const std::vector<float>& x, const std::vector<uint8_t>& q) {
  const std::vector<float> back = testing::dequantize(t, q.data(), static_cast<int64_t>(x.size()));
  double e = 0.0;
  for (size_t i = 0; i < x.size(); ++i)
    e += (static_cast<double>(x[i]) - back[i]) * (x[i] - back[i]);
  return std::sqrt(e) / norm(x);
}

std::vector<int64_t> lengths(GgmlType t) {
  const int64_t bs = testing::block_of(t);
  if (bs == 1) return {1, 7, 8, 31, 32, 33, 100, 2048, 2051};
  if (bs == 32) return {32, 96, 32 * 8, 32 * 13, 2048, 32 * 67};
  return {256, 768, 256 * 8, 256 * 9};
}

TEST(VecDot, MatchesReferenceAndExactMath) {
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    std::mt19937 rng(7);  // the same rows for every path
    for (GgmlType type : testing::weight_types()) {
      const GgmlType at = act_type(type);
      for (int64_t k : lengths(type)) {
        for (float scale : {1.0f, 1e-3f, 40.0f}) {
          const std::vector<float> x = testing::normal_row(rng, k, scale);
          const std::vector<float> y = testing::normal_row(rng, k);
          const std::vector<uint8_t> xq = testing::quantize(type, x);
          const std::vector<uint8_t> yq = testing::quantize(at, y);
          const std::string where = isa + " " + type_name(type) + " k=" + std::to_string(k) +
                                    " scale=" + std::to_string(scale);
          const testing::Misaligned xm(xq, 1), ym(yq, 3);
          const float got = active().vec_dot[static_cast<uint32_t>(type)](k, xm.data(), ym.data());
          const float want = type_traits(type).vec_dot(k, xq.data(), yq.data());
          const double bound = testing::rounding_bound(type, xq.data(), yq.data(), k);
          EXPECT_NEAR(got, want, bound) << where;
          EXPECT_NEAR(got, testing::exact_dot(type, xq.data(), yq.data(), k), bound) << where;
          // Quantization: |<x,y> - <x',y'>| <= (rx + ry + rx*ry) |x||y| (Cauchy-Schwarz).
          const double rx = relative_error(type, x, xq), ry = relative_error(at, y, yq);
          ASSERT_LE(rx, relative_error_bound(type)) << where;
          ASSERT_LE(ry, relative_error_bound(at)) << where;
          const double bx = relative_error_bound(type), by = relative_error_bound(at);
          double exact = 0.0;
          for (int64_t i = 0; i < k; ++i) exact += static_cast<double>(x[i]) * y[i];
          EXPECT_NEAR(got, exact, (bx + by + bx * by) * norm(x) * norm(y) + bound) << where;
        }
      }
    }
  }
}

// A dot product of a row with itself-like data (all products positive) stresses the
// accumulators; zero rows must give exactly zero.
TEST(VecDot, ZeroAndPositiveRows) {
  std::mt19937 rng(8);
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) {
      const GgmlType at = act_type(type);
      const int64_t k = 4 * 256;
      std::vector<float> x = testing::normal_row(rng, k);
      for (float& v : x) v = std::fabs(v) + 0.5f;
      const std::vector<uint8_t> xq = testing::quantize(type, x);
      const std::vector<uint8_t> yq = testing::quantize(at, x);
      const std::vector<uint8_t> zq = testing::quantize(at, std::vector<float>(k, 0.0f));
      const auto dot = active().vec_dot[static_cast<uint32_t>(type)];
      EXPECT_NEAR(dot(k, xq.data(), yq.data()), type_traits(type).vec_dot(k, xq.data(), yq.data()),
                  testing::rounding_bound(type, xq.data(), yq.data(), k))
          << isa << " " << type_name(type);
      EXPECT_EQ(dot(k, xq.data(), zq.data()), 0.0f) << isa << " " << type_name(type);
    }
  }
}

}  // namespace
}  // namespace quanta::kernels
