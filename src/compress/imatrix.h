// The importance matrix: for every matmul weight, the sum over calibration tokens of the
// squared activation each input column sees, and the token count. Read and written in
// llama.cpp's formats: the legacy binary .dat that llama-imatrix c392e509 writes, and the
// GGUF imatrix (general.type "imatrix") of later llama.cpp versions.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace quanta::compress {

struct ImatrixEntry {
  std::vector<double> sum_x2;  // [n_cols] sum of x_j^2 over the observed rows
  double count = 0;            // rows (tokens) observed
  int32_t n_calls = 0;         // matmul calls observed (legacy .dat "ncall")
};

class ImportanceMatrix {
 public:
  // Accumulates activations x: [n_rows, n_cols] of weight `name`. Throws quanta::Error when
  // n_cols differs from earlier calls or a value is not finite.
  void add(const std::string& name, const float* x, int32_t n_rows, int64_t n_cols);

  const ImatrixEntry* find(const std::string& name) const;
  // The quantizer weights of `name`, llama-quantize's quant_weights: sum_x2 / count per
  // column. Empty when the matrix has no entry for it.
  std::vector<float> importance(const std::string& name) const;

  const std::vector<std::string>& names() const { return names_; }  // in first-seen order
  size_t size() const { return names_.size(); }

  int32_t n_chunks = 0;     // calibration chunks (llama.cpp's chunk count / "m_last_call")
  int32_t chunk_size = 0;   // tokens per chunk (0: unknown, e.g. from a legacy file)
  std::string dataset;      // calibration text file name

  // Writes the legacy llama.cpp .dat layout, or the GGUF layout when `path` ends in
  // ".gguf". Throws quanta::Error on I/O failure.
  void save(const std::string& path) const;
  // Reads either layout (detected by the GGUF magic). Throws quanta::Error naming the
  // problem for a malformed or truncated file.
  static ImportanceMatrix load(const std::string& path);

  // Sets an entry directly (loading; tests).
  void set(const std::string& name, ImatrixEntry entry);

 private:
  void save_dat(const std::string& path) const;
  void save_gguf(const std::string& path) const;
  static ImportanceMatrix load_dat(const std::string& path);
  static ImportanceMatrix load_gguf(const std::string& path);

  std::vector<std::string> names_;
  std::unordered_map<std::string, ImatrixEntry> entries_;
};

}  // namespace quanta::compress
