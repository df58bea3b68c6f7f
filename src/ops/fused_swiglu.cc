// Gate/up product with the SwiGLU epilogue (see fused_swiglu.h).
#include "ops/fused_swiglu.h"

#include "core/error.h"
#include "kernels/kernel_table.h"
#include "ops/elementwise.h"

namespace quanta::ops {

size_t swiglu_scratch_bytes(const WeightView& gate, const WeightView& up, int64_t n_tokens) {
  const WeightView weights[2] = {gate, up};
  return group_scratch_bytes(weights, 2, n_tokens);
}

void matmul_swiglu(const WeightView& gate, const WeightView& up, const MatmulInput& in,
                   const MatmulOutput& gate_out, const MatmulOutput& up_out, void* scratch,
                   ThreadPool& pool) {
  QUANTA_ASSERT(gate.n_rows == up.n_rows && gate.n_cols == up.n_cols);
  const WeightView weights[2] = {gate, up};
  const ConvertedInput c = convert_input(weights, 2, in, scratch);
  const kernels::KernelTable& table = kernels::active();
  const kernels::MatmulRowsFn gate_rows = gate.rows_fn(table), up_rows = up.rows_fn(table);
  const auto rows = [&](int64_t begin, int64_t end) {
    gate_rows(gate.type, gate.data, gate.row_bytes, gate.n_cols, c.act[0], c.act_row_bytes[0],
              in.n_tokens, gate_out.y, gate_out.y_stride, begin, end);
    up_rows(up.type, up.data, up.row_bytes, up.n_cols, c.act[1], c.act_row_bytes[1], in.n_tokens,
            up_out.y, up_out.y_stride, begin, end);
    for (int64_t t = 0; t < in.n_tokens; ++t) {
      swiglu(gate_out.y + t * gate_out.y_stride + begin, up_out.y + t * up_out.y_stride + begin,
             end - begin);
    }
  };
  pool.parallel_for(gate.n_rows, MatmulGroupPlan::kGroupGrain, rows);
}

}  // namespace quanta::ops
