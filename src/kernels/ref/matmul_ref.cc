// Scalar reference matrix product over weight rows: one vec_dot per (row, token) pair.
#include "kernels/ref/ref.h"

#include <vector>

#include "core/error.h"
#include "kernels/repack.h"

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

namespace {

// Rows stored in `layout`: each row unpacked to GGUF, then the reference vec_dot.
void matmul_rows_packed(WeightLayout layout, GgmlType type, const uint8_t* w, size_t row_bytes,
                        int64_t k, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                        float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == layout_type(layout, type) && row_bytes == row_size(type, k));
  const VecDotFn dot = type_traits(type).vec_dot;
  // Rows up to 16 KiB (Q4_0: k <= 29127, Q8_0: k <= 15420, F16: k <= 8192) unpack on the
  // stack; longer ones need a heap buffer.
  constexpr size_t kStackBytes = 16384;
  alignas(64) uint8_t stack_row[kStackBytes];
  std::vector<uint8_t> heap_row(row_bytes > kStackBytes ? row_bytes : 0);
  uint8_t* row = row_bytes > kStackBytes ? heap_row.data() : stack_row;
  for (int64_t r = row_begin; r < row_end; ++r) {
    extract_gguf_row(layout, type, k, w, r, row);
    for (int64_t t = 0; t < n_tokens; ++t) {
      y[t * y_stride + r] = dot(k, row, act + static_cast<size_t>(t) * act_row_bytes);
    }
  }
}

}  // namespace

template <WeightLayout Layout>
void matmul_rows_layout(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                        const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                        int64_t y_stride, int64_t row_begin, int64_t row_end) {
  matmul_rows_packed(Layout, type, w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride,
                     row_begin, row_end);
}

template void matmul_rows_layout<WeightLayout::kQ4_0x8>(GgmlType, const uint8_t*, size_t, int64_t,
                                                        const uint8_t*, size_t, int64_t, float*,
                                                        int64_t, int64_t, int64_t);
template void matmul_rows_layout<WeightLayout::kQ8_0x8>(GgmlType, const uint8_t*, size_t, int64_t,
                                                        const uint8_t*, size_t, int64_t, float*,
                                                        int64_t, int64_t, int64_t);
template void matmul_rows_layout<WeightLayout::kF16x16>(GgmlType, const uint8_t*, size_t, int64_t,
                                                        const uint8_t*, size_t, int64_t, float*,
                                                        int64_t, int64_t, int64_t);
template void matmul_rows_layout<WeightLayout::kQ4_Kx8>(GgmlType, const uint8_t*, size_t, int64_t,
                                                        const uint8_t*, size_t, int64_t, float*,
                                                        int64_t, int64_t, int64_t);
template void matmul_rows_layout<WeightLayout::kQ6_Kx8>(GgmlType, const uint8_t*, size_t, int64_t,
                                                        const uint8_t*, size_t, int64_t, float*,
                                                        int64_t, int64_t, int64_t);
template void matmul_rows_layout<WeightLayout::kBF16x16>(GgmlType, const uint8_t*, size_t,
                                                         int64_t, const uint8_t*, size_t, int64_t,
                                                         float*, int64_t, int64_t, int64_t);
template void matmul_rows_layout<WeightLayout::kBF16x16Pairs>(GgmlType, const uint8_t*, size_t,
                                                              int64_t, const uint8_t*, size_t,
                                                              int64_t, float*, int64_t, int64_t,
                                                              int64_t);

}  // namespace quanta::kernels::ref
