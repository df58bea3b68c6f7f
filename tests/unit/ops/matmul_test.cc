// ops::matmul on every kernel path and weight type: against an f64 product of the stored
// (dequantized) values; with 1 and 2 threads bit-identical; and batch-invariant: each
// token's output row is bit-identical whether it is multiplied alone or with other tokens
// (the GEMM tile shapes of prefill / batched decode against the decode shapes); the
// residual epilogue equals ops::add after the product.
#include "ops/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "grouped_matmul_util.h"
#include "kernels/kernel_table.h"
#include "ops/elementwise.h"
#include "ops/matmul_group.h"

namespace quanta::ops {
namespace {

using testing::kAllTypes;
using testing::Matrix;
using testing::random_matrix;

// y[t, :] for tokens [first, first + n) of x (rows of k floats).
std::vector<float> run_matmul(const WeightView& w, const std::vector<float>& x, int64_t first,
                              int64_t n, ThreadPool& pool) {
  AlignedBuffer scratch(matmul_scratch_bytes(w.type, w.n_cols, n) + 64);
  std::vector<float> y(n * w.n_rows, -1.0f);
  matmul(w, x.data() + first * w.n_cols, w.n_cols, n, y.data(), w.n_rows, scratch.data(), pool);
  return y;
}

TEST(Matmul, BatchInvariantThreadExactAndCloseToExact) {
  std::mt19937 rng(41);
  const int64_t n_rows = 45, k = 512, n_tokens = 19;
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n_tokens * k);
  for (float& v : x) v = dist(rng);
  ThreadPool one(1), two(2);
  for (const std::string& isa : kernels::available_isas()) {
    kernels::select(isa);
    for (GgmlType type : kAllTypes) {
      const Matrix m = random_matrix(rng, type, n_rows, k);
      const std::vector<float> batch = run_matmul(m.view, x, 0, n_tokens, two);
      EXPECT_EQ(batch, run_matmul(m.view, x, 0, n_tokens, one)) << isa << " " << type_name(type);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const std::vector<float> alone = run_matmul(m.view, x, t, 1, two);
        for (int64_t r = 0; r < n_rows; ++r) {
          ASSERT_EQ(batch[t * n_rows + r], alone[r])
              << isa << " " << type_name(type) << " token " << t << " row " << r;
        }
      }
      // Against the f64 product of the dequantized weights and the original activations:
      // the activation quantization (Q8) and rounding stay within a few percent of the
      // magnitude sum.
      std::vector<float> wrow(k);
      for (int64_t r = 0; r < n_rows; r += 7) {
        dequantize_row(m.view, r, wrow.data());
        for (int64_t t = 0; t < n_tokens; t += 5) {
          double exact = 0.0, magnitude = 0.0;
          for (int64_t i = 0; i < k; ++i) {
            exact += static_cast<double>(wrow[i]) * x[t * k + i];
            magnitude += std::fabs(static_cast<double>(wrow[i]) * x[t * k + i]);
          }
          EXPECT_NEAR(batch[t * n_rows + r], exact, 0.02 * magnitude)
              << isa << " " << type_name(type) << " token " << t << " row " << r;
        }
      }
    }
  }
  kernels::select(kernels::available_isas().back());
}

// The residual epilogue adds each output row to the residual exactly as ops::add after the
// product does, on a dynamic split as on one thread: rows split (the tokens' conversion split
// too) and, for many tokens, tokens split (split_tokens).
TEST(Matmul, ResidualEpilogueAndTokenSplitMatchOneThread) {
  std::mt19937 rng(43);
  const int64_t n_rows = 96, k = 256;
  ThreadPool one(1), dynamic(2, SplitMode::kDynamic);
  WeightView view;  // only its layout matters to split_tokens
  ASSERT_TRUE(split_tokens(200, dynamic, view));
  ASSERT_FALSE(split_tokens(16, dynamic, view) || split_tokens(200, one, view));
  for (const std::string& isa : kernels::available_isas()) {
    kernels::select(isa);
    // Weights whose kernel wants all the tokens per call (amx's tiles) keep the row split.
    for (int l = 0; l < kernels::kWeightLayoutCount; ++l) {
      view.layout = static_cast<kernels::WeightLayout>(l);
      EXPECT_EQ(split_tokens(200, dynamic, view), !kernels::active().wants_all_tokens[l])
          << isa << " layout " << l;
    }
    for (int64_t n_tokens : {7, 200}) {
      std::normal_distribution<float> dist(0.0f, 1.0f);
      std::vector<float> x(n_tokens * k), base(n_tokens * n_rows);
      for (float& v : x) v = dist(rng);
      for (float& v : base) v = dist(rng);
      for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::F16}) {
        const Matrix m = random_matrix(rng, type, n_rows, k);
        std::vector<float> want = base;
        add(want.data(), run_matmul(m.view, x, 0, n_tokens, one).data(), n_tokens * n_rows);
        AlignedBuffer scratch(matmul_scratch_bytes(type, k, n_tokens));
        std::vector<float> y(n_tokens * n_rows), residual = base;
        matmul(m.view, x.data(), k, n_tokens, y.data(), n_rows, scratch.data(), dynamic,
               residual.data());
        EXPECT_EQ(residual, want) << isa << " " << type_name(type) << " " << n_tokens;
        EXPECT_EQ(y, run_matmul(m.view, x, 0, n_tokens, one)) << isa << " " << type_name(type);
      }
    }
  }
  kernels::select(kernels::available_isas().back());
}

}  // namespace
}  // namespace quanta::ops
