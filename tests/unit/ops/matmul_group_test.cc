// ops::MatmulGroupPlan against separate ops::matmul calls: bit-identical for every weight
// type on every kernel path (ref, avx2, ... via kernels::select, as QUANTA_FORCE_ISA does),
// for mixed types, token counts, part counts and with RMSNorm fused into the conversion;
// and the plan's row split covers every row once, on the grain, balanced by bytes.
#include "ops/matmul_group.h"

#include <gtest/gtest.h>

#include <string>

#include "grouped_matmul_util.h"
#include "kernels/kernel_table.h"

namespace quanta::ops {
namespace {

using testing::Matrix;

// Runs the group of `ms` on x (optionally normed) and compares each output with ops::matmul.
void expect_group_matches(const std::vector<const Matrix*>& ms, int n_parts, int64_t n_tokens,
                          bool with_norm, std::mt19937& rng, ThreadPool& pool,
                          const std::string& what) {
  const int64_t k = ms[0]->view.n_cols;
  const std::vector<float> x = testing::random_floats(rng, n_tokens * k, 0.3f);
  const std::vector<float> norm = testing::random_floats(rng, k, 1.0f);
  std::vector<WeightView> views;
  for (const Matrix* m : ms) views.push_back(m->view);
  const MatmulGroupPlan plan(views.data(), static_cast<int>(views.size()), n_parts);
  AlignedBuffer scratch(plan.scratch_bytes(n_tokens));
  std::vector<std::vector<float>> ys;
  std::vector<MatmulOutput> outs;
  for (const WeightView& w : views) ys.emplace_back(n_tokens * w.n_rows, -7.0f);
  for (size_t i = 0; i < views.size(); ++i) outs.push_back({ys[i].data(), views[i].n_rows});
  MatmulInput in{x.data(), k, n_tokens, with_norm ? norm.data() : nullptr, 1e-5f};
  plan.run(in, outs.data(), scratch.data(), pool);
  const std::vector<float> xn =
      testing::normed_rows(x, n_tokens, k, with_norm ? norm.data() : nullptr, 1e-5f);
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(ys[i], testing::separate_matmul(views[i], xn, n_tokens, pool))
        << what << " weight " << i << " parts " << n_parts << " tokens " << n_tokens
        << (with_norm ? " normed" : "");
  }
}

TEST(MatmulGroup, BitIdenticalToSeparateCallsEveryTypeAndIsa) {
  std::mt19937 rng(5);
  const int64_t k = 512;
  ThreadPool pool(2);
  for (const std::string& isa : kernels::available_isas()) {
    kernels::select(isa);
    for (GgmlType type : testing::kAllTypes) {
      const Matrix q = testing::random_matrix(rng, type, 70, k);
      const Matrix kk = testing::random_matrix(rng, type, 17, k);
      const Matrix v = testing::random_matrix(rng, type, 33, k);
      const std::string what = isa + " " + type_name(type);
      for (int64_t n_tokens : {1, 2, 19}) {
        expect_group_matches({&q, &kk, &v}, 2, n_tokens, n_tokens == 2, rng, pool, what);
      }
      expect_group_matches({&q, &kk, &v}, 3, 5, true, rng, pool, what);
      expect_group_matches({&kk, &v}, 1, 3, false, rng, pool, what);
    }
  }
  kernels::select(kernels::available_isas().back());
}

TEST(MatmulGroup, MixedTypesConvertOncePerVecDotType) {
  std::mt19937 rng(9);
  const int64_t k = 256;
  ThreadPool pool(2);
  for (const std::string& isa : kernels::available_isas()) {
    kernels::select(isa);
    // Q4_K_M's Q/K/V (Q4_K, Q4_K, Q6_K share Q8_K); then three different vec_dot_types.
    const Matrix a = testing::random_matrix(rng, GgmlType::Q4_K, 48, k);
    const Matrix b = testing::random_matrix(rng, GgmlType::Q4_K, 16, k);
    const Matrix c = testing::random_matrix(rng, GgmlType::Q6_K, 16, k);
    const Matrix d = testing::random_matrix(rng, GgmlType::Q8_0, 40, k);
    const Matrix e = testing::random_matrix(rng, GgmlType::F16, 9, k);
    for (int parts : {1, 2, 4, 7}) {
      expect_group_matches({&a, &b, &c}, parts, 6, true, rng, pool, isa + " q4_K_m");
      expect_group_matches({&d, &a, &e, &c}, parts, 4, false, rng, pool, isa + " mixed");
    }
  }
  kernels::select(kernels::available_isas().back());
}

TEST(MatmulGroup, PlanCoversEveryRowOnceBalancedByBytes) {
  const WeightView ws[3] = {{GgmlType::Q4_0, 2048, 2048, 1152, nullptr},
                            {GgmlType::Q4_0, 2048, 256, 1152, nullptr},
                            {GgmlType::Q6_K, 2048, 256, 1680, nullptr}};
  for (int parts : {1, 2, 3, 16}) {
    const MatmulGroupPlan plan(ws, 3, parts);
    ASSERT_EQ(plan.n_parts(), parts);
    double total = 0.0;
    for (const WeightView& w : ws) total += static_cast<double>(w.row_bytes) * w.n_rows;
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(plan.row_begin(0, i), 0);
      EXPECT_EQ(plan.row_end(parts - 1, i), ws[i].n_rows);
      for (int p = 0; p < parts; ++p) {
        EXPECT_LE(plan.row_begin(p, i), plan.row_end(p, i));
        if (p + 1 < parts) {
          EXPECT_EQ(plan.row_end(p, i), plan.row_begin(p + 1, i));
        }
        EXPECT_EQ(plan.row_begin(p, i) % MatmulGroupPlan::kGroupGrain, 0);
      }
    }
    for (int p = 0; p < parts; ++p) {
      double bytes = 0.0;
      for (int i = 0; i < 3; ++i) {
        bytes += static_cast<double>(ws[i].row_bytes) * (plan.row_end(p, i) - plan.row_begin(p, i));
      }
      // Each boundary moves at most half a grain of the widest rows from its byte target.
      EXPECT_NEAR(bytes, total / parts, MatmulGroupPlan::kGroupGrain * 1680.0) << parts << " " << p;
    }
  }
}

}  // namespace
}  // namespace quanta::ops
