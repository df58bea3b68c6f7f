// Helpers for the GGUF tests: a small valid file built by the Writer, and byte-level tools to
// locate, patch and splice its fields (little-endian) to make corrupt variants.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/writer.h"

namespace quanta::gguf::test {

// Tensors of the base file (names chosen not to occur inside any key):
//   tensor_a F32  [8, 2]   64 bytes at offset 0
//   tensor_b Q8_0 [64, 2] 136 bytes at offset 64  (padded to 160)
//   tensor_c F16  [16]     32 bytes at offset 224
inline Writer base_writer(uint32_t version = 3) {
  Writer w(version);
  w.set("general.architecture", Value::string("test"));
  w.set("general.alignment", Value::u32(32));
  w.set("test.u32", Value::u32(7));
  w.set("test.dup_a", Value::u8(1));
  w.set("test.dup_b", Value::u8(2));
  w.set("test.str", Value::string("hello"));
  w.set("test.arr", Value::i32_array({1, 2, 3}));
  w.set("test.list", Value::string_array({"a", "bc"}));
  w.set("test.f32", Value::f32(0.5f));
  std::vector<uint8_t> a(64), b(136), c(32);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(3 * i);
  for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<uint8_t>(7 * i);
  w.add_tensor("tensor_a", GgmlType::F32, {8, 2}, a.data(), a.size());
  w.add_tensor("tensor_b", GgmlType::Q8_0, {64, 2}, b.data(), b.size());
  w.add_tensor("tensor_c", GgmlType::F16, {16}, c.data(), c.size());
  return w;
}

inline std::string base_image() {
  return base_writer().to_bytes();
}

// Position of the only occurrence of `needle` in `image` (fails the test if not unique).
inline size_t find_unique(const std::string& image, std::string_view needle) {
  const size_t pos = image.find(needle);
  EXPECT_NE(pos, std::string::npos) << "'" << needle << "' not in image";
  EXPECT_EQ(image.find(needle, pos + 1), std::string::npos) << "'" << needle << "' not unique";
  return pos;
}

template <typename T>
void put_at(std::string& image, size_t pos, T v) {
  ASSERT_LE(pos + sizeof v, image.size());
  std::memcpy(image.data() + pos, &v, sizeof v);
}

template <typename T>
T get_at(const std::string& image, size_t pos) {
  T v{};
  std::memcpy(&v, image.data() + pos, sizeof v);
  return v;
}

template <typename T>
void append(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

inline void append_string(std::string& out, std::string_view s) {
  append<uint64_t>(out, s.size());
  out.append(s);
}

// Header fields.
inline constexpr size_t kVersionPos = 4;
inline constexpr size_t kTensorCountPos = 8;
inline constexpr size_t kKvCountPos = 16;
inline constexpr size_t kFirstKvPos = 24;

// Metadata entry of `key`: position of its u32 value type; the value follows it.
inline size_t kv_type_pos(const std::string& image, std::string_view key) {
  return find_unique(image, key) + key.size();
}

// Tensor info of `name`: positions of its fields.
struct InfoPos {
  size_t n_dims, ne, type, offset;
};
inline InfoPos info_pos(const std::string& image, std::string_view name) {
  InfoPos p;
  p.n_dims = find_unique(image, name) + name.size();
  p.ne = p.n_dims + 4;
  p.type = p.ne + 8 * get_at<uint32_t>(image, p.n_dims);
  p.offset = p.type + 4;
  return p;
}

// One raw key/value entry: u64 key length | key | u32 type | payload.
inline std::string raw_kv(std::string_view key, uint32_t type, const std::string& payload) {
  std::string out;
  append_string(out, key);
  append<uint32_t>(out, type);
  return out + payload;
}

// Inserts a raw entry before the first metadata entry and counts it in the header.
inline std::string with_raw_kv(std::string image, const std::string& entry) {
  image.insert(kFirstKvPos, entry);
  put_at<uint64_t>(image, kKvCountPos, get_at<uint64_t>(image, kKvCountPos) + 1);
  return image;
}

// One raw tensor info: name | u32 n_dims | i64 ne[] | u32 type | u64 offset.
inline std::string raw_info(std::string_view name, const std::vector<int64_t>& ne, uint32_t type,
                            uint64_t offset) {
  std::string out;
  append_string(out, name);
  append<uint32_t>(out, static_cast<uint32_t>(ne.size()));
  for (int64_t d : ne) append<int64_t>(out, d);
  append<uint32_t>(out, type);
  append<uint64_t>(out, offset);
  return out;
}

// Inserts a raw tensor info before the first one and counts it in the header.
inline std::string with_raw_info(std::string image, const std::string& info) {
  image.insert(find_unique(image, "tensor_a") - 8, info);
  put_at<uint64_t>(image, kTensorCountPos, get_at<uint64_t>(image, kTensorCountPos) + 1);
  return image;
}

}  // namespace quanta::gguf::test
