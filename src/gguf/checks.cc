// Validation rules shared by the GGUF reader and writer (see checks.h).
#include "gguf/checks.h"

#include <cinttypes>

#include "core/error.h"
#include "gguf/reader.h"
#include "quant/types.h"

namespace quanta::gguf {

std::string name_problem(std::string_view name, uint64_t max_length) {
  if (name.empty()) return "empty name";
  if (name.size() > max_length) {
    return strformat("name of %zu bytes exceeds the limit of %" PRIu64, name.size(), max_length);
  }
  if (name.find('\0') != std::string_view::npos) return "name contains a NUL byte";
  return {};
}

std::string alignment_problem(const Value& value) {
  if (value.type != ValueType::kUint32) {
    return strformat("%s must be uint32, found %s", kAlignmentKey, value_type_name(value.type));
  }
  const uint64_t a = value.bits;
  if (a == 0 || (a & (a - 1)) != 0) {
    return strformat("%s %" PRIu64 " is not a nonzero power of two", kAlignmentKey, a);
  }
  return {};
}

static bool is_removed_type(uint32_t code) {
  return code == 4 || code == 5 || (code >= 31 && code <= 33);
}

// Dims positive, element count within int64.
static std::string dims_problem(const std::vector<int64_t>& ne) {
  if (ne.empty() || ne.size() > static_cast<size_t>(kMaxDims)) {
    return strformat("%zu dimensions (must be 1..%d)", ne.size(), kMaxDims);
  }
  int64_t count = 1;
  for (size_t i = 0; i < ne.size(); ++i) {
    if (ne[i] <= 0) return strformat("dimension ne[%zu] = %" PRId64 " is not positive", i, ne[i]);
    if (__builtin_mul_overflow(count, ne[i], &count)) {
      return strformat("element count overflows int64 (ne[%zu] = %" PRId64 ")", i, ne[i]);
    }
  }
  return {};
}

std::string tensor_problem(uint32_t type_code, const std::vector<int64_t>& ne, uint64_t* n_bytes) {
  std::string problem = dims_problem(ne);
  if (!problem.empty()) return problem;
  if (!is_known_type(type_code)) {
    return strformat("unknown tensor type code %u%s", type_code,
                     is_removed_type(type_code) ? " (a type removed from ggml)" : "");
  }
  const GgmlType type = static_cast<GgmlType>(type_code);
  const TypeTraits& traits = type_traits(type);
  if (ne[0] % traits.block_size != 0) {
    return strformat("row length ne[0] = %" PRId64
                     " is not a multiple of the %s block size %" PRId64,
                     ne[0], traits.name, traits.block_size);
  }
  uint64_t bytes = static_cast<uint64_t>(ne[0] / traits.block_size);
  bool overflow = __builtin_mul_overflow(bytes, static_cast<uint64_t>(traits.type_size), &bytes);
  for (size_t i = 1; i < ne.size() && !overflow; ++i) {
    overflow = __builtin_mul_overflow(bytes, static_cast<uint64_t>(ne[i]), &bytes);
  }
  if (overflow) return "byte size overflows uint64";
  *n_bytes = bytes;
  return {};
}

static std::string array_problem(const Array& a, int depth) {
  const uint32_t code = static_cast<uint32_t>(a.elem_type);
  if (!is_known_value_type(code)) return strformat("unknown array element type %u", code);
  if (a.elem_type == ValueType::kArray) {
    if (depth + 1 >= kMaxArrayDepth) {
      return strformat("arrays nested deeper than %d levels", kMaxArrayDepth);
    }
    for (const Value& v : a.arrays) {
      if (v.type != ValueType::kArray) return "array of arrays holds a non-array element";
      std::string problem = value_problem(v, depth + 1);
      if (!problem.empty()) return problem;
    }
    return {};
  }
  if (a.elem_type == ValueType::kString) return {};
  if (a.raw.size() % scalar_size(a.elem_type) != 0) {
    return strformat("%s array storage of %zu bytes is not a whole number of elements",
                     value_type_name(a.elem_type), a.raw.size());
  }
  if (a.elem_type == ValueType::kBool) {
    for (uint8_t b : a.raw) {
      if (b > 1) return strformat("bool array element %u is not 0 or 1", b);
    }
  }
  return {};
}

std::string value_problem(const Value& value, int depth) {
  const uint32_t code = static_cast<uint32_t>(value.type);
  if (!is_known_value_type(code)) return strformat("unknown value type %u", code);
  if (value.type == ValueType::kArray) {
    if (!value.arr) return "array value without an array";
    return array_problem(*value.arr, depth);
  }
  if (value.type == ValueType::kBool && value.bits > 1) {
    return strformat("bool value %" PRIu64 " is not 0 or 1", value.bits);
  }
  const size_t size = scalar_size(value.type);
  if (size != 0 && size < 8 && (value.bits >> (8 * size)) != 0) {
    return strformat("%s value has bits beyond its width", value_type_name(value.type));
  }
  return {};
}

}  // namespace quanta::gguf
