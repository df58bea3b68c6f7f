// Internal to src/gguf: the pieces of GGUF parsing, each validating what it reads and
// throwing quanta::Error with the cursor's context on any defect.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "gguf/cursor.h"
#include "gguf/reader.h"
#include "gguf/value.h"

namespace quanta::gguf {

// Header fields after the magic. Layout (little-endian):
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
struct Header {
  uint32_t version = 0;
  uint64_t n_tensors = 0;
  uint64_t n_kv = 0;
};

// Reads and checks magic, version and the two counts.
Header read_header(Cursor& cur);

// Reads `n_kv` entries: u64 key length | key | u32 value type | value. Rejects bad or
// duplicate keys; fills `kvs` in file order and `index` (key -> position in kvs).
void read_metadata(Cursor& cur, uint64_t n_kv, std::vector<KeyValue>* kvs,
                   std::unordered_map<std::string, size_t>* index);

// One value of on-disk type `type_code` (already read); `depth` counts enclosing arrays.
Value read_value(Cursor& cur, uint32_t type_code, int depth);

// The alignment from metadata (validated), or kDefaultAlignment when the key is absent.
uint64_t read_alignment(const std::vector<KeyValue>& kvs,
                        const std::unordered_map<std::string, size_t>& index);

// Reads `n_tensors` tensor infos: u64 name length | name | u32 n_dims | i64 ne[n_dims] |
// u32 type | u64 offset. Checks geometry, types, offset alignment and duplicate names.
void read_tensor_infos(Cursor& cur, uint64_t n_tensors, uint64_t alignment,
                       std::vector<TensorInfo>* tensors,
                       std::unordered_map<std::string, size_t>* index);

// Checks that each tensor's bytes lie inside the file and that no two ranges overlap.
void check_tensor_ranges(const std::vector<TensorInfo>& tensors, uint64_t data_offset,
                         uint64_t file_size);

}  // namespace quanta::gguf
