// Writer: exact layout of a tiny file, replacement of keys in place, and rejection of
// anything the reader would refuse.
#include "gguf/writer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "testlib/expect_error.h"
#include "gguf_test_util.h"

namespace quanta::gguf {
namespace {

using testlib::expect_error;

// The layout written by hand from the GGUF specification.
TEST(GgufWriter, ExactBytesOfATinyFile) {
  Writer w(3);
  w.set("k", Value::u16(0x1234));
  const float data[2] = {1.0f, 2.0f};
  w.add_tensor("t", GgmlType::F32, {2}, data, sizeof data);
  std::string expected;
  using test::append;
  append<uint32_t>(expected, 0x46554747);
  append<uint32_t>(expected, 3);
  append<uint64_t>(expected, 1);  // tensors
  append<uint64_t>(expected, 1);  // kvs
  test::append_string(expected, "k");
  append<uint32_t>(expected, 2);  // uint16
  append<uint16_t>(expected, 0x1234);
  test::append_string(expected, "t");
  append<uint32_t>(expected, 1);
  append<int64_t>(expected, 2);
  append<uint32_t>(expected, 0);  // F32
  append<uint64_t>(expected, 0);  // offset
  expected.resize(96, '\0');      // 79 bytes of head padded to 32
  append<float>(expected, 1.0f);
  append<float>(expected, 2.0f);
  expected.resize(128, '\0');  // the last tensor padded too
  EXPECT_EQ(w.to_bytes(), expected);
}

TEST(GgufWriter, SetReplacesInPlace) {
  Writer w;
  w.set("a", Value::u8(1));
  w.set("b", Value::u8(2));
  w.set("a", Value::string("x"));
  const File f = File::from_bytes(w.to_bytes());
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata()[0].key, "a");
  EXPECT_EQ(f.metadata()[0].value.as_string(), "x");
}

TEST(GgufWriter, RejectsWhatTheReaderWouldRefuse) {
  expect_error([] { Writer w(1); }, "unsupported version 1");
  expect_error([] { Writer w(4); }, "unsupported version 4");
  Writer w;
  expect_error([&] { w.set("", Value::u8(0)); }, "metadata key '': empty name");
  expect_error([&] { w.set("general.alignment", Value::u32(48)); },
               "general.alignment 48 is not a nonzero power of two");
  expect_error([&] { w.set("general.alignment", Value::u64(32)); },
               "general.alignment must be uint32, found uint64");
  Value bad_bool = Value::boolean(true);
  bad_bool.bits = 2;
  expect_error([&] { w.set("b", bad_bool); }, "bool value 2 is not 0 or 1");
  Value no_array;
  no_array.type = ValueType::kArray;
  expect_error([&] { w.set("n", no_array); }, "array value without an array");
  Array ragged;
  ragged.elem_type = ValueType::kUint32;
  ragged.raw = {1, 2, 3};
  expect_error([&] { w.set("r", Value::array(ragged)); }, "not a whole number of elements");
  Array deep;
  deep.elem_type = ValueType::kUint8;
  for (int i = 0; i < 20; ++i) {
    Array outer;
    outer.elem_type = ValueType::kArray;
    outer.arrays.push_back(Value::array(deep));
    deep = outer;
  }
  expect_error([&] { w.set("deep", Value::array(deep)); }, "nested deeper than 16 levels");

  const float f[4] = {};
  expect_error([&] { w.add_tensor("t", GgmlType::F32, {4}, f, 8); },
               "tensor 't': 8 bytes given, the type and dims need 16");
  expect_error([&] { w.add_tensor("t", GgmlType::Q8_0, {4}, f, 16); },
               "not a multiple of the q8_0 block size 32");
  expect_error([&] { w.add_tensor("t", GgmlType::F32, {}, f, 0); }, "0 dimensions (must be 1..4)");
  expect_error([&] { w.add_tensor("t", GgmlType::F32, {1, 1, 1, 1, 4}, f, 16); }, "5 dimensions");
  expect_error([&] { w.add_tensor("t", static_cast<GgmlType>(4), {4}, f, 16); },
               "unknown tensor type code 4");
  expect_error([&] { w.add_tensor(std::string(256, 'x'), GgmlType::F32, {4}, f, 16); },
               "exceeds the limit of 255");
  expect_error([&] { w.add_tensor("t", GgmlType::F32, {4}, nullptr, 16); }, "no data");
  w.add_tensor("t", GgmlType::F32, {4}, f, 16);
  expect_error([&] { w.add_tensor("t", GgmlType::F32, {4}, f, 16); }, "duplicate tensor name");
}

TEST(GgufWriter, WriteFailureNamesThePath) {
  const Writer w = test::base_writer();
  expect_error([&] { w.write("/nonexistent-dir/x.gguf"); },
               "cannot write '/nonexistent-dir/x.gguf'");
}

}  // namespace
}  // namespace quanta::gguf
