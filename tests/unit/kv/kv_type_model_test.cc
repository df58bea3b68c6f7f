// The KV cache type through a whole model: F16, Q8_0 and Q4_0 KV keep the llama.cpp golden
// logits within looser tolerances (and report their distance from F32 KV), stories260K (head
// size 8) through packed quantized rows too; logits are bit-identical for 1 and 2 threads with
// every type; BF16 and K-quant KV types are rejected. The key/value transform of quantized
// caches is exact (q'.k' = q.k - q.m, values restored through the output; the same logits
// through an F32 cache) and deterministic; Q4_0 rounding under a metric lowers its error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "engine/generator.h"
#include "kernels/kernel_table.h"
#include "kv/kv_transform.h"
#include "models/context.h"
#include "models/kv_calibration.h"
#include "models/model.h"
#include "quant/types.h"
#include "quant/weighted.h"
#include "testlib/golden.h"
#include "testlib/shared_data.h"

namespace quanta {
namespace {

struct KvCase {
  const char* name;
  GgmlType kv_type;
  float tolerance;  // absolute, against llama.cpp's logits; see the NOTEs
};

// NOTE: the goldens were computed by llama.cpp with an F32 KV cache (F32-weight models match
// them to 6e-5 with F32 KV). Storing K/V in F16 rounds each element by up to 2^-11 relative;
// measured max |logit - golden| with F16 KV (all prompt positions, all cases, kernel ISAs
// avx2 and ref) in brackets: F32 synthetic models [2.5e-3..5.2e-3], stories260K (trained,
// larger logits) [0.052], F16 weights [0.013..0.0176], quantized activations (rounding flips
// amplify it, as in the F32-KV golden test) [0.33..0.52]. Tolerances are ~1.5x the maxima.
constexpr float kSynF32Tol = 0.008f;
constexpr float kStoriesTol = 0.08f;
constexpr float kF16Tol = 0.026f;
constexpr float kQuantTol = 0.8f;

// NOTE: Q8_0 / Q4_0 KV. Head size 32 (the synthetic Llama models): each head's K and V row is
// quantized per 32 values, and the query is quantized to Q8_0 for the K dot products. Head
// size 8 (stories260K): a token's 4 KV heads share one 32-value block (packed rows, read as
// F32). Measured max |logit - golden| (all cases, ISAs avx2 and ref) in brackets; tolerances
// ~1.5x:
// Q8_0 KV: F32/F16 weights [0.10..0.18], quantized weights [0.42..0.54];
// Q4_0 KV: F32/F16 weights [1.41..2.55], quantized weights [3.24] (4-bit K/V with 32-value
// blocks: ~6% relative noise per element; the synthetic models' logits span tens of units).
// stories260K, with the default transform (kv::KeyTransform, rotate: keys and values; Q4_0
// keys rounded under the query metric): Q8_0 [1.26], Q4_0 [13.52] (keys only, plain Q4_0
// rounding: [1.01] and [9.92]; no transform: [1.70] and [12.99]: its K rows carry
// near-constant channels of up to ~20 that set the block scale; see docs/QUANTIZATION.md).
// The worst single logit moves more than before while the aggregate figures improve (Q4_0
// KL against F32 KV 0.041 -> 0.020). Q4_0 rows take ggml's error-minimizing scale search.
// Quality in aggregate (top-token agreement, KL) is checked by the perplexity tests.
constexpr float kQ8SynTol = 0.27f;
constexpr float kQ8QuantTol = 0.82f;
constexpr float kQ4SynTol = 3.8f;
constexpr float kQ4QuantTol = 4.8f;
constexpr float kQ8StoriesTol = 1.5f;
constexpr float kQ4StoriesTol = 20.0f;

constexpr GgmlType kF16 = GgmlType::F16;
constexpr GgmlType kQ8 = GgmlType::Q8_0;
constexpr GgmlType kQ4 = GgmlType::Q4_0;

const KvCase kCases[] = {
    {"stories260K", kF16, kStoriesTol},         {"syn-llama-gqa-f32", kF16, kSynF32Tol},
    {"syn-llama-mha-f32", kF16, kSynF32Tol},    {"syn-qwen2-f32", kF16, kSynF32Tol},
    {"syn-llama-gqa-f16", kF16, kF16Tol},       {"syn-llama-gqa-q8_0", kF16, kQuantTol},
    {"syn-llama-gqa-q4_k_m", kF16, kQuantTol},  {"stories260K-Q8_0mix", kF16, kQuantTol},
    {"syn-llama-gqa-f32", kQ8, kQ8SynTol},      {"syn-llama-mha-f32", kQ8, kQ8SynTol},
    {"syn-llama-gqa-f16", kQ8, kQ8SynTol},      {"syn-llama-gqa-q8_0", kQ8, kQ8QuantTol},
    {"syn-llama-gqa-q4_k_m", kQ8, kQ8QuantTol}, {"syn-llama-gqa-f32", kQ4, kQ4SynTol},
    {"syn-llama-mha-f32", kQ4, kQ4SynTol},      {"syn-llama-gqa-f16", kQ4, kQ4SynTol},
    {"syn-llama-gqa-q8_0", kQ4, kQ4QuantTol},   {"stories260K", kQ8, kQ8StoriesTol},
    {"stories260K", kQ4, kQ4StoriesTol},
};

models::ContextOptions options(GgmlType kv_type, int32_t n_threads) {
  models::ContextOptions o;
  o.n_ctx = 512;
  o.n_batch = 512;
  o.n_threads = n_threads;
  o.kv_type = kv_type;
  return o;
}

// Logits of every prompt position, [n, n_vocab]; `transform` (fitted for `model`) replaces
// the context's own key transform when non-null.
std::vector<float> prompt_logits(const models::Model& model, const std::vector<int32_t>& tokens,
                                 GgmlType kv_type, int32_t n_threads,
                                 const kv::KeyTransform* transform = nullptr) {
  models::Context ctx(model, options(kv_type, n_threads));
  if (transform != nullptr) ctx.kv().set_key_transform(*transform);
  Generator gen(ctx);
  const int32_t n = static_cast<int32_t>(tokens.size());
  const float* logits = gen.prefill(tokens.data(), n, /*all_logits=*/true);
  return std::vector<float>(logits, logits + static_cast<size_t>(n) * ctx.n_vocab());
}

class KvGolden : public ::testing::TestWithParam<KvCase> {};

TEST_P(KvGolden, MatchesLlamaCppWithinLooserTolerance) {
  const KvCase c = GetParam();
  const testlib::Golden golden = testlib::load_golden(c.name);
  const auto model = models::Model::load(testlib::shared_path("models/" + golden.model));
  const int32_t n_vocab = model->hparams().n_vocab;
  float worst_golden = 0.0f, worst_f32 = 0.0f;
  for (const testlib::GoldenCase& gc : golden.cases) {
    const std::vector<float> f16 = prompt_logits(*model, gc.tokens, c.kv_type, 2);
    const std::vector<float> f32 = prompt_logits(*model, gc.tokens, GgmlType::F32, 2);
    for (size_t i = 0; i < f16.size(); ++i) {
      worst_f32 = std::max(worst_f32, std::fabs(f16[i] - f32[i]));
    }
    for (size_t p = 0; p < gc.top.size(); ++p) {
      const float* row = f16.data() + p * n_vocab;
      for (size_t j = 0; j < gc.top[p].ids.size(); ++j) {
        const float diff = std::fabs(row[gc.top[p].ids[j]] - gc.top[p].logits[j]);
        worst_golden = std::max(worst_golden, diff);
        EXPECT_LE(diff, c.tolerance) << "pos " << p << " token " << gc.top[p].ids[j];
      }
    }
    const float* last = f16.data() + (gc.tokens.size() - 1) * n_vocab;
    for (int32_t v = 0; v < n_vocab; ++v) {
      worst_golden = std::max(worst_golden, std::fabs(last[v] - gc.last_logits[v]));
      ASSERT_LE(std::fabs(last[v] - gc.last_logits[v]), c.tolerance) << "last logits " << v;
    }
  }
  std::printf(
      "[ %s, %s KV ] max |logit - llama.cpp| = %.6f (tolerance %.4f), "
      "max |%s KV - F32 KV| = %.6f\n",
      c.name, type_name(c.kv_type), worst_golden, c.tolerance, type_name(c.kv_type), worst_f32);
}

INSTANTIATE_TEST_SUITE_P(SharedModels, KvGolden, ::testing::ValuesIn(kCases), [](const auto& info) {
  std::string name = std::string(type_name(info.param.kv_type)) + "_" + info.param.name;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

// Prefill then decode steps; every step's logits must be bit-identical for 1 and 2 threads
// (stories260K: packed quantized rows).
void expect_thread_count_invariant(const char* model_name, GgmlType kv_type) {
  SCOPED_TRACE(model_name);
  const auto model = models::Model::load(testlib::shared_path(std::string("models/") + model_name));
  const std::vector<int32_t> prompt = {1,   403, 407, 261, 378, 300, 301, 302, 303, 304,
                                       305, 306, 307, 308, 309, 310, 311, 312, 313, 314};
  {
    std::vector<std::vector<float>> runs;
    for (int32_t threads : {1, 2}) {
      models::Context ctx(*model, options(kv_type, threads));
      Generator gen(ctx);
      const int32_t n = static_cast<int32_t>(prompt.size());
      const float* logits = gen.prefill(prompt.data(), n, /*all_logits=*/true);
      std::vector<float> all(logits, logits + static_cast<size_t>(n) * ctx.n_vocab());
      for (int32_t step = 0; step < 8; ++step) {
        logits = gen.decode(300 + 7 * step);
        all.insert(all.end(), logits, logits + ctx.n_vocab());
      }
      runs.push_back(std::move(all));
    }
    ASSERT_EQ(runs[0].size(), runs[1].size());
    EXPECT_EQ(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(float)), 0)
        << type_name(kv_type);
  }
}

TEST(KvTypeModel, ThreadCountDoesNotChangeLogits) {
  for (GgmlType kv_type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    expect_thread_count_invariant("syn-llama-gqa-f32.gguf", kv_type);
  }
  for (GgmlType kv_type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    expect_thread_count_invariant("stories260K.gguf", kv_type);
  }
}

// BF16 and K-quants are never KV types. stories260K's head size is 8: Q8_0/Q4_0 rows pack
// its 4 KV heads into one 32-value block; the synthetic model's head size 32 is not packed.
TEST(KvTypeModel, RejectsKvTypesTheModelCannotUse) {
  const auto model = models::Model::load(testlib::shared_path("models/stories260K.gguf"));
  for (GgmlType type : {GgmlType::BF16, GgmlType::Q4_K}) {
    EXPECT_THROW(models::Context(*model, options(type, 1)), Error) << type_name(type);
  }
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    models::Context packed(*model, options(type, 1));
    EXPECT_EQ(packed.kv().layout().row_heads(), 4) << type_name(type);
    EXPECT_EQ(packed.kv().layout().row_bytes(), row_size(type, 32)) << type_name(type);
  }
  const auto syn = models::Model::load(testlib::shared_path("models/syn-llama-gqa-f32.gguf"));
  EXPECT_THROW(models::Context(*syn, options(GgmlType::BF16, 1)), Error);
  models::Context ok(*syn, options(GgmlType::Q4_0, 1));
  EXPECT_EQ(ok.kv().layout().type, GgmlType::Q4_0);
  EXPECT_EQ(ok.kv().layout().row_heads(), 1);
}

// The key transform's algebra on random rows: q'.k' = q.k - q.m for every query head of the
// group (so one query's scores shift by one constant), in every mode and both forms of A;
// Walsh-Hadamard is orthonormal and its own inverse.
void expect_scores_shift_by_one_constant(int32_t kDim) {
  SCOPED_TRACE(kDim);
  constexpr int32_t kLayers = 2, kTokens = 40, kHeads = 4, kKvHeads = 2;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> keys(kLayers * kTokens * kKvHeads * kDim);
  std::vector<float> queries(kLayers * kTokens * kHeads * kDim);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = normal(rng) * (1 + i % kDim) + 3.0f * (i % 3);
  for (float& q : queries) q = normal(rng);
  for (kv::KeyTransformMode mode : {kv::KeyTransformMode::kOffset, kv::KeyTransformMode::kScale,
                                    kv::KeyTransformMode::kRotate}) {
    SCOPED_TRACE(kv::key_transform_name(mode));
    const kv::KeyTransform t = kv::KeyTransform::fit(mode, keys.data(), queries.data(), kLayers,
                                                     kTokens, kHeads, kKvHeads, kDim);
    ASSERT_TRUE(t.active());
    const int32_t layer = 1;
    const float* k = keys.data() + (layer * kTokens + 5) * kKvHeads * kDim;
    std::vector<float> q(queries.begin(), queries.begin() + kHeads * kDim), k2(kKvHeads * kDim);
    std::vector<float> q2 = q;
    t.apply_key(layer, k, k2.data());
    t.apply_query(layer, q2.data(), q2.data(), kHeads);
    for (int32_t h = 0; h < kHeads; ++h) {
      const int32_t g = h / (kHeads / kKvHeads);
      const float* m = t.offset(layer, g);
      double want = 0.0, got = 0.0;
      for (int32_t j = 0; j < kDim; ++j) {
        want += q[h * kDim + j] * (k[g * kDim + j] - m[j]);
        got += q2[h * kDim + j] * k2[g * kDim + j];
      }
      EXPECT_NEAR(got, want, 1e-4 * (1.0 + std::fabs(want))) << "head " << h;
    }
  }
}

// Head size 8 (rotate: full matrix) and 64 (rotate: diagonal scale, then Walsh-Hadamard).
TEST(KeyTransform, ScoresShiftByOneConstantPerQuery) {
  expect_scores_shift_by_one_constant(8);
  expect_scores_shift_by_one_constant(64);
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(16), y;
  for (float& v : x) v = normal(rng);
  y = x;
  kv::walsh_hadamard(y.data(), 16);
  double nx = 0.0, ny = 0.0;
  for (int i = 0; i < 16; ++i) nx += x[i] * x[i], ny += y[i] * y[i];
  EXPECT_NEAR(ny, nx, 1e-4 * nx);
  kv::walsh_hadamard(y.data(), 16);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(y[i], x[i], 1e-5f);
  EXPECT_EQ(kv::parse_key_transform("Rotate"), kv::KeyTransformMode::kRotate);
  EXPECT_THROW(kv::parse_key_transform("hadamard"), Error);
}

// The value half: with calibration values and a value metric, the stored values v' and the
// restored output give back sum_t p_t v_t for any weights p summing to 1 (softmax's), in
// every mode and both forms of B; keys still shift by one constant per query.
void expect_values_restored(int32_t kDim) {
  SCOPED_TRACE(kDim);
  constexpr int32_t kLayers = 2, kTokens = 40, kHeads = 4, kKvHeads = 2, kMix = 12;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> keys(kLayers * kTokens * kKvHeads * kDim), values(keys.size());
  std::vector<float> queries(kLayers * kTokens * kHeads * kDim);
  std::vector<float> metric(kLayers * kKvHeads * kDim * kDim), weight(kLayers * kHeads);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = normal(rng) * (1 + i % kDim) + 3.0f * (i % 3);
  for (size_t i = 0; i < values.size(); ++i) values[i] = normal(rng) * (1 + i % 5) + 2.0f * (i % 4);
  for (float& q : queries) q = normal(rng);
  for (float& w : weight) w = 0.5f + std::fabs(normal(rng));
  for (int32_t g = 0; g < kLayers * kKvHeads; ++g) {  // W = X^T X, X random 2d x d
    std::vector<float> x(2 * kDim * kDim);
    for (float& v : x) v = normal(rng);
    for (int32_t i = 0; i < kDim; ++i) {
      for (int32_t j = 0; j < kDim; ++j) {
        float acc = 0.0f;
        for (int32_t r = 0; r < 2 * kDim; ++r) acc += x[r * kDim + i] * x[r * kDim + j];
        metric[(g * kDim + i) * kDim + j] = acc;
      }
    }
  }
  kv::CalibrationExtras extras;
  extras.values = values.data();
  extras.metric = metric.data();
  extras.query_weight = weight.data();
  extras.key_mean_power = kv::kShapedKeyMeanPower;
  for (kv::KeyTransformMode mode : {kv::KeyTransformMode::kOffset, kv::KeyTransformMode::kScale,
                                    kv::KeyTransformMode::kRotate}) {
    SCOPED_TRACE(kv::key_transform_name(mode));
    const kv::KeyTransform t = kv::KeyTransform::fit(mode, keys.data(), queries.data(), kLayers,
                                                     kTokens, kHeads, kKvHeads, kDim, &extras);
    ASSERT_TRUE(t.has_values());
    const int32_t layer = 1, row = kKvHeads * kDim;
    std::vector<double> p(kMix);
    double sum = 0.0;
    for (double& v : p) sum += (v = std::exp(normal(rng)));
    for (double& v : p) v /= sum;
    std::vector<double> want(row, 0.0);
    std::vector<float> stored(row), mixed(kHeads * kDim, 0.0f);
    for (int32_t t_ = 0; t_ < kMix; ++t_) {
      const float* v = values.data() + (layer * kTokens + 3 + t_) * row;
      t.apply_value(layer, v, stored.data());
      for (int32_t i = 0; i < row; ++i) want[i] += p[t_] * v[i];
      for (int32_t h = 0; h < kHeads; ++h) {  // query head h reads KV head h / 2
        for (int32_t j = 0; j < kDim; ++j) {
          mixed[h * kDim + j] += static_cast<float>(p[t_]) * stored[(h / 2) * kDim + j];
        }
      }
    }
    t.restore_output(layer, mixed.data(), mixed.data(), kHeads);
    for (int32_t h = 0; h < kHeads; ++h) {
      for (int32_t j = 0; j < kDim; ++j) {
        const double w = want[(h / 2) * kDim + j];
        EXPECT_NEAR(mixed[h * kDim + j], w, 1e-4 * (1.0 + std::fabs(w))) << h << " " << j;
      }
    }
    // Keys: one constant per query, with query weights and the shaped exponent too.
    const float* k = keys.data() + (layer * kTokens + 5) * row;
    std::vector<float> q(queries.begin(), queries.begin() + kHeads * kDim), k2(row), q2 = q;
    t.apply_key(layer, k, k2.data());
    t.apply_query(layer, q2.data(), q2.data(), kHeads);
    for (int32_t h = 0; h < kHeads; ++h) {
      const float* m = t.offset(layer, h / 2);
      double want_s = 0.0, got = 0.0;
      for (int32_t j = 0; j < kDim; ++j) {
        want_s += q[h * kDim + j] * (k[(h / 2) * kDim + j] - m[j]);
        got += q2[h * kDim + j] * k2[(h / 2) * kDim + j];
      }
      EXPECT_NEAR(got, want_s, 1e-4 * (1.0 + std::fabs(want_s))) << "head " << h;
    }
  }
}

TEST(KeyTransform, ValuesComeBackThroughTheOutput) {
  expect_values_restored(8);
  expect_values_restored(64);
}

// Joint heads (CalibrationExtras::joint_heads = 4: KV heads of 8 values fitted as joint heads
// of 32, as for a packed Q4_0 cache): every query head's wide query scores its own KV head's
// key up to one constant per query, and the wide outputs restore each head's value mix.
TEST(KeyTransform, JointHeadsStayExact) {
  constexpr int32_t kLayers = 2, kTokens = 60, kHeads = 8, kKvHeads = 4, kDim = 8, kJoint = 4;
  constexpr int32_t kRow = kKvHeads * kDim, kWide = kJoint * kDim, kGroup = kHeads / kKvHeads;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> keys(kLayers * kTokens * kRow), values(keys.size());
  std::vector<float> queries(kLayers * kTokens * kHeads * kDim);
  std::vector<float> metric(kLayers * kKvHeads * kDim * kDim, 0.0f);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = normal(rng) * (1 + i % 7) + 2.0f * (i % 3);
  for (size_t i = 0; i < values.size(); ++i) values[i] = normal(rng) + 0.5f * (i % 5);
  for (float& q : queries) q = normal(rng);
  for (int32_t g = 0; g < kLayers * kKvHeads; ++g) {
    for (int32_t i = 0; i < kDim; ++i) metric[(g * kDim + i) * kDim + i] = 1.0f + (g + i) % 3;
  }
  kv::CalibrationExtras extras;
  extras.values = values.data();
  extras.metric = metric.data();
  extras.key_mean_power = kv::kShapedKeyMeanPower;
  extras.joint_heads = kJoint;
  const kv::KeyTransform t =
      kv::KeyTransform::fit(kv::KeyTransformMode::kRotate, keys.data(), queries.data(), kLayers,
                            kTokens, kHeads, kKvHeads, kDim, &extras);
  ASSERT_EQ(t.joint_heads(), kJoint);
  ASSERT_EQ(t.head_dim(), kWide);
  ASSERT_NE(t.key_factor(1, 0), nullptr);
  const int32_t layer = 1;
  const float* k = keys.data() + (layer * kTokens + 7) * kRow;
  const float* q = queries.data() + (layer * kTokens + 9) * kHeads * kDim;
  std::vector<float> k2(kRow), q2(kHeads * kWide);
  t.apply_key(layer, k, k2.data());
  t.apply_query(layer, q, q2.data(), kHeads);
  const float* m = t.offset(layer, 0);  // the joint head's kWide offsets
  for (int32_t h = 0; h < kHeads; ++h) {
    const int32_t g = h / kGroup;
    double want = 0.0, got = 0.0;
    for (int32_t j = 0; j < kDim; ++j) {
      want += q[h * kDim + j] * (k[g * kDim + j] - m[g * kDim + j]);
    }
    for (int32_t j = 0; j < kWide; ++j) got += q2[h * kWide + j] * k2[j];
    EXPECT_NEAR(got, want, 1e-4 * (1.0 + std::fabs(want))) << "head " << h;
  }
  // Values: o' = sum_t p_t v'_t for every query head, restored into its own slot.
  const std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  std::vector<double> want(kRow, 0.0);
  std::vector<float> stored(kRow), wide(kHeads * kWide, 0.0f), out(kHeads * kDim);
  for (size_t i = 0; i < p.size(); ++i) {
    const float* v = values.data() + (layer * kTokens + 20 + i) * kRow;
    t.apply_value(layer, v, stored.data());
    for (int32_t j = 0; j < kRow; ++j) want[j] += p[i] * v[j];
    for (int32_t h = 0; h < kHeads; ++h) {
      for (int32_t j = 0; j < kWide; ++j) {
        wide[h * kWide + j] += static_cast<float>(p[i]) * stored[j];
      }
    }
  }
  t.restore_output(layer, wide.data(), out.data(), kHeads);
  for (int32_t h = 0; h < kHeads; ++h) {
    for (int32_t j = 0; j < kDim; ++j) {
      const double w = want[(h / kGroup) * kDim + j];
      EXPECT_NEAR(out[h * kDim + j], w, 1e-4 * (1.0 + std::fabs(w))) << h << " " << j;
    }
  }
}

// Sum over heads of e^T S e (e = x - dequantized), S the head's metric.
double metric_error(const float* x, const float* y, int32_t n, int32_t hd, const float* metrics) {
  double total = 0.0;
  for (int32_t h = 0; h < n / hd; ++h) {
    const float* s = metrics + h * hd * hd;
    for (int32_t i = 0; i < hd; ++i) {
      for (int32_t j = 0; j < hd; ++j) {
        total += (x[h * hd + i] - y[h * hd + i]) * static_cast<double>(s[i * hd + j]) *
                 (x[h * hd + j] - y[h * hd + j]);
      }
    }
  }
  return total;
}

// Q4_0 rounding under a metric: valid block_q4_0 rows whose error in the metric is at most
// the plain scale search's (within the f16 rounding of its scale) and, for anisotropic
// metrics, clearly smaller in total; heads that straddle blocks keep the plain bytes.
TEST(KeyTransform, MetricRoundingLowersTheMetricError) {
  std::mt19937 rng(21);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int32_t hd : {8, 32}) {
    SCOPED_TRACE(hd);
    constexpr int32_t kN = 64;
    std::vector<float> metrics((kN / hd) * hd * hd), x(kN), plain(kN), shaped(kN);
    std::vector<float> ones(kN, 1.0f);
    std::vector<uint8_t> a(row_size(GgmlType::Q4_0, kN)), b(a.size()), c(a.size());
    std::vector<float> factors(metrics.size()), beamed(kN);
    double total_plain = 0.0, total_shaped = 0.0, total_beam = 0.0;
    for (int32_t trial = 0; trial < 40; ++trial) {
      for (int32_t h = 0; h < kN / hd; ++h) {  // S = u u^T * 20 + I / 4 + small noise: anisotropic
        std::vector<float> u(hd), z(hd);
        for (float& v : u) v = normal(rng);
        for (float& v : z) v = 0.3f * normal(rng);
        for (int32_t i = 0; i < hd; ++i) {
          for (int32_t j = 0; j < hd; ++j) {
            metrics[(h * hd + i) * hd + j] = 20.0f * u[i] * u[j] / hd + z[i] * z[j] + (i == j ? 0.25f : 0.0f);
          }
        }
      }
      for (float& v : x) v = normal(rng) * 2.0f;
      quantize_row_weighted(GgmlType::Q4_0, x.data(), a.data(), kN, ones.data());
      kv::quantize_q4_0_under_metric(x.data(), b.data(), kN, hd, metrics.data());
      dequantize_row(GgmlType::Q4_0, a.data(), plain.data(), kN);
      dequantize_row(GgmlType::Q4_0, b.data(), shaped.data(), kN);
      const double ep = metric_error(x.data(), plain.data(), kN, hd, metrics.data());
      const double es = metric_error(x.data(), shaped.data(), kN, hd, metrics.data());
      EXPECT_LE(es, ep * 1.02) << "trial " << trial;
      total_plain += ep;
      total_shaped += es;
      // With the metrics' factors, heads over kExhaustiveDim take the beam search instead of
      // nearest rounding (head 8: the same exhaustive search).
      for (int32_t h = 0; h < kN / hd; ++h) {
        kv::metric_factor(metrics.data() + h * hd * hd, hd, factors.data() + h * hd * hd);
      }
      kv::quantize_q4_0_under_metric(x.data(), c.data(), kN, hd, metrics.data(), factors.data());
      dequantize_row(GgmlType::Q4_0, c.data(), beamed.data(), kN);
      const double eb = metric_error(x.data(), beamed.data(), kN, hd, metrics.data());
      EXPECT_LE(eb, ep * 1.02) << "trial " << trial;
      if (hd <= kv::kExhaustiveDim) {
        EXPECT_EQ(b, c) << "trial " << trial;
      }
      total_beam += eb;
    }
    EXPECT_LT(total_shaped, 0.8 * total_plain);
    if (hd > kv::kExhaustiveDim) {
      EXPECT_LT(total_beam, 0.95 * total_shaped);
    }
    std::printf("[ Q4_0 under a metric, head %d ] beam search: error %.3f of the plain search's\n",
                hd, total_beam / total_plain);
    std::printf("[ Q4_0 under a metric, head %d ] error %.3f of the plain search's\n", hd,
                total_shaped / total_plain);
  }
  // head_dim 24 straddles 32-value blocks: the plain scale search's bytes.
  std::vector<float> x(96), metrics(4 * 24 * 24, 0.0f), ones(96, 1.0f);
  for (float& v : x) v = normal(rng);
  for (int32_t h = 0; h < 4; ++h) {
    for (int32_t i = 0; i < 24; ++i) metrics[(h * 24 + i) * 24 + i] = 1.0f + i;
  }
  std::vector<uint8_t> a(row_size(GgmlType::Q4_0, 96)), b(a.size());
  quantize_row_weighted(GgmlType::Q4_0, x.data(), a.data(), 96, ones.data());
  kv::quantize_q4_0_under_metric(x.data(), b.data(), 96, 24, metrics.data());
  EXPECT_EQ(a, b);
}

// The AVX2 rounding (beam search, local search, errors) gives the reference's bytes exactly
// (and so does the AVX2 Walsh-Hadamard transform):
// heads of 8, 16 and 32 values, with and without factors, metrics symmetric only to rounding,
// tiny, huge and zero blocks.
TEST(KeyTransform, MetricRoundingSameBytesOnEveryIsa) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  constexpr int32_t kN = 64;
  for (int32_t hd : {8, 16, 32}) {
    SCOPED_TRACE(hd);
    std::vector<float> metrics((kN / hd) * hd * hd), factors(metrics.size()), x(kN);
    for (int32_t trial = 0; trial < 30; ++trial) {
      for (int32_t h = 0; h < kN / hd; ++h) {
        float* m = metrics.data() + h * hd * hd;
        std::vector<float> u(hd);
        for (float& v : u) v = normal(rng);
        for (int32_t i = 0; i < hd; ++i) {
          for (int32_t j = 0; j < hd; ++j) {
            m[i * hd + j] = 8.0f * u[i] * u[j] / hd + (i == j ? 0.3f : 0.0f);
          }
        }
        kv::metric_factor(m, hd, factors.data() + h * hd * hd);
        if (trial % 2 == 1) {
          for (int32_t i = 0; i < hd * hd; ++i) m[i] *= 1.0f + 1e-6f * normal(rng);
        }
      }
      const float scale = trial % 5 == 0 ? 1e-6f : trial % 7 == 0 ? 1e4f : 2.0f;
      for (float& v : x) v = normal(rng) * scale;
      if (trial % 3 == 0) std::fill(x.begin(), x.begin() + 32, 0.0f);
      std::vector<std::vector<uint8_t>> out;
      for (const std::string& isa : kernels::available_isas()) {
        kernels::select(isa);
        const float* const with_factors[] = {nullptr, factors.data()};
        for (const float* f : with_factors) {
          out.emplace_back(row_size(GgmlType::Q4_0, kN));
          kv::quantize_q4_0_under_metric(x.data(), out.back().data(), kN, hd, metrics.data(), f);
        }
      }
      for (size_t i = 2; i < out.size(); ++i) EXPECT_EQ(out[i], out[i % 2]) << "trial " << trial;
    }
    // The Walsh-Hadamard transform of the stored basis, too.
    std::vector<std::vector<float>> wh;
    for (const std::string& isa : kernels::available_isas()) {
      kernels::select(isa);
      wh.push_back(x);
      kv::walsh_hadamard(wh.back().data(), hd);
    }
    for (const auto& w : wh) EXPECT_EQ(std::memcmp(w.data(), wh[0].data(), hd * sizeof(float)), 0);
  }
  kernels::select(kernels::available_isas().back());
}

// A fitted full-matrix transform (heads of 8, 16 and 32 values: the AVX2 products and
// Walsh-Hadamard) applies to keys, queries and values and restores outputs to the same bits on
// every kernel ISA.
TEST(KeyTransform, AppliesToTheSameBitsOnEveryIsa) {
  constexpr int32_t kTokens = 48, kHeads = 2;
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int32_t hd : {8, 16, 32}) {
    SCOPED_TRACE(hd);
    std::vector<float> keys(kTokens * hd), values(keys.size()), queries(kTokens * kHeads * hd);
    for (size_t i = 0; i < keys.size(); ++i) keys[i] = normal(rng) * (1 + i % 3);
    for (float& v : values) v = normal(rng) + 1.0f;
    for (float& q : queries) q = normal(rng);
    std::vector<float> metric(hd * hd);
    for (int32_t i = 0; i < hd; ++i) metric[i * hd + i] = 1.0f + 0.1f * i;
    kv::CalibrationExtras extras;
    extras.values = values.data();
    extras.metric = metric.data();
    const kv::KeyTransform t = kv::KeyTransform::fit(kv::KeyTransformMode::kRotate, keys.data(),
                                                     queries.data(), 1, kTokens, kHeads, 1, hd,
                                                     &extras);
    std::vector<std::vector<float>> out;
    for (const std::string& isa : kernels::available_isas()) {
      kernels::select(isa);
      std::vector<float> k(hd), v(hd), q(queries.begin(), queries.begin() + kHeads * hd);
      std::vector<float> o(q);
      t.apply_key(0, keys.data(), k.data());
      t.apply_value(0, values.data(), v.data());
      t.apply_query(0, q.data(), q.data(), kHeads);
      t.restore_output(0, o.data(), o.data(), kHeads);
      std::vector<float> all = k;
      for (const auto* part : {&v, &q, &o}) all.insert(all.end(), part->begin(), part->end());
      out.push_back(all);
    }
    for (const auto& o : out) {
      EXPECT_EQ(std::memcmp(o.data(), out[0].data(), o.size() * sizeof(float)), 0);
    }
  }
  kernels::select(kernels::available_isas().back());
}

// Through the whole model with an F32 cache (where rounding is the only difference): every
// transform mode keeps the logits of the untransformed cache within float rounding, on every
// kernel ISA. The calibration is deterministic (two fits are bit-identical: blocks shared by
// prefix caching mean the same in every context), and F32/F16 contexts get no transform.
TEST(KeyTransform, ExactThroughTheModelWithAnF32Cache) {
  const std::vector<int32_t> prompt = {1,   403, 407, 261, 378, 300, 301, 302, 303, 304,
                                       305, 306, 307, 308, 309, 310, 311, 312, 313, 314};
  for (const char* name : {"stories260K.gguf", "syn-llama-gqa-f32.gguf"}) {
    SCOPED_TRACE(name);
    const auto model = models::Model::load(testlib::shared_path(std::string("models/") + name));
    ThreadPool pool(1);
    for (kv::KeyTransformMode mode : {kv::KeyTransformMode::kOffset, kv::KeyTransformMode::kScale,
                                      kv::KeyTransformMode::kRotate}) {
      // kRotate also with the Q4_0 fit (the shaped exponent); a packed Q4_0 cache's joint heads
      // (stories260K) need its packed rows, which an F32 cache has not: those with the Q8_0 fit
      // (the joint form is checked by JointHeadsStayExact and, through the model, by the
      // perplexity tests' Q4_0 figures).
      GgmlType fit_type = mode == kv::KeyTransformMode::kRotate ? GgmlType::Q4_0 : GgmlType::Q8_0;
      if (models::calibrate_key_transform(*model, mode, pool, fit_type).joint_heads() > 1) {
        fit_type = GgmlType::Q8_0;
      }
      const kv::KeyTransform t = models::calibrate_key_transform(*model, mode, pool, fit_type);
      const kv::KeyTransform again = models::calibrate_key_transform(*model, mode, pool, fit_type);
      ASSERT_TRUE(t.active()) << kv::key_transform_name(mode);
      EXPECT_TRUE(t.has_values()) << kv::key_transform_name(mode);
      const int32_t n = model->hparams().kv_dim();
      std::vector<float> k(n), a(n), b(n);
      for (int32_t i = 0; i < n; ++i) k[i] = std::sin(0.3f * i) * 4.0f;
      for (int32_t l = 0; l < model->hparams().n_layer; ++l) {
        t.apply_key(l, k.data(), a.data());
        again.apply_key(l, k.data(), b.data());
        EXPECT_EQ(std::memcmp(a.data(), b.data(), n * sizeof(float)), 0) << "layer " << l;
        t.apply_value(l, k.data(), a.data());
        again.apply_value(l, k.data(), b.data());
        EXPECT_EQ(std::memcmp(a.data(), b.data(), n * sizeof(float)), 0) << "layer " << l;
      }
      for (const std::string& isa : kernels::available_isas()) {
        kernels::select(isa);
        const std::vector<float> plain = prompt_logits(*model, prompt, GgmlType::F32, 1);
        const std::vector<float> moved = prompt_logits(*model, prompt, GgmlType::F32, 1, &t);
        float worst = 0.0f, largest = 0.0f;
        for (size_t i = 0; i < plain.size(); ++i) {
          worst = std::max(worst, std::fabs(plain[i] - moved[i]));
          largest = std::max(largest, std::fabs(plain[i]));
        }
        EXPECT_LE(worst, 2e-5f * largest) << kv::key_transform_name(mode);
      }
    }
    kernels::select(kernels::available_isas().back());
    for (GgmlType type : {GgmlType::F32, GgmlType::F16}) {
      EXPECT_FALSE(models::Context(*model, options(type, 1)).kv().key_transform().active());
    }
    EXPECT_TRUE(models::Context(*model, options(GgmlType::Q8_0, 1)).kv().key_transform().active());
  }
}

}  // namespace
}  // namespace quanta
