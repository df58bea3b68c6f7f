// F16 and BF16 conversions (core/fp16.h, used by every block scale): exhaustive round trips
// over all 65536 bit patterns, decoding checked against an independent formula, round-to-
// nearest-even at every halfway point, overflow, NaN and infinities; plus the F16/BF16 rows.
#include "core/fp16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "quant/types.h"

namespace quanta {
namespace {

bool f16_is_nan(uint16_t h) {
  return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0;
}
bool bf16_is_nan(uint16_t h) {
  return (h & 0x7f80u) == 0x7f80u && (h & 0x007fu) != 0;
}

// IEEE half decoded by its definition, in double.
double f16_reference(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  if (exp == 31)
    return mant ? std::numeric_limits<double>::quiet_NaN()
                : sign * std::numeric_limits<double>::infinity();
  return sign * std::ldexp(1024 + mant, exp - 25);
}

TEST(Fp16, DecodeMatchesDefinitionForAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    const double want = f16_reference(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(f), want) << std::hex << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000u) != 0) << std::hex << h;  // incl. -0
    }
  }
}

TEST(Fp16, RoundTripAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t back = f32_to_f16(f16_to_f32(static_cast<uint16_t>(h)));
    if (f16_is_nan(static_cast<uint16_t>(h))) {
      ASSERT_TRUE(f16_is_nan(back)) << std::hex << h;
      ASSERT_EQ(back & 0x8000u, h & 0x8000u) << std::hex << h;
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

// Every midpoint between adjacent finite halves (exact in f32) rounds to the even neighbour;
// one f32 ulp either side rounds to the nearer one. Covers subnormals and both signs.
TEST(Fp16, HalfwayCasesRoundToEven) {
  for (uint32_t mag = 0; mag < 0x7bffu; ++mag) {
    for (uint16_t sign : {0x0000, 0x8000}) {
      const uint16_t lo = static_cast<uint16_t>(sign | mag);
      const uint16_t hi = static_cast<uint16_t>(sign | (mag + 1));
      const float a = f16_to_f32(lo), b = f16_to_f32(hi);
      const float mid = static_cast<float>((static_cast<double>(a) + b) / 2);
      ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(a) + b) / 2);
      const uint16_t even = (lo & 1u) ? hi : lo;
      ASSERT_EQ(f32_to_f16(mid), even) << std::hex << lo;
      ASSERT_EQ(f32_to_f16(std::nextafter(mid, a)), lo) << std::hex << lo;
      ASSERT_EQ(f32_to_f16(std::nextafter(mid, b)), hi) << std::hex << lo;
    }
  }
}

TEST(Fp16, OverflowInfinityAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bffu);  // largest finite half
  EXPECT_EQ(f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7bffu);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00u);  // halfway to 2^16: even is inf
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00u);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xfc00u);
  EXPECT_EQ(f32_to_f16(inf), 0x7c00u);
  EXPECT_EQ(f32_to_f16(-inf), 0xfc00u);
  EXPECT_TRUE(f16_is_nan(f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(f16_is_nan(f32_to_f16(bits_float(0x7f800001u))));  // signalling, tiny payload
  EXPECT_TRUE(f16_is_nan(f32_to_f16(bits_float(0xffc00000u))));
  EXPECT_EQ(f32_to_f16(bits_float(0xffc00000u)) & 0x8000u, 0x8000u);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000u);  // half the smallest subnormal: even
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001u);
  EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -26)), 0x8000u);  // underflow keeps the sign
}

TEST(Bf16, RoundTripAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    ASSERT_EQ(float_bits(f), h << 16);
    const uint16_t back = f32_to_bf16(f);
    if (bf16_is_nan(static_cast<uint16_t>(h))) {
      ASSERT_TRUE(bf16_is_nan(back)) << std::hex << h;
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

TEST(Bf16, HalfwayCasesRoundToEven) {
  for (uint32_t mag = 0; mag < 0x7f7fu; ++mag) {
    const uint32_t lo = mag, hi = mag + 1;
    const uint32_t mid_bits = (lo << 16) | 0x8000u;  // exactly halfway in f32
    const uint32_t even = (lo & 1u) ? hi : lo;
    ASSERT_EQ(f32_to_bf16(bits_float(mid_bits)), even) << std::hex << lo;
    ASSERT_EQ(f32_to_bf16(bits_float(mid_bits - 1)), lo) << std::hex << lo;
    ASSERT_EQ(f32_to_bf16(bits_float(mid_bits + 1)), hi) << std::hex << lo;
  }
}

TEST(Bf16, InfinityAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_bf16(inf), 0x7f80u);
  EXPECT_EQ(f32_to_bf16(-inf), 0xff80u);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80u);  // rounds up to inf
  // NaNs stay NaN (a payload only in the low 16 bits must not collapse to inf) and quiet.
  EXPECT_EQ(f32_to_bf16(bits_float(0x7f800001u)), 0x7fc0u);
  EXPECT_EQ(f32_to_bf16(bits_float(0xff800001u)), 0xffc0u);
}

// The row kernels of the table use the same conversions element by element.
TEST(FloatRows, F16AndBf16RowsMatchScalarConversions) {
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * i) * std::ldexp(1.0f, i % 40 - 20);
  for (GgmlType type : {GgmlType::F16, GgmlType::BF16}) {
    std::vector<uint16_t> h(x.size());
    std::vector<float> y(x.size());
    quantize_row(type, x.data(), h.data(), static_cast<int64_t>(x.size()));
    dequantize_row(type, h.data(), y.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const uint16_t want = type == GgmlType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
      ASSERT_EQ(h[i], want) << type_name(type) << " " << i;
      ASSERT_EQ(y[i], type == GgmlType::F16 ? f16_to_f32(want) : bf16_to_f32(want));
    }
  }
}

}  // namespace
}  // namespace quanta
