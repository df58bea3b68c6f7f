// GGUF writer (version 3 by default, or 2): metadata in insertion order, tensor infos,
// data aligned to `general.alignment` (default 32) with zero padding. Round-trips byte for
// byte any file in llama.cpp's layout (data in tensor-info order, each tensor at the next
// aligned offset, zero padding); see docs/FORMATS.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/value.h"
#include "quant/types.h"

namespace quanta::gguf {

class Writer {
 public:
  explicit Writer(uint32_t version = 3);

  // Sets a key (replacing an existing one in place, else appending).
  void set(const std::string& key, Value value);
  // Adds a tensor; `data` is copied. n_bytes must equal the size its type and dims imply.
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne,
                  const void* data, size_t n_bytes);
  // Writes the file (to a temporary name, then renamed). Throws quanta::Error on failure.
  void write(const std::string& path) const;
  // The whole file image in memory.
  std::string to_bytes() const;

  // A writer holding a copy of everything in `file`: version, metadata and tensors in file
  // order, tensor bytes copied. Offsets are reassigned in order, which reproduces any file
  // in llama.cpp's layout exactly.
  static Writer from_file(const File& file);

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;  // n_bytes as the type and dims imply
  };
  uint64_t alignment() const;      // general.alignment, else kDefaultAlignment
  std::string head_bytes() const;  // header, metadata, tensor infos, padding before the data
  uint32_t version_;
  std::vector<KeyValue> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace quanta::gguf
