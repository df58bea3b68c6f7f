// Quantization error measured the way calibration optimises it: squared weight error
// weighted per input column by the importance matrix (mean squared activation), so it is
// the expected squared error of the matmul output that the quantization causes.
#pragma once

#include <cstdint>

#include "quant/types.h"

namespace quanta::compress {

// w: [n_rows, n_cols] F32 weights. Quantizes each row to `type` (with importance weights
// `quantizer_importance` [n_cols], null: round to nearest), dequantizes it and returns
// sum_r sum_j importance[j] * (w[r][j] - w'[r][j])^2 (importance null: all ones).
double weighted_quant_error(GgmlType type, const float* w, int64_t n_rows, int64_t n_cols,
                            const float* importance, const float* quantizer_importance);

}  // namespace quanta::compress
