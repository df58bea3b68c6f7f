// Internal to src/gguf: the validation rules shared by the reader and the writer, so that
// the writer never produces a file the reader rejects. Each returns an empty string when the
// input is valid, else the problem in words (the caller adds the context).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/value.h"

namespace quanta::gguf {

inline constexpr uint64_t kMaxKeyLength = 65535;       // metadata keys, bytes
inline constexpr uint64_t kMaxTensorNameLength = 255;  // tensor names, bytes
inline constexpr int kMaxArrayDepth = 16;              // nesting levels of arrays in arrays
inline constexpr const char* kAlignmentKey = "general.alignment";

// Smallest on-disk sizes, used to reject counts that cannot fit before allocating.
inline constexpr uint64_t kMinKeyValueBytes = 8 + 1 + 4 + 1;            // key len, key, type, u8
inline constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // 1-dim tensor info

// A key or tensor name: non-empty, at most `max_length` bytes, no NUL bytes.
std::string name_problem(std::string_view name, uint64_t max_length);

// general.alignment: a uint32 that is a nonzero power of two.
std::string alignment_problem(const Value& value);

// Tensor geometry: 1..kMaxDims positive dims whose product fits in int64, a known type code,
// ne[0] a multiple of the type's block size, and a byte size that fits in uint64. On success
// stores the byte size in *n_bytes.
std::string tensor_problem(uint32_t type_code, const std::vector<int64_t>& ne, uint64_t* n_bytes);

// A value the writer can encode and the reader will accept back: known types, non-null
// arrays with consistent storage, bools 0/1, nesting at most kMaxArrayDepth.
std::string value_problem(const Value& value, int depth = 0);

// Rounds `x` up to a multiple of the power of two `alignment`.
inline uint64_t align_up(uint64_t x, uint64_t alignment) {
  return (x + alignment - 1) & ~(alignment - 1);
}

}  // namespace quanta::gguf
