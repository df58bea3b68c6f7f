// Activation conversions (from_float of F16, BF16, Q8_0, Q8_1, Q8_K) of every fast ISA are
// bit-identical with the scalar reference: on random rows of many scales and lengths, on
// constructed rounding ties, on float special values, and from/to misaligned pointers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.h"

namespace quanta::kernels {
namespace {

using testing::fast_isas;
using testing::IsaScope;

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Converts `x` with the active ISA and the reference, and expects identical bytes; reports
// the first differing block. The destination starts `misalign` bytes into its buffer, the
// source `misalign` floats into its own (a float* stays float-aligned, but not vector-aligned).
void expect_identical(GgmlType type, const std::vector<float>& x, size_t misalign,
                      const std::string& what) {
  const int64_t n = static_cast<int64_t>(x.size());
  const size_t bytes = row_size(type, n);
  std::vector<float> src_store(x.size() + 8);
  float* src = src_store.data() + misalign;
  std::memcpy(src, x.data(), x.size() * sizeof(float));
  std::vector<uint8_t> got_store(bytes + 8, 0xAA);
  std::vector<uint32_t> want_store(bytes / 4 + 1, 0x55555555u);  // naturally aligned blocks
  auto* want = reinterpret_cast<uint8_t*>(want_store.data());
  uint8_t* got = got_store.data() + misalign;
  active().from_float[static_cast<uint32_t>(type)](src, got, n);
  type_traits(type).from_float(x.data(), want, n);
  const size_t block_bytes = type_traits(type).type_size;
  for (size_t off = 0; off < bytes; off += block_bytes) {
    if (std::memcmp(got + off, want + off, block_bytes) != 0) {
      ADD_FAILURE() << active().isa << " " << type_name(type) << " " << what << ": block "
                    << off / block_bytes << " of " << bytes / block_bytes << " differs";
      return;
    }
  }
  EXPECT_EQ(got_store[misalign + bytes], 0xAA) << "wrote past the end";
}

const GgmlType kActTypes[] = {GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q8_1,
                              GgmlType::Q8_K};

TEST(FromFloat, RandomRowsMatchReference) {
  std::mt19937 rng(11);
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : kActTypes) {
      const int64_t bs = testing::block_of(type);
      const std::vector<int64_t> blocks = bs == 1
                                              ? std::vector<int64_t>{1, 7, 8, 15, 16, 17, 31, 1003}
                                              : std::vector<int64_t>{1, 2, 9, 33};
      for (int64_t nb : blocks) {
        for (float sd : {1.0f, 1e-3f, 3e4f, 1e-20f}) {
          const std::vector<float> x = testing::normal_row(rng, nb * bs, sd);
          for (size_t misalign : {0, 1, 3}) {
            expect_identical(type, x, misalign,
                             "n=" + std::to_string(nb * bs) + " sd=" + std::to_string(sd));
          }
        }
      }
    }
  }
}

// Values exactly halfway between two quantization levels: Q8_0/Q8_1 round half away from
// zero (roundf), Q8_K half to even. Scales are powers of two, so the ties are exact.
TEST(FromFloat, Q8RoundingTiesMatchReference) {
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (int e = -3; e <= 3; ++e) {
      const float step = std::ldexp(1.0f, e);
      // Q8_0 / Q8_1: amax = 127 * step gives d = step exactly.
      std::vector<float> x;
      for (int b = 0; b < 8; ++b) {
        x.push_back(127 * step);
        for (int j = 1; j < 32; ++j) {
          const int level = (b * 31 + j) % 253 - 126;  // -126..126
          x.push_back((level + (level < 0 ? -0.5f : 0.5f)) * step);
        }
      }
      x[33] = 0.49999997f * step;
      x[34] = -0.5f * step;
      for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q8_1}) {
        expect_identical(type, x, 0, "ties step=" + std::to_string(step));
      }
      // Q8_K: the first value of largest magnitude is -127 * step, so iscale = 1 / step.
      std::vector<float> xk(512);
      for (int j = 0; j < 512; ++j) xk[j] = ((j * 37) % 253 - 126 + 0.5f) * step;
      xk[5] = -127 * step;
      xk[9] = 127 * step;  // same magnitude, later: must not decide the sign
      xk[256 + 2] = 127 * step;
      xk[256 + 200] = -127 * step;
      expect_identical(GgmlType::Q8_K, xk, 0, "ties step=" + std::to_string(step));
    }
  }
}

TEST(FromFloat, Q8SpecialBlocksMatchReference) {
  std::mt19937 rng(5);
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K}) {
      const int64_t bs = testing::block_of(type);
      std::vector<float> x(static_cast<size_t>(3 * bs), 0.0f);  // block 0: all zero
      for (int64_t j = bs; j < 2 * bs; ++j) x[j] = -0.0f;       // block 1: negative zeros
      // Tiny scales (1/d stays finite; a subnormal amax would overflow 1/d in the reference).
      const std::vector<float> tiny = testing::normal_row(rng, bs, 1e-30f);
      std::copy(tiny.begin(), tiny.end(), x.begin() + 2 * bs);
      expect_identical(type, x, 0, "zero/tiny blocks");
      std::vector<float> flat(static_cast<size_t>(bs), -2.5f);  // every value the maximum
      expect_identical(type, flat, 1, "constant block");
    }
  }
}

// F16 and BF16 over float bit patterns: a strided sweep of all 2^32, every exponent with
// mantissas around each rounding position (ties included), and the special values.
TEST(FromFloat, HalfConversionsMatchReferenceOnBitPatterns) {
  std::vector<float> patterns;
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 997)
    patterns.push_back(from_bits(static_cast<uint32_t>(u)));
  for (uint32_t sign : {0u, 0x80000000u}) {
    for (uint32_t exp = 0; exp < 256; ++exp) {
      for (int b = 0; b < 23; ++b) {
        for (uint32_t m :
             {1u << b, (1u << b) + 1, (1u << b) - 1, 3u << b, (1u << b) | 0x7fffffu >> (23 - b)}) {
          patterns.push_back(from_bits(sign | (exp << 23) | (m & 0x7fffffu)));
        }
      }
    }
  }
  const float specials[] = {0.0f,
                            -0.0f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            from_bits(0x7f800001u),
                            from_bits(0xffc00001u),
                            65504.0f,
                            65520.0f,
                            65519.996f,
                            std::numeric_limits<float>::denorm_min(),
                            5.9604645e-08f,
                            2.9802322e-08f,
                            2.9802326e-08f,
                            3.3895314e38f,
                            3.4028235e38f};
  patterns.insert(patterns.end(), std::begin(specials), std::end(specials));
  patterns.push_back(1.0f);  // odd length: exercises the scalar tail too
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : {GgmlType::F16, GgmlType::BF16}) {
      expect_identical(type, patterns, 0, "bit patterns");
      expect_identical(type, patterns, 2, "bit patterns, misaligned");
    }
  }
}

}  // namespace
}  // namespace quanta::kernels
