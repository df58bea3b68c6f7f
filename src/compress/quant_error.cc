// Activation-weighted quantization error of a weight matrix.
#include "compress/quant_error.h"

#include <vector>

#include "quant/weighted.h"

namespace quanta::compress {

double weighted_quant_error(GgmlType type, const float* w, int64_t n_rows, int64_t n_cols,
                            const float* importance, const float* quantizer_importance) {
  std::vector<uint8_t> q(row_size(type, n_cols));
  std::vector<float> back(static_cast<size_t>(n_cols));
  double total = 0.0;
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = w + r * n_cols;
    quantize_row_weighted(type, row, q.data(), n_cols, quantizer_importance);
    dequantize_row(type, q.data(), back.data(), n_cols);
    for (int64_t j = 0; j < n_cols; ++j) {
      const double d = static_cast<double>(row[j]) - back[j];
      total += (importance != nullptr ? importance[j] : 1.0) * d * d;
    }
  }
  return total;
}

}  // namespace quanta::compress
