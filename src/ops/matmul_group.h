// Grouped matrix products: the same activations times several weights (Q, K, V) with one
// activation conversion per vec_dot_type and one thread-pool dispatch whose row ranges span
// all the weights, balanced by weight bytes and planned once. Optionally the activations are
// RMS-normalised on the fly while they are converted (no pass over a normed copy), and each
// output may take a bias and RoPE in the epilogue of the thread that computed its rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "ops/rope.h"
#include "ops/weight.h"

namespace quanta::ops {

// The activations of a product: rows x[t * x_stride .. + k) for t in [0, n_tokens), used as
// they are or, with `norm` set, as rms_norm(x[t], norm, eps) (the values ops::rms_norm gives).
// The normed rows go to norm_out when it is set ([n_tokens, k] floats, row t at t * k), so
// that the pool's threads convert tokens in parallel; null: through one scratch row, the
// tokens in turn on the calling thread.
struct MatmulInput {
  const float* x = nullptr;
  int64_t x_stride = 0;  // floats between token rows
  int64_t n_tokens = 0;
  const float* norm = nullptr;  // [k] RMSNorm weight, or null
  float norm_eps = 0.0f;
  float* norm_out = nullptr;  // [n_tokens, k] normed rows (with norm only), or null
};

// Rotary embedding of an output's rows: each token's row is a row of heads of head_dim values
// rotated with its cos_sin row (ops::rope_cache).
struct RopeEpilogue {
  RopeParams params;
  const float* cos_sin = nullptr;  // [n_tokens, params.n_rot] one rope_cache row per token
  int32_t head_dim = 0;
};

// Where one weight's product goes: y[t * y_stride + r] for its rows r. MatmulGroupPlan::run
// applies the optional epilogue per row range right after its product: y += bias, then RoPE
// (the plan's row_align for this weight must be a multiple of ops::rope_row_align).
struct MatmulOutput {
  float* y = nullptr;
  int64_t y_stride = 0;
  const float* bias = nullptr;         // [n_rows] added to every token's row, or null
  const RopeEpilogue* rope = nullptr;  // or null
};

// At most this many weights share one group.
inline constexpr int kMaxGroupWeights = 4;

// Activations converted once per distinct vec_dot_type of a set of weights (all with n_cols
// k): act[i] is weight i's activation rows, act_row_bytes[i] apart.
struct ConvertedInput {
  const uint8_t* act[kMaxGroupWeights] = {};
  size_t act_row_bytes[kMaxGroupWeights] = {};
};

// Scratch bytes an InputConverter needs for `weights` (same n_cols) and n_tokens tokens:
// one normed row of floats plus the activation rows of each distinct vec_dot_type.
size_t group_scratch_bytes(const WeightView* weights, int n_weights, int64_t n_tokens);

// Converts a product's input `in` once per distinct vec_dot_type of `weights` into `scratch`,
// token by token (norm then convert while the row is in L1). The constructor lays out
// `scratch` (the pointers of converted()); convert() converts tokens [t_begin, t_end), and
// several threads may convert disjoint tokens at once when `in` norms into norm_out or does
// not norm. Each token's bytes are the same whichever thread converts it.
class InputConverter {
 public:
  InputConverter(const WeightView* weights, int n_weights, const MatmulInput& in, void* scratch);
  const ConvertedInput& converted() const { return c_; }
  void convert(int64_t t_begin, int64_t t_end) const;
  // All tokens, split over the pool's threads when parallel().
  void convert_all(ThreadPool& pool) const;
  // Whether threads may convert tokens in parallel (see above).
  bool parallel() const { return in_.norm == nullptr || in_.norm_out != nullptr; }

 private:
  MatmulInput in_;
  int64_t k_ = 0;
  float* scratch_row_ = nullptr;  // [k] the normed row when in_ has no norm_out
  ConvertedInput c_;
  FromFloatFn convert_[kMaxGroupWeights] = {};
  uint8_t* dst_[kMaxGroupWeights] = {};
  int distinct_[kMaxGroupWeights] = {};  // the weights whose act rows are converted
  int n_distinct_ = 0;
};

// Products of many tokens (prefill) split over tokens instead of rows: each thread converts
// its tokens, multiplies them by every row and applies the epilogue, in one dispatch with no
// activation prepared twice. Pieces are multiples of kTokenGrain tokens (whole GEMM tiles of
// 3, 4 or 8 tokens); a split needs at least 4 pieces per thread, and weights whose kernel
// does not want all the tokens in each call (KernelTable::wants_all_tokens: those split rows).
inline constexpr int64_t kTokenGrain = 24;
bool split_tokens(int64_t n_tokens, const ThreadPool& pool, const WeightView& w);

// The split of a group's combined rows into parts of about equal weight bytes: part p
// computes, for each weight i, rows [begin[p][i], end[p][i]). Boundaries fall on multiples of
// grain(i) rows inside weight i (or its end): kGroupGrain, or its least common multiple with
// the weight's row_align (e.g. a RoPE head). Built once (allocates); run() allocates nothing.
class MatmulGroupPlan {
 public:
  // A multiple of 16 (the repacked x8 layouts' row groups) and of the GEMM tiles' rows (3,
  // 4): a row range on this grain runs full tiles only, whatever the split.
  static constexpr int64_t kGroupGrain = 48;

  MatmulGroupPlan() = default;
  // weights: 1..kMaxGroupWeights matrices with the same n_cols; the views are copied (the
  // weight data stays where it is). n_parts >= 1: the pool's thread count for a contiguous
  // split; several parts per thread let a dynamic split balance the threads.
  // row_align: [n_weights] or null (all 1): boundaries inside weight i on multiples of it.
  MatmulGroupPlan(const WeightView* weights, int n_weights, int n_parts,
                  const int32_t* row_align = nullptr);

  int n_weights() const { return n_weights_; }
  int n_parts() const { return n_parts_; }
  const WeightView& weight(int i) const { return weights_[i]; }
  int64_t grain(int i) const { return grains_[i]; }
  // Rows of weight i that part p computes.
  int64_t row_begin(int p, int i) const { return bounds_[p * n_weights_ + i]; }
  int64_t row_end(int p, int i) const { return bounds_[(p + 1) * n_weights_ + i]; }
  size_t scratch_bytes(int64_t n_tokens) const;

  // out[i] receives weight i's product with `in`; scratch: scratch_bytes(in.n_tokens).
  // Bit-identical to separate ops::matmul calls (on normed x when in.norm is set), followed
  // by ops::add of the bias and ops::rope_apply per token where out[i] asks for them.
  void run(const MatmulInput& in, const MatmulOutput* out, void* scratch, ThreadPool& pool) const;

 private:
  WeightView weights_[kMaxGroupWeights];
  int64_t grains_[kMaxGroupWeights] = {};
  int n_weights_ = 0;
  int n_parts_ = 0;
  // [(n_parts + 1) * n_weights]: part p's first row of weight i at bounds_[p * n_weights + i].
  std::vector<int64_t> bounds_;
};

}  // namespace quanta::ops
