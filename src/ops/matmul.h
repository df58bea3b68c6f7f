// Matrix products against quantized weights: activations are converted once per product to
// the weight type's vec_dot_type (as llama.cpp does), then the kernel table computes rows in
// parallel. All scratch comes from the caller; nothing is allocated.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/thread_pool.h"
#include "ops/weight.h"

namespace quanta::ops {

// Bytes of activation scratch a matmul over `n_tokens` rows of width `k` needs for `type`.
size_t matmul_scratch_bytes(GgmlType type, int64_t k, int64_t n_tokens);

// y[t, :] = W · x[t, :] for t in [0, n_tokens), then, if residual is non-null,
// residual[t, :] += y[t, :] (ops::add, by each thread on the rows it computed).
// x: [n_tokens, w.n_cols] (row stride x_stride floats); y and residual: [n_tokens, w.n_rows]
// (stride y_stride floats); scratch: at least matmul_scratch_bytes(w.type, w.n_cols, n_tokens).
// The activations are converted token by token, split over the pool's threads; many tokens
// split over tokens (ops::split_tokens).
void matmul(const WeightView& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, void* scratch, ThreadPool& pool, float* residual = nullptr);

}  // namespace quanta::ops
