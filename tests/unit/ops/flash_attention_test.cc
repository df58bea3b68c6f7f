// Flash attention against naive attention (softmax of the full score row, in double): random
// inputs across head sizes, head counts, GQA ratios 1/2/4/8, lengths 1..300, block sizes
// 1/16/32 and their boundaries, shuffled block tables whose unused rows are NaN, scores whose
// max keeps growing (the rescaling path), F16, Q8_0 and Q4_0 KV (exact against the values
// the kernel reads, the query quantized as for a quantized K; within an error bound of the
// F32 values; and against the reference attention_head), Q8_0 / Q4_0 rows packed across
// heads narrower than a block (the same bits as F32 rows of the dequantized values), and the
// threaded batch driver and its blocks of tokens; each on every kernel ISA this machine runs
// (the portable kernel under "ref", the AVX2 one otherwise).
#include "ops/flash_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "attention_test_util.h"
#include "core/thread_pool.h"
#include "kernels/kernel_table.h"

namespace quanta::ops {
namespace {

using testing::naive_head;
using testing::NaiveHead;
using testing::PagedKv;
using testing::query_seen;
using testing::random_floats;

constexpr double kRelTol = 1e-5;  // relative to sum_j p_j |v_j[i]|, the scale of out[i]

// Runs fn() with each kernel ISA this machine supports selected, then restores the default.
template <typename F>
void for_each_isa(const F& fn) {
  const std::vector<std::string> isas = kernels::available_isas();
  for (const std::string& isa : isas) {
    SCOPED_TRACE("isa " + isa);
    kernels::select(isa);
    fn(isa);
  }
  kernels::select(isas.back());
}

AttentionShape make_shape(int32_t n_kv_head, int32_t group, int32_t head_dim) {
  AttentionShape shape;
  shape.n_kv_head = n_kv_head;
  shape.n_head = n_kv_head * group;
  shape.head_dim = head_dim;
  shape.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  return shape;
}

// Largest |got - want| / magnitude over all elements; fails on any non-finite output.
double relative_error(const float* got, const NaiveHead& want) {
  double worst = 0.0;
  for (size_t i = 0; i < want.out.size(); ++i) {
    EXPECT_TRUE(std::isfinite(got[i])) << "element " << i;
    worst = std::max(worst, std::fabs(got[i] - want.out[i]) / (want.magnitude[i] + 1e-30));
  }
  return worst;
}

// Runs flash attention for every KV head of one token; returns the worst relative error
// against naive attention over the stored values.
double check_token(const std::vector<float>& q, const PagedKv& kv, int32_t n_kv,
                   const AttentionShape& shape) {
  std::vector<float> scratch(flash_scratch_floats(shape));
  std::vector<float> out(q.size(), NAN);
  const PagedKvView view = kv.view();
  const int64_t group_dim = static_cast<int64_t>(shape.group()) * shape.head_dim;
  for (int32_t h = 0; h < shape.n_kv_head; ++h) {
    flash_attention_group(q.data() + h * group_dim, view, n_kv, shape, h, scratch.data(),
                          out.data() + h * group_dim);
  }
  const std::vector<float> q_seen = query_seen(q, kv.type(), shape.head_dim);
  double worst = 0.0;
  for (int32_t h = 0; h < shape.n_head; ++h) {
    const float* qh = q_seen.data() + static_cast<int64_t>(h) * shape.head_dim;
    worst = std::max(worst, relative_error(out.data() + static_cast<int64_t>(h) * shape.head_dim,
                                           naive_head(qh, kv, n_kv, shape, h)));
  }
  return worst;
}

const int32_t kLengths[] = {1,  2,  3,  5,  15, 16,  17,  31,  32,  33,  47,  48,  49, 63,
                            64, 65, 95, 96, 97, 127, 128, 129, 255, 256, 257, 299, 300};

struct SweepCase {
  GgmlType type;
  int32_t head_dim;
};

class FlashSweep : public ::testing::TestWithParam<SweepCase> {};

TEST_P(FlashSweep, MatchesNaiveAcrossShapesLengthsAndBlocks) {
  const SweepCase c = GetParam();
  for_each_isa([&](const std::string& isa) {
    std::mt19937 rng(1234 + c.head_dim);
    double worst = 0.0;
    for (int32_t kv_rows : {1, 3}) {
      const int32_t n_kv_head = kv_rows * kv_row_heads(c.type, c.head_dim);  // packed: whole rows
      for (int32_t group : {1, 2, 4, 8}) {
        const AttentionShape shape = make_shape(n_kv_head, group, c.head_dim);
        for (int32_t block : {1, 16, 32}) {
          PagedKv kv(rng, 300, n_kv_head, c.head_dim, block, c.type);
          const std::vector<float> q = random_floats(rng, shape.n_head * c.head_dim);
          for (int32_t n : kLengths) {
            const double err = check_token(q, kv, n, shape);
            ASSERT_LE(err, kRelTol) << "kv heads " << n_kv_head << " group " << group << " block "
                                    << block << " length " << n;
            worst = std::max(worst, err);
          }
        }
      }
    }
    std::printf("[ %s, %s head_dim %d ] max relative error %.3g\n", isa.c_str(), type_name(c.type),
                c.head_dim, worst);
  });
}

INSTANTIATE_TEST_SUITE_P(
    Types, FlashSweep,
    ::testing::Values(SweepCase{GgmlType::F32, 64}, SweepCase{GgmlType::F32, 36},
                      SweepCase{GgmlType::F16, 128}, SweepCase{GgmlType::F16, 40},
                      SweepCase{GgmlType::F16, 20}, SweepCase{GgmlType::Q8_0, 64},
                      SweepCase{GgmlType::Q4_0, 32}, SweepCase{GgmlType::Q8_0, 8},
                      SweepCase{GgmlType::Q4_0, 16}),
    [](const auto& info) {
      return std::string(type_name(info.param.type)) + "_d" + std::to_string(info.param.head_dim);
    });

TEST(FlashAttention, EveryLengthFrom1To300) {
  for_each_isa([](const std::string& isa) {
    std::mt19937 rng(7);
    const AttentionShape shape = make_shape(2, 4, 64);
    PagedKv kv(rng, 300, 2, 64, 16, GgmlType::F32);
    double worst = 0.0;
    for (int32_t n = 1; n <= 300; ++n) {
      const std::vector<float> q = random_floats(rng, shape.n_head * 64);
      const double err = check_token(q, kv, n, shape);
      ASSERT_LE(err, kRelTol) << "length " << n;
      worst = std::max(worst, err);
    }
    std::printf("[ %s, lengths 1..300 ] max relative error %.3g\n", isa.c_str(), worst);
  });
}

// K rows along one direction with growing length: for heads whose query points the same
// way the running max rises on every tile (rescaling each time); for the others it falls.
// Larger query norms make the softmax peaky (probabilities down to ~1e-30).
TEST(FlashAttention, GrowingAndPeakyScores) {
  for_each_isa([](const std::string& isa) {
    std::mt19937 rng(99);
    const int32_t d = 64, n = 300;
    const AttentionShape shape = make_shape(2, 4, d);
    for (float q_scale : {1.0f, 4.0f}) {
      for (int32_t block : {1, 16}) {
        PagedKv kv(rng, n, 2, d, block, GgmlType::F32);
        const std::vector<float> dir = random_floats(rng, 2 * d);
        for (int32_t p = 0; p < n; ++p) {
          for (int32_t i = 0; i < 2 * d; ++i) kv.k()[p * 2 * d + i] = dir[i] * p * 0.02f;
        }
        kv.sync();
        std::vector<float> q = random_floats(rng, shape.n_head * d);
        for (float& x : q) x *= q_scale;
        const double err = check_token(q, kv, n, shape);
        EXPECT_LE(err, kRelTol) << "q scale " << q_scale << " block " << block;
        std::printf("[ %s, growing scores, q scale %g, block %d ] max relative error %.3g\n",
                    isa.c_str(), q_scale, block, err);
      }
    }
  });
}

// Stored rows against the F32 values they came from. With e the per-element error of K, V and
// (for quantized K) the query, each score moves by at most
// ds_j = scale * sum_i (|q_i| ek_ji + |k_ji| eq_i + ek_ji eq_i), so each probability by at most
// a factor exp(+-2 max ds), and out[i] by at most
// exp(2 ds) sum_j p_j |ev_ji| + (exp(2 ds) - 1) sum_j p_j |v_ji| (plus float rounding).
TEST(FlashAttention, StoredKvWithinErrorBoundOfF32Values) {
  for_each_isa([](const std::string& isa) {
    for (GgmlType type : {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
      std::mt19937 rng(5);
      const int32_t d = 64, n = 200;
      const AttentionShape shape = make_shape(2, 4, d);
      PagedKv kv(rng, n, 2, d, 16, type);
      const std::vector<float> q = random_floats(rng, shape.n_head * d);
      const std::vector<float> q_seen = query_seen(q, type, d);
      std::vector<float> out(q.size()), scratch(flash_scratch_floats(shape));
      for (int32_t h = 0; h < 2; ++h) {
        flash_attention_group(q.data() + h * 4 * d, kv.view(), n, shape, h, scratch.data(),
                              out.data() + h * 4 * d);
      }
      double worst = 0.0;
      for (int32_t h = 0; h < shape.n_head; ++h) {
        const float* qh = q.data() + h * d;
        const int64_t col = static_cast<int64_t>(h / 4) * d;
        const NaiveHead exact = naive_head(
            qh, n, shape, h, [&](int32_t p, int64_t i) { return double(kv.k()[p * 2 * d + i]); },
            [&](int32_t p, int64_t i) { return double(kv.v()[p * 2 * d + i]); });
        double ds = 0.0;
        std::vector<double> v_err(d, 0.0);
        for (int32_t p = 0; p < n; ++p) {
          double s = 0.0;
          for (int32_t i = 0; i < d; ++i) {
            const double k = kv.k()[p * 2 * d + col + i];
            const double ek = std::fabs(kv.k_at(p, col + i) - k);
            const double eq = std::fabs(q_seen[h * d + i] - qh[i]);
            s += std::fabs(qh[i]) * ek + std::fabs(k) * eq + ek * eq;
            v_err[i] += exact.p[p] * std::fabs(kv.v_at(p, col + i) - kv.v()[p * 2 * d + col + i]);
          }
          ds = std::max(ds, s * shape.scale);
        }
        const double grow = std::exp(2 * ds);
        for (int32_t i = 0; i < d; ++i) {
          const double bound =
              grow * v_err[i] + (grow - 1) * exact.magnitude[i] + 1e-5 * exact.magnitude[i];
          const double err = std::fabs(out[h * d + i] - exact.out[i]);
          EXPECT_LE(err, bound) << type_name(type) << " head " << h << " i " << i;
          worst = std::max(worst, err / exact.magnitude[i]);
        }
      }
      std::printf("[ %s, %s KV vs F32 values ] max error / magnitude %.3g\n", isa.c_str(),
                  type_name(type), worst);
    }
  });
}

// Flash attention against the reference attention_head (the oracle) for every KV type, on
// every ISA: the same stored rows and, for quantized K, the same quantized query.
TEST(FlashAttention, MatchesReferenceForEveryKvType) {
  for_each_isa([](const std::string& isa) {
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
      std::mt19937 rng(21);
      const int32_t d = 64, n = 150;
      const AttentionShape shape = make_shape(2, 4, d);
      PagedKv kv(rng, n, 2, d, 16, type);
      const std::vector<float> q = random_floats(rng, shape.n_head * d);
      std::vector<float> out(q.size()), scratch(flash_scratch_floats(shape));
      for (int32_t h = 0; h < 2; ++h) {
        flash_attention_group(q.data() + h * 4 * d, kv.view(), n, shape, h, scratch.data(),
                              out.data() + h * 4 * d);
      }
      std::vector<float> scores(n), ref(d);
      double worst = 0.0;
      for (int32_t h = 0; h < shape.n_head; ++h) {
        attention_head(q.data() + h * d, kv.view(), n, shape, h, scores.data(), ref.data());
        for (int32_t i = 0; i < d; ++i) {
          worst = std::max(worst, double(std::fabs(out[h * d + i] - ref[i])));
        }
      }
      EXPECT_LE(worst, 2e-6) << type_name(type);
      std::printf("[ %s, %s KV ] max |flash - reference| %.3g\n", isa.c_str(), type_name(type),
                  worst);
    }
  });
}

// Packed rows (head sizes 8, 16, 48 and 20: 4, 2, 2 and 8 heads per stored row) are attended
// to exactly as an F32 cache holding their dequantized values: flash (every ISA) and the
// reference give the same bits for both caches, for every KV head of the row.
TEST(FlashAttention, PackedRowsGiveTheBitsOfF32RowsOfTheirValues) {
  for_each_isa([](const std::string& isa) {
    for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
      for (int32_t d : {8, 16, 48, 20}) {
        SCOPED_TRACE(std::string(type_name(type)) + " head_dim " + std::to_string(d));
        std::mt19937 rng(31 + d);
        const int32_t n = 77, n_kv_head = 2 * kv_row_heads(type, d);
        const AttentionShape shape = make_shape(n_kv_head, 2, d);
        PagedKv packed(rng, n, n_kv_head, d, 16, type);
        ASSERT_GT(packed.view().row_heads, 1);
        PagedKv f32(rng, n, n_kv_head, d, 16, GgmlType::F32);
        for (int32_t p = 0; p < n; ++p) {
          for (int64_t i = 0; i < int64_t{n_kv_head} * d; ++i) {
            f32.k()[p * n_kv_head * d + i] = packed.k_at(p, i);
            f32.v()[p * n_kv_head * d + i] = packed.v_at(p, i);
          }
        }
        f32.sync();
        const std::vector<float> q = random_floats(rng, shape.n_head * d);
        std::vector<float> scratch(flash_scratch_floats(shape));
        std::vector<float> a(q.size(), NAN), b(q.size(), NAN);
        for (int32_t h = 0; h < n_kv_head; ++h) {
          flash_attention_group(q.data() + h * 2 * d, packed.view(), n, shape, h, scratch.data(),
                                a.data() + h * 2 * d);
          flash_attention_group(q.data() + h * 2 * d, f32.view(), n, shape, h, scratch.data(),
                                b.data() + h * 2 * d);
        }
        EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << isa;
        std::vector<float> scores(n), ra(d), rb(d);
        for (int32_t h = 0; h < shape.n_head; ++h) {
          attention_head(q.data() + h * d, packed.view(), n, shape, h, scores.data(), ra.data());
          attention_head(q.data() + h * d, f32.view(), n, shape, h, scores.data(), rb.data());
          EXPECT_EQ(std::memcmp(ra.data(), rb.data(), d * sizeof(float)), 0) << "head " << h;
          for (int32_t i = 0; i < d; ++i) {
            EXPECT_NEAR(a[h * d + i], ra[i], 2e-6) << "flash vs reference, head " << h;
          }
        }
      }
    }
  });
}

// The reference kernel (the model's former path, kept as the oracle) agrees with naive too.
TEST(ReferenceAttention, MatchesNaive) {
  std::mt19937 rng(3);
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    const AttentionShape shape = make_shape(2, 2, 32);
    PagedKv kv(rng, 70, 2, 32, 16, type);
    const std::vector<float> q = random_floats(rng, shape.n_head * 32);
    const std::vector<float> q_seen = query_seen(q, type, 32);
    std::vector<float> scores(70), out(32);
    for (int32_t h = 0; h < shape.n_head; ++h) {
      attention_head(q.data() + h * 32, kv.view(), 70, shape, h, scores.data(), out.data());
      EXPECT_LE(relative_error(out.data(), naive_head(q_seen.data() + h * 32, kv, 70, shape, h)),
                1e-5)
          << type_name(type) << " head " << h;
    }
  }
}

// A prefill-like batch over two sequences (each token attends to its own causal prefix):
// the threaded driver gives the same bits for 1, 2 and 3 threads and in both split modes, the
// same bits as one flash_attention_group call per item, and matches naive attention.
TEST(FlashAttention, BatchDriverIsThreadCountInvariant) {
  for_each_isa([](const std::string&) {
    for (const auto& types :
         {std::pair{GgmlType::F32, GgmlType::F16}, std::pair{GgmlType::Q8_0, GgmlType::Q4_0}}) {
      SCOPED_TRACE(type_name(types.first));
      std::mt19937 rng(11);
      const int32_t d = 32, n_tokens = 45;
      const AttentionShape shape = make_shape(2, 4, d);
      const int64_t q_dim = shape.n_head * d;
      PagedKv seq_a(rng, 130, 2, d, 16, types.first);
      PagedKv seq_b(rng, 40, 2, d, 16, types.second);
      std::vector<PagedKvView> views(n_tokens);
      std::vector<int32_t> positions(n_tokens);
      for (int32_t t = 0; t < n_tokens; ++t) {
        const bool a = t < 30;  // 30 tokens at positions 100..129 of A, 15 at 25..39 of B
        views[t] = a ? seq_a.view() : seq_b.view();
        positions[t] = a ? 100 + t : 25 + (t - 30);
      }
      const std::vector<float> q = random_floats(rng, n_tokens * q_dim);
      std::vector<float> expected(q.size());
      std::vector<float> scratch(3 * flash_scratch_floats(shape));
      for (int32_t t = 0; t < n_tokens; ++t) {
        for (int32_t h = 0; h < 2; ++h) {
          const int64_t off = t * q_dim + h * 4 * d;
          flash_attention_group(q.data() + off, views[t], positions[t] + 1, shape, h,
                                scratch.data(), expected.data() + off);
        }
        for (int32_t h = 0; h < shape.n_head; ++h) {
          const PagedKv& kv = t < 30 ? seq_a : seq_b;
          const std::vector<float> qt(q.begin() + t * q_dim, q.begin() + (t + 1) * q_dim);
          const std::vector<float> q_seen = query_seen(qt, kv.type(), d);
          const float* qh = q_seen.data() + h * d;
          EXPECT_LE(relative_error(expected.data() + t * q_dim + h * d,
                                   naive_head(qh, kv, positions[t] + 1, shape, h)),
                    kRelTol);
        }
      }
      for (SplitMode mode : {SplitMode::kContiguous, SplitMode::kDynamic}) {
        for (int threads : {1, 2, 3}) {
          ThreadPool pool(threads, mode);
          std::vector<float> out(q.size(), NAN);
          AttentionBatch batch;
          batch.n_tokens = n_tokens;
          batch.q = q.data();
          batch.out = out.data();
          batch.kv = views.data();
          batch.positions = positions.data();
          flash_attention(batch, shape, scratch.data(), pool);
          EXPECT_EQ(std::memcmp(out.data(), expected.data(), out.size() * sizeof(float)), 0)
              << threads << " threads";
        }
      }
    }
  });
}

// The batch driver hands the AVX2 kernel blocks of up to 32 / group tokens of one sequence
// (query rows in vector lanes, padded to whole vectors): every token still gets the bits of
// its own flash_attention_group call, whatever its block (interleaved sequences, unordered
// and repeated positions, groups giving 1..5 lane vectors per block, block tails).
TEST(FlashAttention, TokenBlocksGiveEachTokenItsOwnBits) {
  for_each_isa([](const std::string&) {
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0}) {
      for (int32_t group : {1, 3, 5, 8, 40}) {
        SCOPED_TRACE(std::string(type_name(type)) + " group " + std::to_string(group));
        std::mt19937 rng(7 + group);
        const int32_t d = type == GgmlType::F32 ? 24 : 64, n_tokens = 37;
        const AttentionShape shape = make_shape(2, group, d);
        const int64_t q_dim = int64_t{shape.n_head} * d;
        PagedKv seq_a(rng, 90, 2, d, 16, type);
        PagedKv seq_b(rng, 50, 2, d, 16, type);
        std::vector<PagedKvView> views(n_tokens);
        std::vector<int32_t> positions(n_tokens);
        for (int32_t t = 0; t < n_tokens; ++t) {
          const bool a = t % 9 < 7;  // runs of 7 tokens of A, then 2 of B
          views[t] = a ? seq_a.view() : seq_b.view();
          positions[t] = a ? (t * 37) % 90 : 49 - t % 5;
        }
        const std::vector<float> q = random_floats(rng, n_tokens * q_dim);
        std::vector<float> expected(q.size(), NAN), out(q.size(), NAN);
        std::vector<float> scratch(2 * flash_scratch_floats(shape));
        for (int32_t t = 0; t < n_tokens; ++t) {
          for (int32_t h = 0; h < 2; ++h) {
            const int64_t off = t * q_dim + int64_t{h} * group * d;
            flash_attention_group(q.data() + off, views[t], positions[t] + 1, shape, h,
                                  scratch.data(), expected.data() + off);
          }
        }
        const std::vector<float> q1(q.begin() + q_dim, q.begin() + 2 * q_dim);  // position 37
        const std::vector<float> q_seen = query_seen(q1, type, d);
        for (int32_t h = 0; h < shape.n_head; h += 7) {
          EXPECT_LE(relative_error(expected.data() + q_dim + int64_t{h} * d,
                                   naive_head(q_seen.data() + int64_t{h} * d, seq_a, 38, shape, h)),
                    kRelTol);
        }
        ThreadPool pool(2);
        AttentionBatch batch;
        batch.n_tokens = n_tokens;
        batch.q = q.data();
        batch.out = out.data();
        batch.kv = views.data();
        batch.positions = positions.data();
        flash_attention(batch, shape, scratch.data(), pool);
        EXPECT_EQ(std::memcmp(out.data(), expected.data(), out.size() * sizeof(float)), 0);
      }
    }
  });
}

}  // namespace
}  // namespace quanta::ops
