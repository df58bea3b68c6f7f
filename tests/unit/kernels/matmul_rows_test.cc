// matmul_rows of every fast ISA and weight type against the reference, on odd shapes: row
// counts that are not a multiple of the tile, 1..7 tokens, one block and many (with a tail
// of fewer than 8 blocks), padded (misaligned) row strides, a sub-range of rows and a y
// stride wider than the rows. Each output also equals the same ISA's vec_dot bit for bit:
// a row's result does not depend on the tile it falls in, so any row split is exact.
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

constexpr float kSentinel = -12345.0f;

// `n` rows of `k` values quantized to `type`, `pad` bytes apart beyond their size (pad
// keeps the blocks naturally aligned for the reference's struct accesses), and a copy of
// them starting `misalign` bytes into another buffer for the kernels under test.
struct Rows {
  std::vector<uint8_t> aligned;
  std::vector<uint8_t> shifted;
  size_t stride = 0;
  size_t misalign = 0;
  const uint8_t* row(int64_t r) const { return aligned.data() + r * stride; }
  const uint8_t* data() const { return aligned.data(); }
  const uint8_t* shifted_row(int64_t r) const { return shifted.data() + misalign + r * stride; }
};

Rows make_rows(std::mt19937& rng, GgmlType type, int64_t n, int64_t k, size_t pad,
               size_t misalign) {
  Rows rows;
  rows.stride = row_size(type, k) + pad;
  rows.misalign = misalign;
  rows.aligned.assign(n * rows.stride + 64, 0x77);
  for (int64_t r = 0; r < n; ++r) {
    const std::vector<uint8_t> q = testing::quantize(type, testing::normal_row(rng, k));
    std::memcpy(rows.aligned.data() + r * rows.stride, q.data(), q.size());
  }
  rows.shifted.assign(misalign + rows.aligned.size(), 0x77);
  std::memcpy(rows.shifted.data() + misalign, rows.aligned.data(), rows.aligned.size());
  return rows;
}

void check_shape(std::mt19937& rng, GgmlType type, int64_t n_rows, int64_t n_tokens, int64_t k) {
  const GgmlType at = act_type(type);
  const Rows w = make_rows(rng, type, n_rows, k, 4, 1);
  const Rows a = make_rows(rng, at, n_tokens, k, 8, 3);
  const int64_t y_stride = n_rows + 3;
  const int64_t begin = n_rows > 2 ? 1 : 0, end = n_rows;
  std::vector<float> got(y_stride * n_tokens, kSentinel), want(y_stride * n_tokens, kSentinel);
  active().matmul_rows(type, w.shifted_row(0), w.stride, k, a.shifted_row(0), a.stride, n_tokens,
                       got.data(), y_stride, begin, end);
  reference().matmul_rows(type, w.data(), w.stride, k, a.data(), a.stride, n_tokens, want.data(),
                          y_stride, begin, end);
  const auto dot = active().vec_dot[static_cast<uint32_t>(type)];
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < y_stride; ++r) {
      const float g = got[t * y_stride + r];
      const std::string where = std::string(active().isa) + " " + type_name(type) +
                                " rows=" + std::to_string(n_rows) +
                                " tokens=" + std::to_string(n_tokens) + " k=" + std::to_string(k) +
                                " at row " + std::to_string(r) + " token " + std::to_string(t);
      if (r < begin || r >= end) {
        ASSERT_EQ(g, kSentinel) << where << ": wrote outside the row range";
        continue;
      }
      const double bound = testing::rounding_bound(type, w.row(r), a.row(t), k);
      ASSERT_NEAR(g, want[t * y_stride + r], bound) << where;
      ASSERT_EQ(g, dot(k, w.shifted_row(r), a.shifted_row(t))) << where << ": differs from vec_dot";
    }
  }
}

TEST(MatmulRows, OddShapesMatchReference) {
  std::mt19937 rng(21);
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) {
      const int64_t bs = testing::block_of(type);
      // One block; 9 blocks (8 + a tail of 1) for the block types; odd lengths for floats.
      const std::vector<int64_t> ks =
          bs == 1 ? std::vector<int64_t>{1, 37, 300} : std::vector<int64_t>{bs, 9 * bs};
      for (int64_t k : ks) {
        for (int64_t n_rows : {1, 3, 4, 5, 9}) {
          for (int64_t n_tokens = 1; n_tokens <= 7; ++n_tokens) {
            check_shape(rng, type, n_rows, n_tokens, k);
          }
        }
      }
    }
  }
}

TEST(MatmulRows, LargerProductsMatchReference) {
  std::mt19937 rng(22);
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) {
      check_shape(rng, type, 13, 3, 2048);
      check_shape(rng, type, 6, 1, 256 * 11);
    }
  }
}

// Many tokens with long rows: the tokens go in several chunks (activations kept in L2,
// prepared data on the stack), and the row spread of the tiles leaves a remainder.
TEST(MatmulRows, ManyTokensAreChunked) {
  std::mt19937 rng(24);
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) check_shape(rng, type, 7, 37, 8192);
  }
}

// Rows longer than the kernels' prepared-data buffer are summed in segments; each output
// still equals the reference and the one-token vec_dot (segments never depend on n_tokens).
TEST(MatmulRows, LongRowsAreSegmented) {
  std::mt19937 rng(25);
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1}) {
      check_shape(rng, type, 5, 3, 32 * 500);
    }
    check_shape(rng, GgmlType::Q8_0, 2, 3, 32 * 4104);
  }
}

// Splitting the rows over calls (as threads do) gives bit-identical results.
TEST(MatmulRows, RowSplitsAreExact) {
  std::mt19937 rng(23);
  const int64_t n_rows = 23, n_tokens = 5, k = 512;
  for (const std::string& isa : fast_isas()) {
    IsaScope scope(isa);
    for (GgmlType type : testing::weight_types()) {
      const Rows w = make_rows(rng, type, n_rows, k, 0, 0);
      const Rows a = make_rows(rng, act_type(type), n_tokens, k, 0, 0);
      std::vector<float> whole(n_rows * n_tokens), split(n_rows * n_tokens);
      active().matmul_rows(type, w.data(), w.stride, k, a.data(), a.stride, n_tokens, whole.data(),
                           n_rows, 0, n_rows);
      for (int64_t b : {0, 5, 6, 13, 17}) {
        const int64_t e = b == 17 ? n_rows : (b == 0 ? 5 : (b == 5 ? 6 : (b == 6 ? 13 : 17)));
        active().matmul_rows(type, w.data(), w.stride, k, a.data(), a.stride, n_tokens,
                             split.data(), n_rows, b, e);
      }
      EXPECT_EQ(whole, split) << isa << " " << type_name(type);
    }
  }
}

}  // namespace
}  // namespace quanta::kernels
