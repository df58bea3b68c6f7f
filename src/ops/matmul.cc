// Matrix product: activation conversion to vec_dot_type, then rows split across threads.
#include "ops/matmul.h"

#include "core/error.h"
#include "kernels/kernel_table.h"
#include "kernels/repack.h"
#include "ops/elementwise.h"
#include "ops/matmul_group.h"

namespace quanta::ops {

void dequantize_row(const WeightView& w, int64_t r, float* out) {
  QUANTA_ASSERT(r >= 0 && r < w.n_rows);
  const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
  if (w.layout != kernels::WeightLayout::kGguf) {
    return kernels::dequantize_layout_row(w.layout, w.type, w.n_cols, w.data, r, out);
  }
  kernels::active().to_float[static_cast<uint32_t>(w.type)](row, out, w.n_cols);
}

size_t matmul_scratch_bytes(GgmlType type, int64_t k, int64_t n_tokens) {
  const GgmlType act_type = type_traits(type).vec_dot_type;
  return row_size(act_type, k) * static_cast<size_t>(n_tokens);
}

void matmul(const WeightView& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, void* scratch, ThreadPool& pool, float* residual) {
  const kernels::KernelTable& table = kernels::active();
  const GgmlType act_type = type_traits(w.type).vec_dot_type;
  const size_t act_row_bytes = row_size(act_type, w.n_cols);
  const FromFloatFn convert = table.from_float[static_cast<uint32_t>(act_type)];
  QUANTA_ASSERT(convert != nullptr);
  auto* act = static_cast<uint8_t*>(scratch);
  const auto convert_tokens = [&](int64_t t_begin, int64_t t_end) {
    for (int64_t t = t_begin; t < t_end; ++t) {
      convert(x + t * x_stride, act + static_cast<size_t>(t) * act_row_bytes, w.n_cols);
    }
  };
  const kernels::MatmulRowsFn matmul_rows = w.rows_fn(table);
  if (split_tokens(n_tokens, pool, w)) {
    const auto tokens = [&](int64_t t_begin, int64_t t_end) {
      convert_tokens(t_begin, t_end);
      matmul_rows(w.type, w.data, w.row_bytes, w.n_cols, act + t_begin * act_row_bytes,
                  act_row_bytes, t_end - t_begin, y + t_begin * y_stride, y_stride, 0, w.n_rows);
      if (residual == nullptr) return;
      for (int64_t t = t_begin; t < t_end; ++t) {
        add(residual + t * y_stride, y + t * y_stride, w.n_rows);
      }
    };
    pool.parallel_for(n_tokens, kTokenGrain, tokens);
    return;
  }
  pool.parallel_for(n_tokens, 1, convert_tokens);
  const auto rows = [&](int64_t begin, int64_t end) {
    matmul_rows(w.type, w.data, w.row_bytes, w.n_cols, act, act_row_bytes, n_tokens, y, y_stride,
                begin, end);
    if (residual == nullptr) return;
    for (int64_t t = 0; t < n_tokens; ++t) {
      add(residual + t * y_stride + begin, y + t * y_stride + begin, end - begin);
    }
  };
  pool.parallel_for(w.n_rows, MatmulGroupPlan::kGroupGrain, rows);
}

}  // namespace quanta::ops
