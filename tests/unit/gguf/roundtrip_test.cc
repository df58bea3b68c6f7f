// Round trips: every shared GGUF file read and re-written byte for byte; a Writer-built file
// with every value type (v2 and v3) read back with identical values; write() to disk.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "gguf_test_util.h"
#include "testlib/shared_data.h"

namespace quanta::gguf {
namespace {

std::vector<std::string> shared_gguf_files() {
  std::vector<std::string> out;
  for (const char* dir : {"models", "golden/tokenizer"}) {
    for (const auto& entry : std::filesystem::directory_iterator(testlib::shared_path(dir))) {
      if (entry.path().extension() == ".gguf") out.push_back(entry.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GgufRoundTrip, SharedFilesAreReproducedByteForByte) {
  const std::vector<std::string> files = shared_gguf_files();
  EXPECT_GE(files.size(), 20u);  // 13 models + 7 vocabularies
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    const File file = File::open(path);
    EXPECT_FALSE(file.metadata().empty());
    const std::string original = testlib::read_file(path);
    ASSERT_EQ(original.size(), file.file_size());
    const std::string rewritten = Writer::from_file(file).to_bytes();
    ASSERT_EQ(rewritten.size(), original.size());
    EXPECT_TRUE(rewritten == original) << "bytes differ";
  }
}

TEST(GgufRoundTrip, SharedModelLayoutIsAsExpected) {
  const File f = File::open(testlib::shared_path("models/stories260K.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 48u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.data_offset() % f.alignment(), 0u);
  EXPECT_EQ(f.get_array("tokenizer.ggml.tokens")->size(), 512u);
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_EQ(t.type, GgmlType::F32) << t.name;
    EXPECT_EQ(t.n_bytes, static_cast<uint64_t>(t.n_elements()) * 4) << t.name;
  }
}

Array raw_array(ValueType type, const void* data, size_t n_bytes) {
  Array a;
  a.elem_type = type;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  a.raw.assign(p, p + n_bytes);
  return a;
}

// Every scalar type (with extreme values), strings, arrays of each type, nested and empty.
std::vector<KeyValue> every_value_type() {
  const float kNan = std::numeric_limits<float>::quiet_NaN();
  std::vector<KeyValue> kvs = {
      {"s.u8", Value::u8(255)},
      {"s.i8", Value::i8(-128)},
      {"s.u16", Value::u16(65535)},
      {"s.i16", Value::i16(-32768)},
      {"s.u32", Value::u32(0xfffffffeu)},
      {"s.i32", Value::i32(std::numeric_limits<int32_t>::min())},
      {"s.u64", Value::u64(~uint64_t{0})},
      {"s.i64", Value::i64(std::numeric_limits<int64_t>::min())},
      {"s.f32", Value::f32(-0.0f)},
      {"s.f32_nan", Value::f32(kNan)},
      {"s.f32_inf", Value::f32(INFINITY)},
      {"s.f64", Value::f64(6.02214076e23)},
      {"s.bool_t", Value::boolean(true)},
      {"s.bool_f", Value::boolean(false)},
      {"s.str", Value::string("h\xc3\xa9llo")},
      {"s.str_empty", Value::string("")},
      {"s.str_nul", Value::string(std::string("a\0b", 3))},
  };
  const uint8_t u8s[] = {0, 1, 255};
  const int16_t i16s[] = {-1, 2};
  const uint64_t u64s[] = {~uint64_t{0}, 0};
  const double f64s[] = {0.5, -1e-300};
  const uint8_t bools[] = {1, 0, 1};
  kvs.push_back({"a.u8", Value::array(raw_array(ValueType::kUint8, u8s, sizeof u8s))});
  kvs.push_back({"a.i8", Value::array(raw_array(ValueType::kInt8, u8s, sizeof u8s))});
  kvs.push_back({"a.u16", Value::array(raw_array(ValueType::kUint16, i16s, sizeof i16s))});
  kvs.push_back({"a.i16", Value::array(raw_array(ValueType::kInt16, i16s, sizeof i16s))});
  kvs.push_back({"a.u32", Value::array(raw_array(ValueType::kUint32, u64s, 8))});
  kvs.push_back({"a.i32", Value::i32_array({-5, 6, 7})});
  kvs.push_back({"a.u64", Value::array(raw_array(ValueType::kUint64, u64s, sizeof u64s))});
  kvs.push_back({"a.i64", Value::array(raw_array(ValueType::kInt64, u64s, sizeof u64s))});
  kvs.push_back({"a.f32", Value::f32_array({1.5f, kNan, -INFINITY})});
  kvs.push_back({"a.f64", Value::array(raw_array(ValueType::kFloat64, f64s, sizeof f64s))});
  kvs.push_back({"a.bool", Value::array(raw_array(ValueType::kBool, bools, sizeof bools))});
  kvs.push_back({"a.str", Value::string_array({"", "x", std::string(1000, 'y')})});
  for (uint32_t code = 0; code <= 12; ++code) {  // an empty array of each element type
    Array empty;
    empty.elem_type = static_cast<ValueType>(code);
    kvs.push_back({"empty." + std::string(value_type_name(empty.elem_type)), Value::array(empty)});
  }
  Array nested;  // [[1, 2], [], [["deep"]]] as arrays of arrays
  nested.elem_type = ValueType::kArray;
  nested.arrays.push_back(Value::i32_array({1, 2}));
  nested.arrays.push_back(Value::array(Array{}));
  Array inner;
  inner.elem_type = ValueType::kArray;
  inner.arrays.push_back(Value::string_array({"deep"}));
  nested.arrays.push_back(Value::array(inner));
  kvs.push_back({"a.nested", Value::array(nested)});
  return kvs;
}

void check_every_value_type(uint32_t version) {
  SCOPED_TRACE("version " + std::to_string(version));
  const std::vector<KeyValue> kvs = every_value_type();
  Writer w(version);
  for (const KeyValue& kv : kvs) w.set(kv.key, kv.value);
  const uint16_t half[64] = {0x3c00};
  w.add_tensor("h", GgmlType::F16, {64}, half, sizeof half);
  const std::string bytes = w.to_bytes();
  const File f = File::from_bytes(bytes);
  EXPECT_EQ(f.version(), version);
  ASSERT_EQ(f.metadata().size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].key, kvs[i].key);
    EXPECT_TRUE(f.metadata()[i].value == kvs[i].value) << kvs[i].key;
  }
  EXPECT_EQ(f.get_int("s.i8"), -128);
  EXPECT_EQ(f.get_int("s.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(std::isnan(*f.get_float("s.f32_nan")));
  EXPECT_EQ(f.get_string("s.str_nul")->size(), 3u);
  const Array& nested = *f.get_array("a.nested");
  EXPECT_EQ(nested.arrays[2].as_array().arrays[0].as_array().string_at(0), "deep");
  EXPECT_EQ(f.get_array("a.bool")->raw, std::vector<uint8_t>({1, 0, 1}));
  EXPECT_EQ(Writer::from_file(f).to_bytes(), bytes);
}

TEST(GgufRoundTrip, EveryValueTypeV3) {
  check_every_value_type(3);
}
TEST(GgufRoundTrip, EveryValueTypeV2) {
  check_every_value_type(2);
}

TEST(GgufRoundTrip, WriteToDiskMatchesToBytes) {
  const Writer w = test::base_writer(2);
  const std::string path = testlib::temp_dir() + "/gguf_roundtrip_v2.gguf";
  w.write(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(testlib::read_file(path), w.to_bytes());
  const File f = File::open(path);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.file_size(), w.to_bytes().size());
  const TensorInfo* b = f.find_tensor("tensor_b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, GgmlType::Q8_0);
  EXPECT_EQ(f.tensor_data(*b)[5], 15);  // base_writer fills tensor_b with 3 * i
  EXPECT_EQ(f.tensor_data(*b) - f.bytes(), static_cast<ptrdiff_t>(f.data_offset() + 64));
}

TEST(GgufRoundTrip, AlignmentIsHonoured) {
  Writer w;
  w.set("general.alignment", Value::u32(256));
  const uint8_t data[5 * 34] = {};  // Q8_0 [160]: 5 blocks
  w.add_tensor("a", GgmlType::Q8_0, {160}, data, sizeof data);
  w.add_tensor("b", GgmlType::Q8_0, {160}, data, sizeof data);
  const std::string bytes = w.to_bytes();
  const File f = File::from_bytes(bytes);
  EXPECT_EQ(f.alignment(), 256u);
  EXPECT_EQ(f.data_offset() % 256, 0u);
  EXPECT_EQ(f.tensors()[1].offset, 256u);
  EXPECT_EQ(bytes.size(), f.data_offset() + 512);
}

TEST(GgufRoundTrip, VocabOnlyFileHasNoDataSection) {
  Writer w;
  w.set("tokenizer.ggml.tokens", Value::string_array({"a", "b", "c"}));
  const std::string bytes = w.to_bytes();
  const File f = File::from_bytes(bytes);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.get_array("tokenizer.ggml.tokens")->size(), 3u);
  EXPECT_GE(f.data_offset(), f.file_size());  // no padding after the infos
  // header 24 | key 8+21 | type 4 | element type 4 | count 8 | 3 strings of 8+1: no padding.
  EXPECT_EQ(bytes.size(), 24u + 29 + 4 + 4 + 8 + 27);
}

}  // namespace
}  // namespace quanta::gguf
