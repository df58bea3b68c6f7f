// Shared helpers of the grouped / fused matmul tests: random quantized weight matrices,
// random activations and the unfused reference (ops::matmul on optionally normed rows).
#pragma once

#include <random>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/weight.h"

namespace quanta::ops::testing {

inline const GgmlType kAllTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                                     GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                                     GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

struct Matrix {
  std::vector<uint8_t> bytes;
  WeightView view;
};

inline Matrix random_matrix(std::mt19937& rng, GgmlType type, int64_t n_rows, int64_t k) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Matrix m;
  const size_t rb = row_size(type, k);
  m.bytes.resize(rb * n_rows);
  std::vector<float> row(k);
  for (int64_t r = 0; r < n_rows; ++r) {
    for (float& v : row) v = dist(rng);
    quantize_row(type, row.data(), m.bytes.data() + r * rb, k);
  }
  m.view = WeightView{type, k, n_rows, rb, m.bytes.data()};
  return m;
}

inline std::vector<float> random_normals(std::mt19937& rng, size_t n, float mean = 0.0f) {
  std::normal_distribution<float> dist(mean, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// x rows [n_tokens, k] RMS-normed with `norm` (or copied when null).
inline std::vector<float> normed_rows(const std::vector<float>& x, int64_t n_tokens, int64_t k,
                                      const float* norm, float eps) {
  std::vector<float> out(x);
  if (norm == nullptr) return out;
  for (int64_t t = 0; t < n_tokens; ++t) rms_norm(&x[t * k], norm, k, eps, &out[t * k]);
  return out;
}

// ops::matmul of w with rows [n_tokens, w.n_cols]: y [n_tokens, w.n_rows].
inline std::vector<float> separate_matmul(const WeightView& w, const std::vector<float>& x,
                                          int64_t n_tokens, ThreadPool& pool) {
  AlignedBuffer scratch(matmul_scratch_bytes(w.type, w.n_cols, n_tokens) + 64);
  std::vector<float> y(n_tokens * w.n_rows, -1.0f);
  matmul(w, x.data(), w.n_cols, n_tokens, y.data(), w.n_rows, scratch.data(), pool);
  return y;
}

}  // namespace quanta::ops::testing
