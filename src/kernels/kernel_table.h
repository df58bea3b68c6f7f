// The kernel table: function pointers for every compute kernel, filled once at start-up for
// the selected instruction set. The scalar reference (src/quant) is always available;
// QUANTA_FORCE_ISA=ref|<isa> forces a path so tests can cover each one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/types.h"

namespace quanta::kernels {

// y[r * y_stride + t] for rows r in [row_begin, row_end) and tokens t in [0, n_tokens):
// dot(weight row r, activation row t). Weight rows are `row_bytes` apart; activation rows
// are already in the weight type's vec_dot_type, `act_row_bytes` apart.
using MatmulRowsFn = void (*)(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                              const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                              float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

struct KernelTable {
  const char* isa = "ref";
  ToFloatFn to_float[kGgmlTypeCount] = {};
  FromFloatFn from_float[kGgmlTypeCount] = {};
  VecDotFn vec_dot[kGgmlTypeCount] = {};
  MatmulRowsFn matmul_rows = nullptr;
};

// The active table (selected on first use from the CPU and QUANTA_FORCE_ISA).
const KernelTable& active();
// The scalar reference table.
const KernelTable& reference();
// ISA names this machine can run, "ref" first.
std::vector<std::string> available_isas();
// Selects a path by name; throws quanta::Error for an unknown name or one this CPU lacks.
void select(const std::string& isa);

}  // namespace quanta::kernels
