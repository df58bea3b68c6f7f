// The flash kernel's branch-free helpers: half_to_float is bit-identical to core's
// f16_to_f32 on all 65536 inputs; exp_nonpositive is within 2e-7 relative of exp over
// [-87, 0] and exactly 0 below, at -inf and for NaN.
#include "ops/attention_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace quanta::ops {
namespace {

TEST(AttentionMath, HalfToFloatIsExactForEveryHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float want = f16_to_f32(static_cast<uint16_t>(h));
    const float got = half_to_float(static_cast<uint16_t>(h));
    ASSERT_EQ(float_bits(got), float_bits(want)) << std::hex << h;
  }
}

TEST(AttentionMath, ExpNonPositiveIsAccurate) {
  double worst = 0.0;
  for (int32_t i = 0; i <= 2000000; ++i) {
    const float x = -87.0f * static_cast<float>(i) / 2000000.0f;
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(exp_nonpositive(x) - want) / want);
  }
  EXPECT_LE(worst, 2e-7);
  EXPECT_EQ(exp_nonpositive(0.0f), 1.0f);
  EXPECT_EQ(exp_nonpositive(-0.0f), 1.0f);
  EXPECT_EQ(exp_nonpositive(-87.5f), 0.0f);
  EXPECT_EQ(exp_nonpositive(-1e30f), 0.0f);
  EXPECT_EQ(exp_nonpositive(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(exp_nonpositive(std::numeric_limits<float>::quiet_NaN()), 0.0f);
}

}  // namespace
}  // namespace quanta::ops
