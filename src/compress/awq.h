// AWQ-style activation-aware scaling for calibrated quantization: input columns of a matmul
// weight are multiplied by s_j = a_j^(alpha/2) (a = the importance matrix, mean x_j^2) before
// quantizing, and 1/s_j is folded into what produces that input (an RMSNorm weight, or the
// rows of attn_v / ffn_up), so the F32 model computes the same function. alpha is chosen per
// layer and group from a grid, by the activation-weighted error on the calibration statistics.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compress/imatrix.h"
#include "core/thread_pool.h"
#include "gguf/reader.h"
#include "quant/types.h"

namespace quanta::compress {

// One scaling group: consumers share an input whose columns get the scale; the producer is
// the tensor that absorbs 1/s (a norm weight, or a matrix whose rows are scaled).
struct AwqGroup {
  std::string producer;                // "blk.3.attn_norm.weight", "blk.3.attn_v.weight"
  std::vector<std::string> consumers;  // matmul weights whose columns are scaled
  float alpha = 0.0f;                  // chosen exponent (0: unchanged)
  double error_before = 0.0;           // weighted error with alpha = 0
  double error_after = 0.0;            // weighted error with the chosen alpha
  std::vector<float> scales;           // [consumer width] column scales s (alpha's)
};

// Which consumers are scaled: those whose planned type is in `types` (empty: every quantized
// type). The default, Q4_0 and Q4_1, is where it pays (docs/QUANTIZATION.md).
struct AwqOptions {
  std::vector<GgmlType> types = {GgmlType::Q4_0, GgmlType::Q4_1};
};

struct AwqResult {
  std::vector<AwqGroup> groups;
  std::map<std::string, std::vector<float>> tensors;     // replaced F32 data, by name
  std::map<std::string, std::vector<float>> importance;  // importance of the scaled inputs
};

// The tensors' planned output types, by name (only tensors that are converted).
using TypePlan = std::map<std::string, GgmlType>;

// Searches alpha in {0, 0.05, ..., 1} for every group of a llama/qwen2 model: the attention
// and FFN norms (consumers attn_q/k/v, ffn_gate/up) and, when they carry no bias, attn_v rows
// (consumer attn_output, per KV head under grouped-query attention) and ffn_up rows
// (consumer ffn_down). Error: sum over consumers of sum_rj a_j (w_rj - w'_rj)^2 with w' the
// dequantized weights of the planned type (importance-weighted quantizer with the scaled
// importance a_j / s_j^2), which equals the diagonal activation-weighted output error. Groups
// whose tensors are missing, not planned for a quantized type, lack importance entries or
// whose producer is not F32, or whose consumers' types options.types excludes, are left out. Empty
// result for other architectures.
AwqResult awq_search(const gguf::File& in, const TypePlan& plan, const ImportanceMatrix& imatrix,
                     const AwqOptions& options, ThreadPool& pool);

// Activation-weighted error of quantizing `w` [n_rows, n_cols] to `type` after scaling
// column j by s[j] (quantizer importance a_j / s_j^2), measured in the unscaled space:
// sum_rj a_j (w_rj - deq_rj / s_j)^2. `s` null: unscaled.
double scaled_quant_error(GgmlType type, const float* w, int64_t n_rows, int64_t n_cols,
                          const float* a, const float* s, ThreadPool& pool);

// s_j = a_j^(alpha/2), a floored at 1e-6 * max(a), normalised so that max(s) * min(s) = 1.
std::vector<float> awq_scales(const std::vector<float>& a, float alpha);

}  // namespace quanta::compress
