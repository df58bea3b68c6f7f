// Test-only GGUF reader for trusted files (the shared llama.cpp models): header, metadata
// skipped except general.alignment, tensor infos, data offsets. Independent of src/gguf so
// the quant tests do not depend on the project's reader. Malformed input aborts the test.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "testlib/shared_data.h"

namespace quanta::testing {

struct MiniTensor {
  std::string name;
  std::vector<int64_t> ne;  // ne[0] is the row length
  uint32_t type = 0;        // ggml type code
  uint64_t offset = 0;      // relative to the data section
  int64_t n_elements() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
  }
};

class MiniGguf {
 public:
  explicit MiniGguf(const std::string& path) : bytes_(testlib::read_file(path)) { parse(); }

  const std::vector<MiniTensor>& tensors() const { return tensors_; }
  const MiniTensor* find(const std::string& name) const {
    for (const MiniTensor& t : tensors_) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }
  const uint8_t* data(const MiniTensor& t) const {
    return reinterpret_cast<const uint8_t*>(bytes_.data()) + data_start_ + t.offset;
  }
  size_t size() const { return bytes_.size(); }
  size_t data_start() const { return data_start_; }

 private:
  template <typename T>
  T read() {
    if (pos_ + sizeof(T) > bytes_.size()) throw std::runtime_error("mini_gguf: truncated");
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string read_string() {
    const uint64_t n = read<uint64_t>();
    if (pos_ + n > bytes_.size()) throw std::runtime_error("mini_gguf: truncated string");
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // Skips one value of GGUF value type `vt`; returns it when it is an integer (for alignment).
  uint64_t skip_value(uint32_t vt) {
    static const size_t kScalarSize[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (vt == 8) {
      read_string();
      return 0;
    }
    if (vt == 9) {
      const uint32_t et = read<uint32_t>();
      const uint64_t count = read<uint64_t>();
      for (uint64_t i = 0; i < count; ++i) skip_value(et);
      return 0;
    }
    if (vt > 12) throw std::runtime_error("mini_gguf: bad value type");
    uint64_t v = 0;
    std::memcpy(&v, bytes_.data() + pos_, kScalarSize[vt]);
    pos_ += kScalarSize[vt];
    return v;
  }
  void parse() {
    if (read<uint32_t>() != 0x46554747u) throw std::runtime_error("mini_gguf: bad magic");
    const uint32_t version = read<uint32_t>();
    if (version < 2) throw std::runtime_error("mini_gguf: old version");
    const uint64_t n_tensors = read<uint64_t>();
    const uint64_t n_kv = read<uint64_t>();
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = read_string();
      const uint64_t v = skip_value(read<uint32_t>());
      if (key == "general.alignment") alignment = v;
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      MiniTensor t;
      t.name = read_string();
      const uint32_t n_dims = read<uint32_t>();
      for (uint32_t d = 0; d < n_dims; ++d) t.ne.push_back(static_cast<int64_t>(read<uint64_t>()));
      t.type = read<uint32_t>();
      t.offset = read<uint64_t>();
      tensors_.push_back(std::move(t));
    }
    data_start_ = (pos_ + alignment - 1) / alignment * alignment;
  }

  std::string bytes_;
  size_t pos_ = 0;
  size_t data_start_ = 0;
  std::vector<MiniTensor> tensors_;
};

}  // namespace quanta::testing
