// Importance-weighted quantizers: without weights they are the reference quantizers; with
// weights they lower the weighted squared error where the weights are, and they stay valid
// blocks (round trip within the type's error bound, all-zero rows stay zero).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "quant/weighted.h"
#include "quant_test_util.h"

namespace quanta {
namespace {

const GgmlType kWeightedTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                                   GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K,
                                   GgmlType::Q6_K};

std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Importance like real activations: log-normal, a few columns 100x the rest.
std::vector<float> skewed_importance(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::lognormal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> w(n);
  for (size_t j = 0; j < n; ++j) w[j] = d(rng) * (j % 37 == 5 ? 100.0f : 1.0f);
  return w;
}

// sum_rows sum_j imp[j] * (x - dequant(quant(x)))^2.
double weighted_error(GgmlType type, const std::vector<float>& x, int64_t n_cols,
                      const std::vector<float>& imp, const float* quantizer_imp) {
  std::vector<uint8_t> q(row_size(type, n_cols));
  std::vector<float> back(n_cols);
  double total = 0.0;
  for (size_t r = 0; r < x.size() / n_cols; ++r) {
    const float* row = x.data() + r * n_cols;
    quantize_row_weighted(type, row, q.data(), n_cols, quantizer_imp);
    dequantize_row(type, q.data(), back.data(), n_cols);
    for (int64_t j = 0; j < n_cols; ++j) {
      const double d = row[j] - back[j];
      total += imp[j] * d * d;
    }
  }
  return total;
}

class Weighted : public ::testing::TestWithParam<GgmlType> {};

TEST_P(Weighted, NullImportanceIsTheReferenceQuantizer) {
  const GgmlType type = GetParam();
  const int64_t n = 512;
  const std::vector<float> x = gaussian(n, 1);
  std::vector<uint8_t> a(row_size(type, n)), b(row_size(type, n));
  quantize_row(type, x.data(), a.data(), n);
  quantize_row_weighted(type, x.data(), b.data(), n, nullptr);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(has_weighted_quantizer(type));
}

TEST_P(Weighted, LowersTheWeightedErrorOverManyRows) {
  const GgmlType type = GetParam();
  const int64_t n_cols = 512, n_rows = 64;
  const std::vector<float> x = gaussian(n_cols * n_rows, 2, 0.05f);
  const std::vector<float> imp = skewed_importance(n_cols, 3);
  const double plain = weighted_error(type, x, n_cols, imp, nullptr);
  const double weighted = weighted_error(type, x, n_cols, imp, imp.data());
  EXPECT_LT(weighted, plain * 0.8) << type_name(type) << ": plain " << plain << " weighted "
                                    << weighted;
}

TEST_P(Weighted, UniformImportanceStaysCloseToPlain) {
  // With equal weights the searches optimise the plain squared error (up to ggml's
  // sqrt(sigma2 + x^2) factor): the unweighted error must not get much worse.
  const GgmlType type = GetParam();
  const int64_t n_cols = 256, n_rows = 64;
  const std::vector<float> x = gaussian(n_cols * n_rows, 4);
  const std::vector<float> ones(n_cols, 1.0f);
  const double plain = weighted_error(type, x, n_cols, ones, nullptr);
  const double weighted = weighted_error(type, x, n_cols, ones, ones.data());
  EXPECT_LT(weighted, plain * 1.10) << type_name(type);
}

TEST_P(Weighted, ZeroRowStaysZero) {
  const GgmlType type = GetParam();
  const int64_t n = 256;
  const std::vector<float> x(n, 0.0f);
  const std::vector<float> imp = skewed_importance(n, 5);
  std::vector<uint8_t> q(row_size(type, n));
  std::vector<float> back(n, 1.0f);
  quantize_row_weighted(type, x.data(), q.data(), n, imp.data());
  dequantize_row(type, q.data(), back.data(), n);
  for (float v : back) ASSERT_EQ(v, 0.0f) << type_name(type);
}

TEST_P(Weighted, RejectsPartialBlocks) {
  const GgmlType type = GetParam();
  const int64_t n = type_traits(type).block_size + 16;
  const std::vector<float> x(n, 1.0f), imp(n, 1.0f);
  std::vector<uint8_t> q(4096);
  EXPECT_THROW(quantize_row_weighted(type, x.data(), q.data(), n, imp.data()), Error);
}

INSTANTIATE_TEST_SUITE_P(Types, Weighted, ::testing::ValuesIn(kWeightedTypes));

TEST(WeightedQuant, Q8_0AndFloatTypesIgnoreImportance) {
  // llama.cpp's quantize_q8_0 has no weighted path; neither do the float conversions.
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::F16, GgmlType::BF16}) {
    EXPECT_FALSE(has_weighted_quantizer(type));
    const int64_t n = 256;
    const std::vector<float> x = gaussian(n, 6);
    const std::vector<float> imp = skewed_importance(n, 7);
    std::vector<uint8_t> a(row_size(type, n)), b(row_size(type, n));
    quantize_row(type, x.data(), a.data(), n);
    quantize_row_weighted(type, x.data(), b.data(), n, imp.data());
    EXPECT_EQ(a, b) << type_name(type);
  }
}

TEST(WeightedQuant, HeavilyWeightedColumnIsNearlyExact) {
  // One column with overwhelming importance: the scale search must fit it (almost) exactly,
  // where round-to-nearest leaves it an ordinary error.
  const int64_t n = 256;
  std::vector<float> x = gaussian(n, 8);
  std::vector<float> imp(n, 1e-3f);
  imp[17] = 1e3f;
  x[17] = 0.37f * 2.2f;  // between grid points of the plain scale
  std::vector<uint8_t> q(row_size(GgmlType::Q4_0, n));
  std::vector<float> back(n);
  quantize_row_weighted(GgmlType::Q4_0, x.data(), q.data(), n, imp.data());
  dequantize_row(GgmlType::Q4_0, q.data(), back.data(), n);
  const float weighted_err = std::fabs(back[17] - x[17]);
  quantize_row(GgmlType::Q4_0, x.data(), q.data(), n);
  dequantize_row(GgmlType::Q4_0, q.data(), back.data(), n);
  const float plain_err = std::fabs(back[17] - x[17]);
  EXPECT_LT(weighted_err, plain_err);
  EXPECT_LT(weighted_err, 0.02f);
}

}  // namespace
}  // namespace quanta
