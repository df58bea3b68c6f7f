// GGUF metadata values: type names and sizes, typed accessors (with sign extension from the
// stored raw bits) and constructors.
#include "gguf/value.h"

#include <cinttypes>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace quanta::gguf {

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
      return "uint8";
    case ValueType::kInt8:
      return "int8";
    case ValueType::kUint16:
      return "uint16";
    case ValueType::kInt16:
      return "int16";
    case ValueType::kUint32:
      return "uint32";
    case ValueType::kInt32:
      return "int32";
    case ValueType::kFloat32:
      return "float32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kUint64:
      return "uint64";
    case ValueType::kInt64:
      return "int64";
    case ValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool is_known_value_type(uint32_t code) {
  return code <= static_cast<uint32_t>(ValueType::kFloat64);
}

bool is_integer_type(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool is_float_type(ValueType type) {
  return type == ValueType::kFloat32 || type == ValueType::kFloat64;
}

static bool is_signed_type(ValueType type) {
  return type == ValueType::kInt8 || type == ValueType::kInt16 || type == ValueType::kInt32 ||
         type == ValueType::kInt64;
}

size_t scalar_size(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

namespace {

// Sign-extends the low `size` bytes of `bits` when `type` is signed.
int64_t extend(ValueType type, uint64_t bits) {
  const size_t size = scalar_size(type);
  if (size == 8 || !is_signed_type(type)) return static_cast<int64_t>(bits);
  const unsigned shift = static_cast<unsigned>(64 - 8 * size);
  return static_cast<int64_t>(bits << shift) >> shift;
}

// The scalar of `type` whose little-endian bytes start at `p` (the host is little-endian).
uint64_t load_bits(ValueType type, const uint8_t* p) {
  uint64_t bits = 0;
  std::memcpy(&bits, p, scalar_size(type));
  return bits;
}

double bits_to_float(ValueType type, uint64_t bits) {
  if (type == ValueType::kFloat32) {
    float f;
    const uint32_t u = static_cast<uint32_t>(bits);
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// Integer value of a scalar; rejects uint64 values above INT64_MAX.
int64_t scalar_int(ValueType type, uint64_t bits, const char* what) {
  if (!is_integer_type(type)) fail("%sexpected an integer, found %s", what, value_type_name(type));
  if (type == ValueType::kUint64 && bits > static_cast<uint64_t>(INT64_MAX)) {
    fail("%suint64 value %" PRIu64 " does not fit in int64", what, bits);
  }
  return extend(type, bits);
}

double scalar_float(ValueType type, uint64_t bits, const char* what) {
  if (is_float_type(type)) return bits_to_float(type, bits);
  if (!is_integer_type(type)) fail("%sexpected a number, found %s", what, value_type_name(type));
  if (type == ValueType::kUint64) return static_cast<double>(bits);
  return static_cast<double>(extend(type, bits));
}

}  // namespace

// ---- Array ----

size_t Array::size() const {
  if (elem_type == ValueType::kString) return strings.size();
  if (elem_type == ValueType::kArray) return arrays.size();
  const size_t n = scalar_size(elem_type);
  return n == 0 ? 0 : raw.size() / n;
}

static void check_index(const Array& a, size_t i) {
  if (i >= a.size()) fail("array index %zu out of range (size %zu)", i, a.size());
}

int64_t Array::int_at(size_t i) const {
  if (!is_integer_type(elem_type)) {
    fail("array element: expected an integer, found %s", value_type_name(elem_type));
  }
  check_index(*this, i);
  return scalar_int(elem_type, load_bits(elem_type, raw.data() + i * scalar_size(elem_type)),
                    "array element: ");
}

double Array::float_at(size_t i) const {
  if (!is_integer_type(elem_type) && !is_float_type(elem_type)) {
    fail("array element: expected a number, found %s", value_type_name(elem_type));
  }
  check_index(*this, i);
  return scalar_float(elem_type, load_bits(elem_type, raw.data() + i * scalar_size(elem_type)),
                      "array element: ");
}

const std::string& Array::string_at(size_t i) const {
  if (elem_type != ValueType::kString) {
    fail("array element: expected a string, found %s", value_type_name(elem_type));
  }
  check_index(*this, i);
  return strings[i];
}

bool operator==(const Array& a, const Array& b) {
  return a.elem_type == b.elem_type && a.raw == b.raw && a.strings == b.strings &&
         a.arrays == b.arrays;
}

// ---- Value ----

int64_t Value::as_int() const {
  return scalar_int(type, bits, "");
}

uint64_t Value::as_uint() const {
  if (!is_integer_type(type)) fail("expected an integer, found %s", value_type_name(type));
  if (type == ValueType::kUint64) return bits;
  const int64_t v = extend(type, bits);
  if (v < 0) fail("%s value %" PRId64 " is negative", value_type_name(type), v);
  return static_cast<uint64_t>(v);
}

double Value::as_float() const {
  return scalar_float(type, bits, "");
}

bool Value::as_bool() const {
  if (type != ValueType::kBool) fail("expected a bool, found %s", value_type_name(type));
  return bits != 0;
}

const std::string& Value::as_string() const {
  if (type != ValueType::kString) fail("expected a string, found %s", value_type_name(type));
  return str;
}

const Array& Value::as_array() const {
  if (type != ValueType::kArray || !arr) {
    fail("expected an array, found %s", value_type_name(type));
  }
  return *arr;
}

bool operator==(const Value& a, const Value& b) {
  if (a.type != b.type || a.bits != b.bits || a.str != b.str) return false;
  if (!a.arr || !b.arr) return a.arr == b.arr;
  return *a.arr == *b.arr;
}

static Value scalar(ValueType type, uint64_t bits) {
  Value v;
  v.type = type;
  v.bits = bits;
  return v;
}

Value Value::u8(uint8_t v) {
  return scalar(ValueType::kUint8, v);
}
Value Value::i8(int8_t v) {
  return scalar(ValueType::kInt8, static_cast<uint8_t>(v));
}
Value Value::u16(uint16_t v) {
  return scalar(ValueType::kUint16, v);
}
Value Value::i16(int16_t v) {
  return scalar(ValueType::kInt16, static_cast<uint16_t>(v));
}
Value Value::u32(uint32_t v) {
  return scalar(ValueType::kUint32, v);
}
Value Value::i32(int32_t v) {
  return scalar(ValueType::kInt32, static_cast<uint32_t>(v));
}
Value Value::u64(uint64_t v) {
  return scalar(ValueType::kUint64, v);
}
Value Value::i64(int64_t v) {
  return scalar(ValueType::kInt64, static_cast<uint64_t>(v));
}
Value Value::boolean(bool v) {
  return scalar(ValueType::kBool, v ? 1 : 0);
}

Value Value::f32(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return scalar(ValueType::kFloat32, u);
}

Value Value::f64(double v) {
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return scalar(ValueType::kFloat64, u);
}

Value Value::string(std::string v) {
  Value out;
  out.type = ValueType::kString;
  out.str = std::move(v);
  return out;
}

Value Value::string_array(std::vector<std::string> v) {
  Array a;
  a.elem_type = ValueType::kString;
  a.strings = std::move(v);
  return array(std::move(a));
}

Value Value::f32_array(const std::vector<float>& v) {
  Array a;
  a.elem_type = ValueType::kFloat32;
  a.raw.resize(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(a.raw.data(), v.data(), a.raw.size());
  return array(std::move(a));
}

Value Value::i32_array(const std::vector<int32_t>& v) {
  Array a;
  a.elem_type = ValueType::kInt32;
  a.raw.resize(v.size() * sizeof(int32_t));
  if (!v.empty()) std::memcpy(a.raw.data(), v.data(), a.raw.size());
  return array(std::move(a));
}

Value Value::array(Array a) {
  Value out;
  out.type = ValueType::kArray;
  out.arr = std::make_shared<Array>(std::move(a));
  return out;
}

}  // namespace quanta::gguf
