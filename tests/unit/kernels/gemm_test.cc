// The GEMM tile shapes of matmul_rows (products with several tokens: prefill, batched
// decode) on every fast ISA and weight type: each token's outputs are bit-identical to the
// same token multiplied alone (batch invariance: a sequence's greedy output must not depend
// on what else is in its batch), and every output is within the rounding bound of the
// scalar reference, for row counts that are not a multiple of the tile, 1..N tokens, token
// counts past the activation chunk, and rows with a tail of blocks after the last group of 8.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.h"

namespace quanta::kernels {
namespace {

using testing::act_type;
using testing::fast_isas;
using testing::IsaScope;

// `n` rows of `k` values quantized to `type`, back to back.
std::vector<uint8_t> random_rows(std::mt19937& rng, GgmlType type, int64_t n, int64_t k) {
  std::vector<uint8_t> out;
  for (int64_t r = 0; r < n; ++r) {
    const std::vector<uint8_t> q = testing::quantize(type, testing::normal_row(rng, k));
    out.insert(out.end(), q.begin(), q.end());
  }
  return out;
}

// y[t * n_rows + r] for all rows and tokens through the active table.
std::vector<float> product(GgmlType type, const std::vector<uint8_t>& w, int64_t n_rows, int64_t k,
                           const uint8_t* act, int64_t n_tokens) {
  std::vector<float> y(n_rows * n_tokens, -1.0f);
  active().matmul_rows(type, w.data(), row_size(type, k), k, act, row_size(act_type(type), k),
                       n_tokens, y.data(), n_rows, 0, n_rows);
  return y;
}

// Lengths per type: a tail of blocks after full groups of 8 (block types), odd (floats).
std::vector<int64_t> lengths(GgmlType type) {
  const int64_t bs = testing::block_of(type);
  if (bs == 1) return {37, 520};
  return {bs, 11 * bs};
}

TEST(Gemm, TokenResultsDoNotDependOnTheBatch) {
  std::mt19937 rng(31);
  const int64_t n_rows = 11;
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) {
      for (int64_t k : lengths(type)) {
        const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
        const size_t ab = row_size(act_type(type), k);
        const std::vector<uint8_t> act = random_rows(rng, act_type(type), 40, k);
        // Each token alone (the decode path).
        std::vector<std::vector<float>> alone;
        for (int64_t t = 0; t < 40; ++t)
          alone.push_back(product(type, w, n_rows, k, &act[t * ab], 1));
        // The same tokens in batches of every size, starting at different tokens.
        for (int64_t n : {2, 3, 4, 5, 6, 7, 8, 9, 13, 17, 33}) {
          const int64_t first = n % 7;
          const std::vector<float> y = product(type, w, n_rows, k, &act[first * ab], n);
          for (int64_t t = 0; t < n; ++t) {
            for (int64_t r = 0; r < n_rows; ++r) {
              ASSERT_EQ(y[t * n_rows + r], alone[first + t][r])
                  << isa << " " << type_name(type) << " k=" << k << " batch " << n << " token " << t
                  << " row " << r;
            }
          }
        }
      }
    }
  }
}

// Products large enough for several token chunks and row tiles, against the reference.
TEST(Gemm, LargeProductsMatchReference) {
  std::mt19937 rng(32);
  const int64_t n_rows = 37, n_tokens = 150;
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) {
      const int64_t k = testing::block_of(type) == 1 ? 1000 : 1024;
      const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
      const std::vector<uint8_t> act = random_rows(rng, act_type(type), n_tokens, k);
      const size_t wb = row_size(type, k), ab = row_size(act_type(type), k);
      const std::vector<float> got = product(type, w, n_rows, k, act.data(), n_tokens);
      std::vector<float> want(n_rows * n_tokens);
      reference().matmul_rows(type, w.data(), wb, k, act.data(), ab, n_tokens, want.data(), n_rows,
                              0, n_rows);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < n_rows; ++r) {
          const double bound = testing::rounding_bound(type, &w[r * wb], &act[t * ab], k);
          ASSERT_NEAR(got[t * n_rows + r], want[t * n_rows + r], bound)
              << isa << " " << type_name(type) << " token " << t << " row " << r;
        }
      }
    }
  }
}

// A product split over row ranges (as the thread pool splits it) equals the whole product.
TEST(Gemm, RowSplitsOfManyTokensAreExact) {
  std::mt19937 rng(33);
  const int64_t n_rows = 29, n_tokens = 21, k = 512;
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) {
      const std::vector<uint8_t> w = random_rows(rng, type, n_rows, k);
      const std::vector<uint8_t> act = random_rows(rng, act_type(type), n_tokens, k);
      const std::vector<float> whole = product(type, w, n_rows, k, act.data(), n_tokens);
      std::vector<float> split(n_rows * n_tokens);
      const int64_t cuts[] = {0, 3, 4, 16, 23, n_rows};
      for (int c = 0; c + 1 < 6; ++c) {
        active().matmul_rows(type, w.data(), row_size(type, k), k, act.data(),
                             row_size(act_type(type), k), n_tokens, split.data(), n_rows, cuts[c],
                             cuts[c + 1]);
      }
      EXPECT_EQ(whole, split) << isa << " " << type_name(type);
    }
  }
}

}  // namespace
}  // namespace quanta::kernels
