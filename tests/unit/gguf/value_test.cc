// GGUF values and typed lookups: sign extension, range checks, type errors that name the
// key, absent keys.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "testlib/expect_error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"

namespace quanta::gguf {
namespace {

using testlib::expect_error;

TEST(GgufValue, TypeNamesAndSizes) {
  EXPECT_STREQ(value_type_name(ValueType::kUint32), "uint32");
  EXPECT_STREQ(value_type_name(ValueType::kFloat64), "float64");
  EXPECT_STREQ(value_type_name(static_cast<ValueType>(99)), "unknown");
  EXPECT_EQ(scalar_size(ValueType::kInt16), 2u);
  EXPECT_EQ(scalar_size(ValueType::kBool), 1u);
  EXPECT_EQ(scalar_size(ValueType::kString), 0u);
  EXPECT_TRUE(is_integer_type(ValueType::kUint64));
  EXPECT_FALSE(is_integer_type(ValueType::kBool));
  EXPECT_TRUE(is_float_type(ValueType::kFloat32));
  EXPECT_FALSE(is_float_type(ValueType::kInt32));
  EXPECT_TRUE(is_known_value_type(12));
  EXPECT_FALSE(is_known_value_type(13));
}

TEST(GgufValue, IntegersSignExtendAndCheckRange) {
  EXPECT_EQ(Value::i8(-5).as_int(), -5);
  EXPECT_EQ(Value::i16(-300).as_int(), -300);
  EXPECT_EQ(Value::i32(std::numeric_limits<int32_t>::min()).as_int(),
            std::numeric_limits<int32_t>::min());
  EXPECT_EQ(Value::u8(250).as_int(), 250);
  EXPECT_EQ(Value::u32(0xffffffffu).as_int(), 0xffffffffll);
  EXPECT_EQ(Value::u64(~uint64_t{0}).as_uint(), ~uint64_t{0});
  expect_error([] { Value::u64(~uint64_t{0}).as_int(); }, "does not fit in int64");
  expect_error([] { Value::i8(-1).as_uint(); }, "int8 value -1 is negative");
  EXPECT_EQ(Value::i64(-7).as_float(), -7.0);
  EXPECT_EQ(Value::f32(0.25f).as_float(), 0.25);
  EXPECT_EQ(Value::f64(1e300).as_float(), 1e300);
  expect_error([] { Value::f32(1.0f).as_int(); }, "expected an integer, found float32");
  expect_error([] { Value::string("x").as_float(); }, "expected a number, found string");
  expect_error([] { Value::u8(1).as_bool(); }, "expected a bool, found uint8");
  expect_error([] { Value::boolean(true).as_string(); }, "expected a string, found bool");
  expect_error([] { Value::string("s").as_array(); }, "expected an array, found string");
}

TEST(GgufValue, ArrayAccessors) {
  const Value ints = Value::i32_array({-1, 2, 3});
  EXPECT_EQ(ints.as_array().size(), 3u);
  EXPECT_EQ(ints.as_array().int_at(0), -1);
  EXPECT_EQ(ints.as_array().float_at(2), 3.0);
  expect_error([&] { ints.as_array().int_at(3); }, "array index 3 out of range (size 3)");
  expect_error([&] { ints.as_array().string_at(0); }, "expected a string, found int32");
  const Value floats = Value::f32_array({0.5f, -2.0f});
  EXPECT_EQ(floats.as_array().float_at(1), -2.0);
  expect_error([&] { floats.as_array().int_at(0); }, "expected an integer, found float32");
  const Value strings = Value::string_array({"a", "bc"});
  EXPECT_EQ(strings.as_array().string_at(1), "bc");
  expect_error([&] { strings.as_array().float_at(0); }, "expected a number, found string");
}

TEST(GgufValue, EqualityIsExact) {
  EXPECT_EQ(Value::f32(NAN), Value::f32(NAN));  // same bits
  EXPECT_FALSE(Value::f32(0.0f) == Value::f32(-0.0f));
  EXPECT_FALSE(Value::u32(1) == Value::i32(1));  // type matters
  EXPECT_EQ(Value::string_array({"x"}), Value::string_array({"x"}));
  EXPECT_FALSE(Value::i32_array({1, 2}) == Value::i32_array({1, 3}));
}

File getter_file() {
  Writer w;
  w.set("k.int", Value::i16(-12));
  w.set("k.big", Value::u64(~uint64_t{0}));
  w.set("k.float", Value::f32(1.5f));
  w.set("k.bool", Value::boolean(true));
  w.set("k.str", Value::string("text"));
  w.set("k.arr", Value::i32_array({4, 5}));
  return File::from_bytes(w.to_bytes());
}

TEST(GgufGetters, PresentAbsentAndWrongType) {
  const File f = getter_file();
  EXPECT_EQ(f.get_int("k.int"), -12);
  EXPECT_EQ(f.get_float("k.float"), 1.5);
  EXPECT_EQ(f.get_float("k.int"), -12.0);  // integers widen to float
  EXPECT_EQ(f.get_bool("k.bool"), true);
  EXPECT_EQ(f.get_string("k.str"), "text");
  ASSERT_NE(f.get_array("k.arr"), nullptr);
  EXPECT_EQ(f.get_array("k.arr")->int_at(1), 5);
  EXPECT_EQ(f.find("k.str")->type, ValueType::kString);

  EXPECT_EQ(f.get_int("absent"), std::nullopt);
  EXPECT_EQ(f.get_float("absent"), std::nullopt);
  EXPECT_EQ(f.get_bool("absent"), std::nullopt);
  EXPECT_EQ(f.get_string("absent"), std::nullopt);
  EXPECT_EQ(f.get_array("absent"), nullptr);
  EXPECT_EQ(f.find("absent"), nullptr);

  expect_error([&] { f.get_int("k.str"); },
               "metadata key 'k.str': expected an integer, found string");
  expect_error([&] { f.get_int("k.big"); },
               "metadata key 'k.big': uint64 value 18446744073709551615");
  expect_error([&] { f.get_float("k.bool"); },
               "metadata key 'k.bool': expected a number, found bool");
  expect_error([&] { f.get_bool("k.int"); }, "metadata key 'k.int': expected a bool, found int16");
  expect_error([&] { f.get_string("k.arr"); },
               "metadata key 'k.arr': expected a string, found array");
  expect_error([&] { f.get_array("k.float"); },
               "metadata key 'k.float': expected an array, found float32");
}

TEST(GgufGetters, TensorLookupAndMove) {
  Writer w;
  const float data[4] = {1, 2, 3, 4};
  w.add_tensor("w", GgmlType::F32, {2, 2}, data, sizeof data);
  File a = File::from_bytes(w.to_bytes(), "mem");
  File b = std::move(a);  // the image moves with the file
  const TensorInfo* t = b.find_tensor("w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(b.find_tensor("v"), nullptr);
  EXPECT_EQ(t->n_elements(), 4);
  EXPECT_EQ(t->n_rows(), 2);
  EXPECT_EQ(std::memcmp(b.tensor_data(*t), data, sizeof data), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.tensor_data(*t)) % 32, 0u);
  EXPECT_EQ(b.path(), "mem");
}

}  // namespace
}  // namespace quanta::gguf
