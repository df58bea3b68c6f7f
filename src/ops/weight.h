// A view of a 2-D weight matrix stored in any GGML type (typically inside the mapped GGUF, or
// repacked at load into a kernel layout of the same size, kernels/repack.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernel_table.h"
#include "quant/types.h"

namespace quanta::ops {

struct WeightView {
  GgmlType type = GgmlType::F32;
  int64_t n_cols = 0;   // ne[0]: values per row (the reduced dimension)
  int64_t n_rows = 0;   // ne[1]: output features
  size_t row_bytes = 0; // bytes per row
  const uint8_t* data = nullptr;  // [n_rows, row_bytes] (panel layouts: 16 rows interleaved)
  kernels::WeightLayout layout = kernels::WeightLayout::kGguf;  // arrangement of each row

  // The kernel table's row kernel for this view's layout.
  kernels::MatmulRowsFn rows_fn(const kernels::KernelTable& table) const {
    return table.rows_fn(layout);
  }

  bool empty() const { return data == nullptr; }
};

// Dequantizes row `r` of `w` into out[n_cols] (embedding lookup, tied output tests).
void dequantize_row(const WeightView& w, int64_t r, float* out);

}  // namespace quanta::ops
