// Test helpers for attention: a paged K/V pool with a shuffled (non-contiguous) block table,
// F32 or F16, unused rows filled with NaN; and naive attention in double (softmax of the full
// score row) with the per-element magnitude sum_j p_j |v_j[i]| used to scale error bounds.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "ops/attention.h"

namespace quanta::ops::testing {

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

// K/V of one layer for one sequence of n_tokens positions, stored in blocks of block_size
// rows scattered over a pool twice as large, in random order. Every row the sequence does
// not own, and every row past n_tokens, is NaN, so a kernel reading outside the table or
// past its length produces NaN.
class PagedKv {
 public:
  PagedKv(std::mt19937& rng, int32_t n_tokens, int32_t n_kv_head, int32_t head_dim,
          int32_t block_size, GgmlType type)
      : n_tokens_(n_tokens),
        n_kv_head_(n_kv_head),
        head_dim_(head_dim),
        row_(static_cast<int64_t>(n_kv_head) * head_dim),
        block_size_(block_size),
        type_(type) {
    const int32_t n_used = (n_tokens + block_size - 1) / block_size;
    const int32_t n_blocks = 2 * n_used + 1;
    std::vector<int32_t> perm(n_blocks);
    for (int32_t b = 0; b < n_blocks; ++b) perm[b] = b;
    std::shuffle(perm.begin(), perm.end(), rng);
    blocks_.assign(perm.begin(), perm.begin() + n_used);
    const size_t pool = static_cast<size_t>(n_blocks) * block_size * row_;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    k_.assign(pool, nan);
    v_.assign(pool, nan);
    k_logical_ = random_floats(rng, static_cast<size_t>(n_tokens) * row_);
    v_logical_ = random_floats(rng, static_cast<size_t>(n_tokens) * row_);
    sync();
  }

  int32_t n_tokens() const { return n_tokens_; }
  // Logical rows [n_tokens, n_kv_head * head_dim] as float (editable; call sync() after).
  std::vector<float>& k() { return k_logical_; }
  std::vector<float>& v() { return v_logical_; }
  // The rows as the kernel sees them: F16-rounded for an F16 pool.
  float k_at(int32_t pos, int64_t i) const { return k_seen_[pos * row_ + i]; }
  float v_at(int32_t pos, int64_t i) const { return v_seen_[pos * row_ + i]; }

  // Copies the logical rows into the pool (converting to F16 for an F16 pool).
  void sync() {
    k16_.assign(k_.size(), 0x7e00u);  // F16 NaN
    v16_.assign(v_.size(), 0x7e00u);
    k_seen_.resize(k_logical_.size());
    v_seen_.resize(v_logical_.size());
    for (size_t i = 0; i < k_logical_.size(); ++i) k_seen_[i] = stored(k_logical_[i]);
    for (size_t i = 0; i < v_logical_.size(); ++i) v_seen_[i] = stored(v_logical_[i]);
    for (int32_t p = 0; p < n_tokens_; ++p) {
      for (int64_t i = 0; i < row_; ++i) {
        const int64_t at = offset(p, static_cast<int32_t>(i / head_dim_)) + i % head_dim_;
        k_[at] = k_logical_[p * row_ + i];
        v_[at] = v_logical_[p * row_ + i];
        k16_[at] = f32_to_f16(k_[at]);
        v16_[at] = f32_to_f16(v_[at]);
      }
    }
  }

  PagedKvView view() const {
    PagedKvView view;
    view.type = type_;
    view.k = type_ == GgmlType::F16 ? static_cast<const void*>(k16_.data()) : k_.data();
    view.v = type_ == GgmlType::F16 ? static_cast<const void*>(v16_.data()) : v_.data();
    view.n_kv_head = n_kv_head_;
    view.head_dim = head_dim_;
    view.block_size = block_size_;
    view.block_ids = blocks_.data();
    return view;
  }

 private:
  // [n_blocks, n_kv_head, block_size, head_dim], as in kv::KvCache.
  int64_t offset(int32_t pos, int32_t head) const {
    const int64_t block = blocks_[pos / block_size_];
    return ((block * n_kv_head_ + head) * block_size_ + pos % block_size_) * head_dim_;
  }
  float stored(float x) const { return type_ == GgmlType::F16 ? f16_to_f32(f32_to_f16(x)) : x; }

  int32_t n_tokens_;
  int32_t n_kv_head_;
  int32_t head_dim_;
  int64_t row_;
  int32_t block_size_;
  GgmlType type_;
  std::vector<int32_t> blocks_;
  std::vector<float> k_logical_, v_logical_;  // [n_tokens, row] as given
  std::vector<float> k_seen_, v_seen_;        // [n_tokens, row] as the kernel reads them
  std::vector<float> k_, v_;
  std::vector<uint16_t> k16_, v16_;
};

struct NaiveHead {
  std::vector<double> out;        // [head_dim]
  std::vector<double> magnitude;  // [head_dim] sum_j p_j |v_j[i]|
  std::vector<double> p;          // [n_kv] softmax of the scores
};

// Softmax of the full score row and the weighted V sum for query head `head`, in double,
// from the values get_k(pos, i) / get_v(pos, i) of KV head head / group.
template <typename GetK, typename GetV>
NaiveHead naive_head(const float* q, int32_t n_kv, const AttentionShape& shape, int32_t head,
                     const GetK& get_k, const GetV& get_v) {
  const int64_t col = static_cast<int64_t>(head / shape.group()) * shape.head_dim;
  NaiveHead r;
  r.p.resize(n_kv);
  double max = -std::numeric_limits<double>::infinity();
  for (int32_t p = 0; p < n_kv; ++p) {
    double dot = 0.0;
    for (int32_t i = 0; i < shape.head_dim; ++i) dot += double(q[i]) * get_k(p, col + i);
    r.p[p] = dot * shape.scale;
    max = std::max(max, r.p[p]);
  }
  double sum = 0.0;
  for (double& s : r.p) sum += (s = std::exp(s - max));
  for (double& s : r.p) s /= sum;
  r.out.assign(shape.head_dim, 0.0);
  r.magnitude.assign(shape.head_dim, 0.0);
  for (int32_t p = 0; p < n_kv; ++p) {
    for (int32_t i = 0; i < shape.head_dim; ++i) {
      const double v = get_v(p, col + i);
      r.out[i] += r.p[p] * v;
      r.magnitude[i] += r.p[p] * std::fabs(v);
    }
  }
  return r;
}

// Naive attention over the values the kernel reads (F16-rounded for an F16 pool).
inline NaiveHead naive_head(const float* q, const PagedKv& kv, int32_t n_kv,
                            const AttentionShape& shape, int32_t head) {
  return naive_head(
      q, n_kv, shape, head, [&](int32_t p, int64_t i) { return double(kv.k_at(p, i)); },
      [&](int32_t p, int64_t i) { return double(kv.v_at(p, i)); });
}

}  // namespace quanta::ops::testing
