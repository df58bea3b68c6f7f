// The AVX2 kernel-table entry for matrix rows: picks the row-tiled kernel of the weight type.
#include "core/error.h"
#include "kernels/x86_avx2/avx2.h"

namespace quanta::kernels::avx2 {
namespace {

TypedRowsFn rows_kernel(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return matmul_rows_f32;
    case GgmlType::F16:
      return matmul_rows_f16;
    case GgmlType::BF16:
      return matmul_rows_bf16;
    case GgmlType::Q4_0:
      return matmul_rows_q4_0;
    case GgmlType::Q4_1:
      return matmul_rows_q4_1;
    case GgmlType::Q5_0:
      return matmul_rows_q5_0;
    case GgmlType::Q5_1:
      return matmul_rows_q5_1;
    case GgmlType::Q8_0:
      return matmul_rows_q8_0;
    case GgmlType::Q4_K:
      return matmul_rows_q4_K;
    case GgmlType::Q5_K:
      return matmul_rows_q5_K;
    case GgmlType::Q6_K:
      return matmul_rows_q6_K;
    default:
      return nullptr;
  }
}

}  // namespace

void matmul_rows(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                 size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end) {
  const TypedRowsFn fn = rows_kernel(type);
  QUANTA_ASSERT(fn != nullptr);  // ops only multiplies supported weight types
  fn(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin, row_end);
}

void matmul_rows_packed_q4_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::Q4_0);
  matmul_rows_q4_0x8(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                     row_end);
}

void matmul_rows_packed_q8_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::Q8_0);
  matmul_rows_q8_0x8(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                     row_end);
}

}  // namespace quanta::kernels::avx2
