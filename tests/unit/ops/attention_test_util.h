// Test helpers for attention: a paged K/V pool with a shuffled (non-contiguous) block table,
// F32, F16, Q8_0 or Q4_0 rows (packed across heads narrower than a block, as kv::KvCache
// stores them), unused rows filled with NaN; and naive attention in double
// (softmax of the full score row) with the per-element magnitude sum_j p_j |v_j[i]| used to
// scale error bounds.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "ops/attention.h"
#include "quant/types.h"

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
// not own, and every row past n_tokens, is NaN (for quantized rows: NaN block scales), so a
// kernel reading outside the table or past its length produces NaN.
class PagedKv {
 public:
  PagedKv(std::mt19937& rng, int32_t n_tokens, int32_t n_kv_head, int32_t head_dim,
          int32_t block_size, GgmlType type)
      : n_tokens_(n_tokens),
        n_kv_head_(n_kv_head),
        head_dim_(head_dim),
        row_(static_cast<int64_t>(n_kv_head) * head_dim),
        row_heads_(kv_row_heads(type, head_dim)),
        stored_(static_cast<int64_t>(row_heads_) * head_dim),
        row_bytes_(row_size(type, stored_)),
        block_size_(block_size),
        type_(type) {
    const int32_t n_used = (n_tokens + block_size - 1) / block_size;
    n_blocks_ = 2 * n_used + 1;
    std::vector<int32_t> perm(n_blocks_);
    for (int32_t b = 0; b < n_blocks_; ++b) perm[b] = b;
    std::shuffle(perm.begin(), perm.end(), rng);
    blocks_.assign(perm.begin(), perm.begin() + n_used);
    k_logical_ = random_floats(rng, static_cast<size_t>(n_tokens) * row_);
    v_logical_ = random_floats(rng, static_cast<size_t>(n_tokens) * row_);
    sync();
  }

  int32_t n_tokens() const { return n_tokens_; }
  GgmlType type() const { return type_; }
  // Logical rows [n_tokens, n_kv_head * head_dim] as float (editable; call sync() after).
  std::vector<float>& k() { return k_logical_; }
  std::vector<float>& v() { return v_logical_; }
  // The rows as the kernel sees them: rounded to F16 or quantized and dequantized.
  float k_at(int32_t pos, int64_t i) const { return k_seen_[pos * row_ + i]; }
  float v_at(int32_t pos, int64_t i) const { return v_seen_[pos * row_ + i]; }

  // Writes the logical rows into the pool in its type; every other row is NaN.
  void sync() {
    const size_t pool_rows =
        static_cast<size_t>(n_blocks_) * block_size_ * (n_kv_head_ / row_heads_);
    k_pool_.resize(pool_rows * row_bytes_);
    v_pool_.resize(pool_rows * row_bytes_);
    const std::vector<float> nan_row(stored_, std::numeric_limits<float>::quiet_NaN());
    for (size_t r = 0; r < pool_rows; ++r) {
      store_row(nan_row.data(), k_pool_.data() + r * row_bytes_);
      store_row(nan_row.data(), v_pool_.data() + r * row_bytes_);
    }
    k_seen_.resize(k_logical_.size());
    v_seen_.resize(v_logical_.size());
    for (int32_t p = 0; p < n_tokens_; ++p) {
      for (int32_t h = 0; h < n_kv_head_; h += row_heads_) {  // one stored row
        const int64_t at = p * row_ + static_cast<int64_t>(h) * head_dim_;
        uint8_t* kd = k_pool_.data() + offset(p, h);
        uint8_t* vd = v_pool_.data() + offset(p, h);
        store_row(k_logical_.data() + at, kd);
        store_row(v_logical_.data() + at, vd);
        load_row(kd, k_seen_.data() + at);
        load_row(vd, v_seen_.data() + at);
      }
    }
  }

  PagedKvView view() const {
    PagedKvView view;
    view.type = type_;
    view.k = k_pool_.data();
    view.v = v_pool_.data();
    view.n_kv_head = n_kv_head_;
    view.head_dim = head_dim_;
    view.row_heads = row_heads_;
    view.row_bytes = row_bytes_;
    view.block_size = block_size_;
    view.block_ids = blocks_.data();
    return view;
  }

 private:
  // Byte offset of the row holding `head` in [n_blocks, n_kv_head / row_heads, block_size,
  // row_bytes], as in kv::KvCache.
  size_t offset(int32_t pos, int32_t head) const {
    const size_t block = static_cast<size_t>(blocks_[pos / block_size_]);
    const size_t rows = static_cast<size_t>(n_kv_head_ / row_heads_);
    return ((block * rows + head / row_heads_) * block_size_ + pos % block_size_) * row_bytes_;
  }
  void store_row(const float* src, uint8_t* dst) const {
    if (type_ == GgmlType::F16) {
      uint16_t* h = reinterpret_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < stored_; ++i) h[i] = f32_to_f16(src[i]);
    } else if (type_ == GgmlType::F32) {
      std::memcpy(dst, src, stored_ * sizeof(float));
    } else if (std::isnan(src[0])) {  // a NaN row: NaN scales (0x7e00) in every block
      std::memset(dst, 0, row_bytes_);
      const size_t block_bytes = type_traits(type_).type_size;
      for (size_t b = 0; b < row_bytes_; b += block_bytes) dst[b + 1] = 0x7e;
    } else {
      quantize_row(type_, src, dst, stored_);
    }
  }
  void load_row(const uint8_t* src, float* dst) const {
    if (type_ == GgmlType::F32) {
      std::memcpy(dst, src, stored_ * sizeof(float));
    } else {
      dequantize_row(type_, src, dst, stored_);
    }
  }

  int32_t n_tokens_;
  int32_t n_kv_head_;
  int32_t head_dim_;
  int64_t row_;
  int32_t row_heads_;  // KV heads per stored row (kv_row_heads)
  int64_t stored_;     // values per stored row
  size_t row_bytes_;
  int32_t block_size_;
  int32_t n_blocks_ = 0;
  GgmlType type_;
  std::vector<int32_t> blocks_;
  std::vector<float> k_logical_, v_logical_;  // [n_tokens, row] as given
  std::vector<float> k_seen_, v_seen_;        // [n_tokens, row] as the kernel reads them
  std::vector<uint8_t> k_pool_, v_pool_;      // the pools, in type_
};

// The query as a kernel scores it against K rows of `type`: unchanged for F32/F16 K and for
// packed quantized rows (scored in F32), else each head's row quantized to the type's
// vec_dot_type and dequantized.
inline std::vector<float> query_seen(const std::vector<float>& q, GgmlType type, int32_t head_dim) {
  if (type == GgmlType::F32 || type == GgmlType::F16 || kv_row_heads(type, head_dim) > 1) {
    return q;
  }
  const GgmlType dot_type = type_traits(type).vec_dot_type;
  std::vector<uint8_t> row(row_size(dot_type, head_dim));
  std::vector<float> out(q.size());
  for (size_t h = 0; h < q.size() / head_dim; ++h) {
    quantize_row(dot_type, q.data() + h * head_dim, row.data(), head_dim);
    dequantize_row(dot_type, row.data(), out.data() + h * head_dim, head_dim);
  }
  return out;
}

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
