// ops::matmul_swiglu against the unfused composition (ops::matmul for gate and up, then
// ops::swiglu): bit-identical for every weight type on every kernel path, with and without
// RMSNorm fused into the conversion, 1 and 2 threads, decode and prefill token counts.
#include "ops/fused_swiglu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "grouped_matmul_util.h"
#include "kernels/kernel_table.h"

namespace quanta::ops {
namespace {

using testing::Matrix;

void expect_fused_matches(const Matrix& gate, const Matrix& up, int64_t n_tokens, bool with_norm,
                          std::mt19937& rng, ThreadPool& pool, const std::string& what) {
  const int64_t k = gate.view.n_cols, n_ff = gate.view.n_rows;
  const std::vector<float> x = testing::random_normals(rng, n_tokens * k, 0.2f);
  const std::vector<float> norm = testing::random_normals(rng, k, 1.0f);
  const float* norm_ptr = with_norm ? norm.data() : nullptr;
  AlignedBuffer scratch(swiglu_scratch_bytes(gate.view, up.view, n_tokens));
  std::vector<float> g(n_tokens * n_ff, -3.0f), u(n_tokens * n_ff, -3.0f);
  const MatmulInput in{x.data(), k, n_tokens, norm_ptr, 1e-6f};
  matmul_swiglu(gate.view, up.view, in, {g.data(), n_ff}, {u.data(), n_ff}, scratch.data(), pool);

  const std::vector<float> xn = testing::normed_rows(x, n_tokens, k, norm_ptr, 1e-6f);
  std::vector<float> g_ref = testing::separate_matmul(gate.view, xn, n_tokens, pool);
  const std::vector<float> u_ref = testing::separate_matmul(up.view, xn, n_tokens, pool);
  swiglu(g_ref.data(), u_ref.data(), n_tokens * n_ff);
  EXPECT_EQ(u, u_ref) << what << " up, tokens " << n_tokens;
  EXPECT_EQ(g, g_ref) << what << " swiglu, tokens " << n_tokens;
}

TEST(FusedSwiglu, BitIdenticalToUnfusedEveryTypeAndIsa) {
  std::mt19937 rng(17);
  const int64_t k = 256;
  ThreadPool one(1), two(2);
  for (const std::string& isa : kernels::available_isas()) {
    kernels::select(isa);
    for (GgmlType type : testing::kAllTypes) {
      const Matrix gate = testing::random_matrix(rng, type, 75, k);
      const Matrix up = testing::random_matrix(rng, type, 75, k);
      const std::string what = isa + " " + type_name(type);
      expect_fused_matches(gate, up, 1, true, rng, two, what);
      expect_fused_matches(gate, up, 2, false, rng, one, what);
      expect_fused_matches(gate, up, 21, true, rng, two, what);
    }
    // Different types for gate and up (different vec_dot_types: two conversions).
    const Matrix gate = testing::random_matrix(rng, GgmlType::Q4_0, 40, k);
    const Matrix up = testing::random_matrix(rng, GgmlType::Q6_K, 40, k);
    expect_fused_matches(gate, up, 3, true, rng, two, isa + " q4_0+q6_K");
    expect_fused_matches(gate, up, 200, false, rng, two, isa + " q4_0+q6_K tokens split");
  }
  kernels::select(kernels::available_isas().back());
}

// ops::swiglu on every kernel path equals the scalar formula with std::exp bit for bit (the
// AVX2 version reproduces glibc's expf), on random values over the whole float range and on
// the edges of expf's fast path (|x| near 88, underflow near -104), zeros, subnormals,
// infinities and NaN.
TEST(Swiglu, BitIdenticalToScalarFormulaOnEveryIsa) {
  std::mt19937 rng(5);
  std::vector<float> g;
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f,    -0.0f,
                  1e-45f,  -1e-45f,
                  1e-40f,  87.9f,
                  -87.9f,  88.0f,
                  -88.0f,  88.8f,
                  -88.8f,  103.0f,
                  -103.0f, 103.5f,
                  -103.5f, 104.5f,
                  -104.5f, 1e30f,
                  -1e30f,  inf,
                  -inf,    std::numeric_limits<float>::quiet_NaN()}) {
    g.push_back(v);
  }
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 20000; ++i) {  // any bit pattern: every exponent
    const uint32_t b = bits(rng);
    float v;
    std::memcpy(&v, &b, sizeof(v));
    g.push_back(v);
  }
  std::uniform_real_distribution<float> typical(-90.0f, 90.0f);
  for (int i = 0; i < 1000000; ++i) g.push_back(typical(rng));
  const std::vector<float> up = testing::random_normals(rng, g.size(), 0.5f);
  for (const std::string& isa : kernels::available_isas()) {
    kernels::select(isa);
    for (size_t offset : {size_t{0}, size_t{3}}) {  // vector body and scalar tails
      std::vector<float> out(g.begin() + offset, g.end());
      swiglu(out.data(), up.data() + offset, static_cast<int64_t>(out.size()));
      for (size_t i = 0; i < out.size(); ++i) {
        const float x = g[i + offset];
        const float want = x / (1.0f + std::exp(-x)) * up[i + offset];
        if (std::isnan(want)) {
          EXPECT_TRUE(std::isnan(out[i])) << isa << " x=" << x;
        } else {
          ASSERT_EQ(std::memcmp(&want, &out[i], sizeof(float)), 0)
              << isa << " x=" << x << " got " << out[i] << " want " << want;
        }
      }
    }
  }
  kernels::select(kernels::available_isas().back());
}

}  // namespace
}  // namespace quanta::ops
