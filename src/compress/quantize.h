// `quanta quantize` as a library call: reads an F32/F16/BF16 GGUF model, quantizes its
// tensors by the recipe (optionally weighted by an importance matrix) and writes a GGUF
// file laid out as llama-quantize writes it (metadata, tensor order, alignment).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "compress/awq.h"
#include "compress/file_type.h"
#include "compress/imatrix.h"
#include "quant/types.h"

namespace quanta::compress {

struct QuantizeOptions {
  FileType ftype = FileType::kQ4_0;
  const ImportanceMatrix* imatrix = nullptr;  // null: round-to-nearest everywhere
  std::string imatrix_path;                   // recorded as quantize.imatrix.file
  bool keep_output_f16 = false;               // output.weight in F16
  bool pure = false;                          // the base type for every tensor
  bool awq = true;  // with an imatrix: AWQ-style column scaling folded into norms (awq.h)
  AwqOptions awq_options;  // which types AWQ scales (default Q4_0, Q4_1)
  int32_t n_threads = 0;                      // 0: all cores
  // Called before each tensor with (index, total, name).
  std::function<void(size_t, size_t, const std::string&)> on_tensor;
};

struct TensorReport {
  std::string name;
  std::vector<int64_t> ne;
  GgmlType from = GgmlType::F32;
  GgmlType to = GgmlType::F32;
  bool weighted = false;  // quantized with importance weights
  std::string note;       // a fallback from the recipe's type, if any
};

struct QuantizeReport {
  std::vector<TensorReport> tensors;  // in output order
  uint64_t input_bytes = 0;           // tensor data, input
  uint64_t output_bytes = 0;          // tensor data, output
  uint64_t file_bytes = 0;            // output file size
  int64_t n_elements = 0;
  int32_t n_weighted = 0;  // tensors quantized with importance weights
  std::vector<AwqGroup> awq_groups;  // the AWQ scaling groups and their alphas (with awq)
  double bits_per_weight() const {
    return n_elements > 0 ? 8.0 * static_cast<double>(output_bytes) / n_elements : 0.0;
  }
};

// Quantizes `input` into `output`. Throws quanta::Error, before writing anything, when the
// output is the input (same path or the same file through another name), a tensor that
// must be converted is not F32/F16/BF16, or an importance-matrix entry's width does not
// match its tensor.
QuantizeReport quantize_model(const std::string& input, const std::string& output,
                              const QuantizeOptions& options);

// Fails when `output` names the same file as `input` (same path, or same device and inode).
void check_not_same_file(const std::string& input, const std::string& output);

}  // namespace quanta::compress
