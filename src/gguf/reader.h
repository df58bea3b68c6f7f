// Memory-mapped GGUF reader (versions 2 and 3). Every count, length, offset, dimension and
// type is validated: a bad file throws quanta::Error with a message naming the problem,
// e.g. "tensor 'blk.3.attn_q.weight': data range 0x1f00..0x9f00 exceeds file size 0x8000".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/aligned_buffer.h"
#include "gguf/value.h"
#include "quant/types.h"

namespace quanta::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // dimensions, ne[0] innermost (row length); 1..4 of them
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;   // relative to the start of the data section
  uint64_t n_bytes = 0;  // validated: rows * row_size(type, ne[0])
  int64_t n_elements() const;
  int64_t n_rows() const;  // n_elements / ne[0]
};

class File {
 public:
  // Maps and validates `path`. Throws quanta::Error ("<path>: <problem>") on any defect.
  static File open(const std::string& path);
  // Validates an in-memory image (copied); for tests and fuzzing.
  static File from_bytes(std::string bytes, std::string name = "<memory>");

  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return size_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute start of the data section

  const std::vector<KeyValue>& metadata() const { return kvs_; }
  const Value* find(std::string_view key) const;
  // Typed lookups: nullopt/nullptr when absent; quanta::Error naming the key when present
  // with an unsuitable type.
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  const Array* get_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  // Start of a tensor's bytes inside the mapping (valid while the File lives).
  const uint8_t* tensor_data(const TensorInfo& info) const;
  const uint8_t* bytes() const { return base_; }

 private:
  File() = default;
  void parse();          // fills the fields below from base_/size_, validating everything
  void parse_or_fail();  // parse(), with errors prefixed by path_
  void release();        // unmaps

  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;  // mmap'd region (nullptr when backed by owned_)
  AlignedBuffer owned_;      // in-memory image for from_bytes (64-byte aligned, like a map)
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace quanta::gguf
