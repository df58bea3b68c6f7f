// ops::MatmulGroupPlan against separate ops::matmul calls: bit-identical for every weight
// type on every kernel path (ref, avx2, ... via kernels::select, as QUANTA_FORCE_ISA does),
// for mixed types, token counts, part counts, both pool splits and with RMSNorm fused into
// the conversion (normed rows kept in norm_out or not);
// the bias + RoPE epilogue equals ops::add + ops::rope_apply after the product, bit for bit,
// in both pairings; and the plan's row split covers every row once, on the grain, balanced
// by bytes.
#include "ops/matmul_group.h"

#include <gtest/gtest.h>

#include <numeric>
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
  const std::vector<float> x = testing::random_normals(rng, n_tokens * k, 0.3f);
  const std::vector<float> norm = testing::random_normals(rng, k, 1.0f);
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
  if (!with_norm) return;
  // Normed rows kept in norm_out (the tokens then convert in parallel): the same products,
  // and norm_out holds the normed rows.
  std::vector<float> kept(n_tokens * k, -7.0f);
  in.norm_out = kept.data();
  std::vector<std::vector<float>> ys2;
  for (size_t i = 0; i < views.size(); ++i) {
    ys2.emplace_back(n_tokens * views[i].n_rows, -7.0f);
    outs[i].y = ys2[i].data();
  }
  plan.run(in, outs.data(), scratch.data(), pool);
  EXPECT_EQ(kept, xn) << what << " norm_out";
  for (size_t i = 0; i < views.size(); ++i) EXPECT_EQ(ys2[i], ys[i]) << what << " norm_out";
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
      pool.set_split(parts % 2 == 0 ? SplitMode::kDynamic : SplitMode::kContiguous);
      expect_group_matches({&a, &b, &c}, parts, 6, true, rng, pool, isa + " q4_K_m");
      expect_group_matches({&d, &a, &e, &c}, parts, 4, false, rng, pool, isa + " mixed");
    }
    // Enough tokens to split over tokens (with norm_out, and without a norm).
    expect_group_matches({&a, &b, &c}, 4, 200, true, rng, pool, isa + " q4_K_m tokens");
    expect_group_matches({&d, &e}, 4, 200, false, rng, pool, isa + " mixed tokens");
  }
  kernels::select(kernels::available_isas().back());
}

// Q (n_head heads), K (n_kv heads) with biases and RoPE in the epilogue, V with a bias only,
// against separate products followed by the unfused passes.
void expect_rope_epilogue_matches(RopeStyle style, int32_t head_dim, int32_t n_rot, int n_parts,
                                  int64_t n_tokens, GgmlType type, std::mt19937& rng,
                                  ThreadPool& pool) {
  const int64_t k = 256;
  const int32_t n_head = 6, n_kv = 2;
  const Matrix q = testing::random_matrix(rng, type, n_head * head_dim, k);
  const Matrix kk = testing::random_matrix(rng, type, n_kv * head_dim, k);
  const Matrix v = testing::random_matrix(rng, type, n_kv * head_dim, k);
  const WeightView views[3] = {q.view, kk.view, v.view};
  const int32_t align = rope_row_align(style, head_dim);
  const int32_t row_align[3] = {align, align, 1};
  const MatmulGroupPlan plan(views, 3, n_parts, row_align);
  const std::vector<float> freq_factors = testing::random_normals(rng, n_rot / 2, 2.0f);
  RopeParams params;
  params.style = style;
  params.n_rot = n_rot;
  params.freq_base = 10000.0f;
  params.freq_factors = n_rot == head_dim ? nullptr : freq_factors.data();
  std::vector<float> cos_sin(n_tokens * n_rot);
  for (int64_t t = 0; t < n_tokens; ++t) rope_cache(params, 3 + 7 * t, &cos_sin[t * n_rot]);
  const RopeEpilogue rope{params, cos_sin.data(), head_dim};
  std::vector<std::vector<float>> biases, ys;
  for (const WeightView& w : views) {
    biases.push_back(testing::random_normals(rng, w.n_rows));
    ys.emplace_back(n_tokens * w.n_rows, -7.0f);
  }
  const MatmulOutput outs[3] = {{ys[0].data(), views[0].n_rows, biases[0].data(), &rope},
                                {ys[1].data(), views[1].n_rows, biases[1].data(), &rope},
                                {ys[2].data(), views[2].n_rows, biases[2].data(), nullptr}};
  const std::vector<float> x = testing::random_normals(rng, n_tokens * k, 0.3f);
  AlignedBuffer scratch(plan.scratch_bytes(n_tokens));
  plan.run({x.data(), k, n_tokens}, outs, scratch.data(), pool);
  const int32_t n_heads[3] = {n_head, n_kv, n_kv};
  for (int i = 0; i < 3; ++i) {
    std::vector<float> want = testing::separate_matmul(views[i], x, n_tokens, pool);
    const int64_t n = views[i].n_rows;
    for (int64_t t = 0; t < n_tokens; ++t) {
      add(&want[t * n], biases[i].data(), n);
      if (i < 2) rope_apply(params, &cos_sin[t * n_rot], &want[t * n], n_heads[i], head_dim);
    }
    EXPECT_EQ(ys[i], want) << (style == RopeStyle::kNorm ? "norm" : "neox") << " head_dim "
                           << head_dim << " n_rot " << n_rot << " parts " << n_parts << " tokens "
                           << n_tokens << " weight " << i;
  }
  for (int p = 0; p < n_parts; ++p) {
    for (int i = 0; i < 2; ++i) EXPECT_EQ(plan.row_begin(p, i) % align, 0);
  }
}

TEST(MatmulGroup, BiasAndRopeEpilogueBitIdenticalToSeparatePasses) {
  std::mt19937 rng(13);
  ThreadPool pool(2);
  for (RopeStyle style : {RopeStyle::kNorm, RopeStyle::kNeox}) {
    for (int parts : {1, 2, 3, 5}) {
      expect_rope_epilogue_matches(style, 8, 8, parts, 3, GgmlType::Q8_0, rng, pool);
      expect_rope_epilogue_matches(style, 64, 64, parts, 1, GgmlType::Q4_0, rng, pool);
      expect_rope_epilogue_matches(style, 48, 32, parts, 4, GgmlType::F16, rng, pool);
    }
    expect_rope_epilogue_matches(style, 64, 48, 3, 200, GgmlType::Q4_0, rng, pool);  // tokens
  }
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
        EXPECT_TRUE(plan.row_begin(p, i) % MatmulGroupPlan::kGroupGrain == 0 ||
                    plan.row_begin(p, i) == ws[i].n_rows);
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
  // A RoPE alignment makes the grain its least common multiple with kGroupGrain.
  const int32_t align[3] = {128, 24, 1};
  const MatmulGroupPlan plan(ws, 3, 7, align);
  for (int i = 0; i < 3; ++i) {
    const int64_t grain = std::lcm<int64_t>(MatmulGroupPlan::kGroupGrain, align[i]);
    EXPECT_EQ(plan.grain(i), grain);
    for (int p = 0; p < 7; ++p) {
      EXPECT_TRUE(plan.row_begin(p, i) % grain == 0 || plan.row_begin(p, i) == ws[i].n_rows);
    }
  }
}

}  // namespace
}  // namespace quanta::ops
