// GGUF metadata values: every scalar type, strings and (nested) arrays, keeping the exact
// on-disk type so that a file read and written again is byte-identical.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace quanta::gguf {

// On-disk `gguf_metadata_value_type` codes; never renumber.
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* value_type_name(ValueType type);  // "uint32", ..., "unknown"
bool is_known_value_type(uint32_t code);      // an on-disk code listed above
bool is_integer_type(ValueType type);
bool is_float_type(ValueType type);
size_t scalar_size(ValueType type);  // bytes on disk of a numeric/bool scalar; 0 otherwise

struct Value;

// Homogeneous array. Numeric/bool elements are kept packed little-endian in `raw`; strings
// in `strings`; nested arrays in `arrays`. Exactly one of them is used, by `elem_type`.
struct Array {
  ValueType elem_type = ValueType::kUint8;
  std::vector<uint8_t> raw;
  std::vector<std::string> strings;
  std::vector<Value> arrays;

  size_t size() const;
  // Element accessors; they throw quanta::Error when the element type does not fit.
  int64_t int_at(size_t i) const;   // any integer type (uint64 above INT64_MAX throws)
  double float_at(size_t i) const;  // float32/float64, or an integer type
  const std::string& string_at(size_t i) const;
};

struct Value {
  ValueType type = ValueType::kUint32;
  uint64_t bits = 0;           // scalar: the raw little-endian bits, zero-extended
  std::string str;             // kString
  std::shared_ptr<Array> arr;  // kArray (shared: values are copied cheaply). NOTE: not
                               // `array`, which names the factory below (like str/string).

  // Typed reads; throw quanta::Error when the type does not fit (message names the type).
  int64_t as_int() const;    // any integer type
  uint64_t as_uint() const;  // any integer type, negative throws
  double as_float() const;   // float32/float64 or any integer type
  bool as_bool() const;      // bool only
  const std::string& as_string() const;
  const Array& as_array() const;

  // Constructors for writers.
  static Value u8(uint8_t v);
  static Value i8(int8_t v);
  static Value u16(uint16_t v);
  static Value i16(int16_t v);
  static Value u32(uint32_t v);
  static Value i32(int32_t v);
  static Value u64(uint64_t v);
  static Value i64(int64_t v);
  static Value f32(float v);
  static Value f64(double v);
  static Value boolean(bool v);
  static Value string(std::string v);
  static Value string_array(std::vector<std::string> v);
  static Value f32_array(const std::vector<float>& v);
  static Value i32_array(const std::vector<int32_t>& v);
  static Value array(Array a);
};

// Deep, exact comparison: same types, same raw bits (so NaN payloads compare equal to
// themselves and -0.0 differs from 0.0), same strings and nested arrays.
bool operator==(const Array& a, const Array& b);
bool operator==(const Value& a, const Value& b);

struct KeyValue {
  std::string key;
  Value value;
};

}  // namespace quanta::gguf
