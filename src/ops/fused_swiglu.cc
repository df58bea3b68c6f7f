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
  const kernels::KernelTable& table = kernels::active();
  const kernels::MatmulRowsFn gate_rows = gate.rows_fn(table), up_rows = up.rows_fn(table);
  const InputConverter conv(weights, 2, in, scratch);
  const ConvertedInput& c = conv.converted();
  if (split_tokens(in.n_tokens, pool, gate) && split_tokens(in.n_tokens, pool, up) &&
      conv.parallel()) {
    const auto tokens = [&](int64_t t0, int64_t t1) {
      conv.convert(t0, t1);
      gate_rows(gate.type, gate.data, gate.row_bytes, gate.n_cols,
                c.act[0] + t0 * c.act_row_bytes[0], c.act_row_bytes[0], t1 - t0,
                gate_out.y + t0 * gate_out.y_stride, gate_out.y_stride, 0, gate.n_rows);
      up_rows(up.type, up.data, up.row_bytes, up.n_cols, c.act[1] + t0 * c.act_row_bytes[1],
              c.act_row_bytes[1], t1 - t0, up_out.y + t0 * up_out.y_stride, up_out.y_stride, 0,
              up.n_rows);
      for (int64_t t = t0; t < t1; ++t) {
        swiglu(gate_out.y + t * gate_out.y_stride, up_out.y + t * up_out.y_stride, gate.n_rows);
      }
    };
    pool.parallel_for(in.n_tokens, kTokenGrain, tokens);
    return;
  }
  conv.convert_all(pool);
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
