// Element-wise and row-wise operations of the transformer: RMSNorm, SwiGLU, bias, residual,
// softmax. Scalar, F32, bit-for-bit the same order of operations as ggml's reference where
// that matters for matching llama.cpp (sums of squares in double, as ggml does).
#pragma once

#include <cstdint>

namespace quanta::ops {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]; out may alias x.
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);
// gate[i] = silu(gate[i]) * up[i]  (SwiGLU), silu(v) = v / (1 + exp(-v)).
void swiglu(float* gate, const float* up, int64_t n);
// x[i] += y[i]
void add(float* x, const float* y, int64_t n);
// In-place softmax over x[0..n); sum accumulated in double as ggml does.
void softmax(float* x, int64_t n);

}  // namespace quanta::ops
