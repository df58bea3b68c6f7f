// Kernel dispatch: every ISA this machine can run is selectable and computes the same
// products as the scalar reference; unknown names are rejected with a clear message.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/kernel_table.h"

namespace quanta::kernels {
namespace {

TEST(Dispatch, ReferenceIsAlwaysAvailable) {
  const std::vector<std::string> isas = available_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), "ref");
  EXPECT_STREQ(reference().isa, "ref");
}

TEST(Dispatch, UnknownIsaIsRejected) {
  try {
    select("avx9000");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("avx9000"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("ref"), std::string::npos);  // lists what exists
  }
}

// matmul_rows of every ISA equals the reference, for every supported weight type.
TEST(Dispatch, EveryIsaMatchesReferenceMatmul) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist;
  const int64_t k = 512, rows = 8, tokens = 3;
  for (const std::string& isa : available_isas()) {
    select(isa);
    const KernelTable& t = active();
    for (uint32_t code = 0; code < kGgmlTypeCount; ++code) {
      const auto type = static_cast<GgmlType>(code);
      if (!is_supported_type(type)) continue;
      const GgmlType act_type = type_traits(type).vec_dot_type;
      std::vector<float> w(k * rows), x(k * tokens);
      for (float& v : w) v = dist(rng);
      for (float& v : x) v = dist(rng);
      const size_t wrow = row_size(type, k), arow = row_size(act_type, k);
      std::vector<uint8_t> wq(wrow * rows), xq(arow * tokens);
      for (int64_t r = 0; r < rows; ++r) quantize_row(type, &w[r * k], &wq[r * wrow], k);
      for (int64_t r = 0; r < tokens; ++r) quantize_row(act_type, &x[r * k], &xq[r * arow], k);
      std::vector<float> got(rows * tokens), want(rows * tokens);
      t.matmul_rows(type, wq.data(), wrow, k, xq.data(), arow, tokens, got.data(), rows, 0, rows);
      reference().matmul_rows(type, wq.data(), wrow, k, xq.data(), arow, tokens, want.data(),
                              rows, 0, rows);
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::fabs(want[i])))
            << isa << " " << type_name(type) << " " << i;
      }
      // And the reference equals a direct vec_dot.
      EXPECT_EQ(want[1 * rows + 2], type_traits(type).vec_dot(k, &wq[2 * wrow], &xq[1 * arow]));
    }
  }
  select("ref");
}

}  // namespace
}  // namespace quanta::kernels
