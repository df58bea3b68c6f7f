// Scalar element-wise operations (see elementwise.h); SwiGLU runs the bit-identical AVX2
// version when the active kernel ISA is not "ref".
#include "ops/elementwise.h"

#include <cmath>

#include "kernels/kernel_table.h"
#if defined(__x86_64__)
#include "kernels/x86_avx2/swiglu_avx2.h"
#endif

namespace quanta::ops {

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * weight[i];
}

void swiglu(float* gate, const float* up, int64_t n) {
#if defined(__x86_64__)
  if (kernels::avx2_active()) return kernels::avx2::swiglu(gate, up, n);
#endif
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void softmax(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace quanta::ops
