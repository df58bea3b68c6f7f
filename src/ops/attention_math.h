// Branch-free scalar helpers of the flash-attention kernel, written so that g++ -O3 can
// vectorise loops over them: exp for the softmax's non-positive arguments, and F16 -> F32
// (bit-identical to core/fp16.h's f16_to_f32, which is branchy and stays scalar).
#pragma once

#include <cstdint>

#include "core/fp16.h"

namespace quanta::ops {

// exp(x) for x <= 0, relative error below 2e-7; returns exactly 0 for x < -87 (exp(-87) is
// ~1.6e-38, the bottom of the normal range), -inf and NaN. Cephes-style: x = n ln2 + r with
// |r| <= ln2 / 2, exp(r) by a polynomial, 2^n put into the exponent bits. The range check is
// done on the bits (a float compare-and-select is not if-converted under -ftrapping-math).
inline float exp_nonpositive(float x) {
  constexpr uint32_t kLimit = 0x42ae0000u;  // |-87.0f|
  const uint32_t in_range = (float_bits(x) & 0x7fffffffu) <= kLimit ? ~0u : 0u;
  const float xc = bits_float((float_bits(x) & in_range) | (float_bits(-87.0f) & ~in_range));
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (xc * kLog2e + kShift) - kShift;
  float r = xc - n * 0.693359375f;  // ln2 in two parts; n * 0.693359375f is exact
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t e = static_cast<int32_t>(n) + 127;  // n in [-126, 0]: a normal power of two
  return bits_float(float_bits(p * bits_float(static_cast<uint32_t>(e) << 23)) & in_range);
}

// F16 bits -> F32, exact. Shifting the exponent and mantissa into float position and
// multiplying by 2^112 rebias the exponent and normalise subnormals in one exact product;
// infinities and NaNs (exponent 31) get the float all-ones exponent instead.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t magnitude = static_cast<uint32_t>(h & 0x7fffu) << 13;
  const uint32_t finite = float_bits(bits_float(magnitude) * 0x1p112f);
  const uint32_t special = magnitude >= (0x7c00u << 13) ? ~0u : 0u;
  return bits_float(sign | (finite & ~special) | ((magnitude | 0x7f800000u) & special));
}

}  // namespace quanta::ops
