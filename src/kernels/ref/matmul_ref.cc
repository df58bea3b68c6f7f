// Scalar reference matrix product over weight rows: one vec_dot per (row, token) pair.
#include "kernels/ref/ref.h"

namespace quanta::kernels::ref {

void matmul_rows(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                 const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                 int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const VecDotFn dot = type_traits(type).vec_dot;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* w_row = w + static_cast<size_t>(r) * row_bytes;
    for (int64_t t = 0; t < n_tokens; ++t) {
      y[t * y_stride + r] = dot(k, w_row, act + static_cast<size_t>(t) * act_row_bytes);
    }
  }
}

}  // namespace quanta::kernels::ref
