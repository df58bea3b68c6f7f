// Known-answer tests: hand-computed blocks for each quantized type (inputs chosen so that the
// scale search and rounding can be followed on paper), checked byte by byte, plus the
// rounding primitives (roundf away from zero for Q8_0, ggml's round-half-even nearest_int).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/kquant_search.h"
#include "quant/types.h"

namespace quanta {
namespace {

template <typename Block>
Block quantize_block(GgmlType type, const std::vector<float>& x) {
  Block b;
  std::memset(&b, 0xAB, sizeof b);  // garbage: every byte must be written
  quantize_row(type, x.data(), &b, static_cast<int64_t>(x.size()));
  return b;
}

TEST(KnownAnswer, NearestIntRoundsHalfToEven) {
  using ref::detail::nearest_int;
  EXPECT_EQ(nearest_int(0.5f), 0);
  EXPECT_EQ(nearest_int(1.5f), 2);
  EXPECT_EQ(nearest_int(2.5f), 2);
  EXPECT_EQ(nearest_int(-2.5f), -2);
  EXPECT_EQ(nearest_int(-3.5f), -4);
  EXPECT_EQ(nearest_int(2.4999998f), 2);
  EXPECT_EQ(nearest_int(-7.6f), -8);
  EXPECT_EQ(nearest_int(4194303.0f), 4194303);
}

// Q4_0 of the ramp x_j = j - 16: amax 16 at x_0 = -16, so d = -16/-8 = 2 (f16 0x4000),
// q_j = trunc((j - 16)/2 + 8.5) = floor((j + 1)/2), clamped to 15 (j = 31 gives 16).
TEST(KnownAnswer, Q4_0Ramp) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const BlockQ4_0 b = quantize_block<BlockQ4_0>(GgmlType::Q4_0, x);
  EXPECT_EQ(b.d, 0x4000);
  const uint8_t lo[16] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8};
  const uint8_t hi[16] = {8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 15};
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], lo[j] | (hi[j] << 4)) << j;
  std::vector<float> y(32);
  dequantize_row(GgmlType::Q4_0, &b, y.data(), 32);
  EXPECT_EQ(y[0], -16.0f);  // (0 - 8) * 2
  EXPECT_EQ(y[1], -14.0f);  // x = -15 is a tie: rounds up
  EXPECT_EQ(y[31], 14.0f);  // x = 15 clamped to level 15
}

// Q8_0 with amax 127 gives d = 1 (f16 0x3c00) and q = roundf(x): halves go away from zero.
TEST(KnownAnswer, Q8_0RoundsHalfAwayFromZero) {
  std::vector<float> x(32, 0.0f);
  const float in[] = {127.0f, -2.5f, 2.5f, 0.49f, -0.51f, 100.5f, -126.5f, 3.5f};
  const int8_t want[] = {127, -3, 3, 0, -1, 101, -127, 4};
  for (int j = 0; j < 8; ++j) x[j] = in[j];
  const BlockQ8_0 b = quantize_block<BlockQ8_0>(GgmlType::Q8_0, x);
  EXPECT_EQ(b.d, 0x3c00);
  for (int j = 0; j < 8; ++j) EXPECT_EQ(b.qs[j], want[j]) << j;
  for (int j = 8; j < 32; ++j) EXPECT_EQ(b.qs[j], 0) << j;
}

// Q8_1: as Q8_0 plus s = d * sum(q). x_j = j - 15 for j < 31 and x_31 = 127: d = 1,
// sum = (-15 + ... + 15) + 127 = 127 -> s = f16(127) = 0x57f0.
TEST(KnownAnswer, Q8_1CarriesScaledSum) {
  std::vector<float> x(32);
  for (int j = 0; j < 31; ++j) x[j] = static_cast<float>(j - 15);
  x[31] = 127.0f;
  const BlockQ8_1 b = quantize_block<BlockQ8_1>(GgmlType::Q8_1, x);
  EXPECT_EQ(b.d, 0x3c00);
  EXPECT_EQ(b.s, 0x57f0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], static_cast<int8_t>(x[j])) << j;
}

// Q4_1 of x_j = (j % 16) + 1: min 1, max 16, d = 15/15 = 1, m = 1 (f16 0x3c00 both),
// q_j = j % 16; x_19 (level 3) replaced by 4.5 -> trunc((4.5 - 1) + 0.5) = 4: ties round up.
TEST(KnownAnswer, Q4_1Offsets) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16 + 1);
  x[19] = 4.5f;
  const BlockQ4_1 b = quantize_block<BlockQ4_1>(GgmlType::Q4_1, x);
  EXPECT_EQ(b.d, 0x3c00);
  EXPECT_EQ(b.m, 0x3c00);
  for (int j = 0; j < 16; ++j) {
    const int high = j == 3 ? 4 : j;
    EXPECT_EQ(b.qs[j], j | (high << 4)) << j;
  }
}

// Q5_0 of x_j = j - 16: d = -16/-16 = 1, q_j = trunc(x_j + 16.5) = j; bit 4 set for j >= 16.
TEST(KnownAnswer, Q5_0Ramp) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const BlockQ5_0 b = quantize_block<BlockQ5_0>(GgmlType::Q5_0, x);
  EXPECT_EQ(b.d, 0x3c00);
  EXPECT_EQ(b.qh[0], 0x00);
  EXPECT_EQ(b.qh[1], 0x00);
  EXPECT_EQ(b.qh[2], 0xff);
  EXPECT_EQ(b.qh[3], 0xff);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
  std::vector<float> y(32);
  dequantize_row(GgmlType::Q5_0, &b, y.data(), 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]) << j;
}

// Q5_1 of x_j = j + 100: min 100 (f16 0x5640), d = 31/31 = 1, q_j = j.
TEST(KnownAnswer, Q5_1Ramp) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j + 100);
  const BlockQ5_1 b = quantize_block<BlockQ5_1>(GgmlType::Q5_1, x);
  EXPECT_EQ(b.d, 0x3c00);
  EXPECT_EQ(b.m, 0x5640);
  EXPECT_EQ(b.qh[0] | b.qh[1], 0x00);
  EXPECT_EQ(b.qh[2] & b.qh[3], 0xff);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
}

// Q4_K of x_i = (i % 16) - 4 in every 32-sub-block: min -4, max 11, so make_qkx2_quants
// starts at iscale 15/15 = 1, L = x + 4 with zero error, and keeps it (nothing beats 0).
// scale 1, min 4 everywhere -> 6-bit ls = lm = 63: d = f16(1/63) = 0x2410, dmin = f16(4/63)
// = 0x2c10, and all 12 scale bytes 0xff (63 in the low 6 bits, 63 >> 4 = 3 in the top two).
// Requantization: (x + 63*dmin)/(63*d) rounds back to x + 4 = i % 16, so each qs byte holds
// the same level in both nibbles: (l % 16) * 0x11.
TEST(KnownAnswer, Q4_KExactFit) {
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>(i % 16) - 4.0f;
  const BlockQ4_K b = quantize_block<BlockQ4_K>(GgmlType::Q4_K, x);
  EXPECT_EQ(b.d, 0x2410);
  EXPECT_EQ(b.dmin, 0x2c10);
  for (int j = 0; j < 12; ++j) EXPECT_EQ(b.scales[j], 0xff) << j;
  for (int l = 0; l < 128; ++l) EXPECT_EQ(b.qs[l], (l % 16) * 0x11) << l;
}

// Q5_K of x_i = (i % 32) - 4: min -4, max 27, iscale 31/31 = 1, L = i % 32 exactly; scales
// and mins as in Q4_K. Levels >= 16 set the high bit: values 64c + l and 64c + 32 + l both
// have level l, so qh[l] = 0xff for l >= 16 (bits 2c and 2c+1 for c = 0..3), else 0.
TEST(KnownAnswer, Q5_KExactFit) {
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>(i % 32) - 4.0f;
  const BlockQ5_K b = quantize_block<BlockQ5_K>(GgmlType::Q5_K, x);
  EXPECT_EQ(b.d, 0x2410);
  EXPECT_EQ(b.dmin, 0x2c10);
  for (int j = 0; j < 12; ++j) EXPECT_EQ(b.scales[j], 0xff) << j;
  for (int l = 0; l < 32; ++l) EXPECT_EQ(b.qh[l], l >= 16 ? 0xff : 0x00) << l;
  for (int l = 0; l < 128; ++l) EXPECT_EQ(b.qs[l], (l % 16) * 0x11) << l;
}

// Q6_K of x_i = (i % 16) - 32 in every 16-sub-block: max = -32 gives iscale 1, l = x exactly
// (a perfect least-squares fit, scale 1). max_scale 1 -> iscale -128: d = f16(-1/128) =
// 0xa000, every sub-scale -128 (0x80); requantization with 128/128 = 1 keeps L = x + 32 =
// i % 16: low nibbles only, so ql[l] = (l % 16) * 0x11 and qh = 0.
TEST(KnownAnswer, Q6_KExactFit) {
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>(i % 16) - 32.0f;
  const BlockQ6_K b = quantize_block<BlockQ6_K>(GgmlType::Q6_K, x);
  EXPECT_EQ(b.d, 0xa000);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.scales[j], -128) << j;
  for (int l = 0; l < 128; ++l) EXPECT_EQ(b.ql[l], (l % 16) * 0x11) << l;
  for (int l = 0; l < 64; ++l) EXPECT_EQ(b.qh[l], 0) << l;
  std::vector<float> y(256);
  dequantize_row(GgmlType::Q6_K, &b, y.data(), 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], x[i]) << i;
}

// Q8_K of x_j = j - 128: amax 128 at x_0 = -128, iscale = -127/-128 = 0.9921875 (exact),
// d = 128/127; q_j = round-half-even(0.9921875 * x_j): x = -128 -> -127, x = 64 -> 63.5 -> 64,
// x = 127 -> 126.008 -> 126. bsums are the sums of 16 consecutive q.
TEST(KnownAnswer, Q8_KRampAndBsums) {
  std::vector<float> x(256);
  for (int j = 0; j < 256; ++j) x[j] = static_cast<float>(j - 128);
  const BlockQ8_K b = quantize_block<BlockQ8_K>(GgmlType::Q8_K, x);
  EXPECT_EQ(b.d, 128.0f / 127.0f);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[128 + 64], 64);
  EXPECT_EQ(b.qs[128 - 64], -64);
  EXPECT_EQ(b.qs[255], 126);
  for (int j = 0; j < 256; ++j) {
    const double t = 0.9921875 * (j - 128);
    ASSERT_EQ(b.qs[j], static_cast<int>(std::nearbyint(t))) << j;  // no other ties occur
  }
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int k = 0; k < 16; ++k) sum += b.qs[16 * g + k];
    EXPECT_EQ(b.bsums[g], sum) << g;
  }
}

}  // namespace
}  // namespace quanta
