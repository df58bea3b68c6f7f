// The type-traits table: block struct sizes, geometry and names of every ggml type (expected
// values transcribed from ggml.c's type_traits), unknown codes, supported types, vec_dot
// types (ggml-cpu.c) and the row_size / quantize_row / dequantize_row wrappers.
#include "quant/types.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "quant/blocks.h"

namespace quanta {
namespace {

struct Expected {
  GgmlType type;
  const char* name;
  int64_t block_size;
  size_t type_size;
  bool is_quantized;
};

// From ggml.c type_traits (blck_size, type_size) and ggml_type_name spellings.
constexpr Expected kExpected[] = {
    {GgmlType::F32, "f32", 1, 4, false},
    {GgmlType::F16, "f16", 1, 2, false},
    {GgmlType::Q4_0, "q4_0", 32, 18, true},
    {GgmlType::Q4_1, "q4_1", 32, 20, true},
    {GgmlType::Q5_0, "q5_0", 32, 22, true},
    {GgmlType::Q5_1, "q5_1", 32, 24, true},
    {GgmlType::Q8_0, "q8_0", 32, 34, true},
    {GgmlType::Q8_1, "q8_1", 32, 36, true},
    {GgmlType::Q2_K, "q2_K", 256, 84, true},
    {GgmlType::Q3_K, "q3_K", 256, 110, true},
    {GgmlType::Q4_K, "q4_K", 256, 144, true},
    {GgmlType::Q5_K, "q5_K", 256, 176, true},
    {GgmlType::Q6_K, "q6_K", 256, 210, true},
    {GgmlType::Q8_K, "q8_K", 256, 292, true},
    {GgmlType::IQ2_XXS, "iq2_xxs", 256, 66, true},
    {GgmlType::IQ2_XS, "iq2_xs", 256, 74, true},
    {GgmlType::IQ3_XXS, "iq3_xxs", 256, 98, true},
    {GgmlType::IQ1_S, "iq1_s", 256, 50, true},
    {GgmlType::IQ4_NL, "iq4_nl", 32, 18, true},
    {GgmlType::IQ3_S, "iq3_s", 256, 110, true},
    {GgmlType::IQ2_S, "iq2_s", 256, 82, true},
    {GgmlType::IQ4_XS, "iq4_xs", 256, 136, true},
    {GgmlType::I8, "i8", 1, 1, false},
    {GgmlType::I16, "i16", 1, 2, false},
    {GgmlType::I32, "i32", 1, 4, false},
    {GgmlType::I64, "i64", 1, 8, false},
    {GgmlType::F64, "f64", 1, 8, false},
    {GgmlType::IQ1_M, "iq1_m", 256, 56, true},
    {GgmlType::BF16, "bf16", 1, 2, false},
    {GgmlType::TQ1_0, "tq1_0", 256, 54, true},
    {GgmlType::TQ2_0, "tq2_0", 256, 66, true},
};

TEST(Blocks, SizesMatchGgml) {
  EXPECT_EQ(sizeof(BlockQ4_0), 18u);
  EXPECT_EQ(sizeof(BlockQ4_1), 20u);
  EXPECT_EQ(sizeof(BlockQ5_0), 22u);
  EXPECT_EQ(sizeof(BlockQ5_1), 24u);
  EXPECT_EQ(sizeof(BlockQ8_0), 34u);
  EXPECT_EQ(sizeof(BlockQ8_1), 36u);
  EXPECT_EQ(sizeof(BlockQ2_K), 84u);
  EXPECT_EQ(sizeof(BlockQ3_K), 110u);
  EXPECT_EQ(sizeof(BlockQ4_K), 144u);
  EXPECT_EQ(sizeof(BlockQ5_K), 176u);
  EXPECT_EQ(sizeof(BlockQ6_K), 210u);
  EXPECT_EQ(sizeof(BlockQ8_K), 292u);
}

TEST(Blocks, FieldOffsetsMatchGgml) {
  EXPECT_EQ(offsetof(BlockQ4_1, m), 2u);
  EXPECT_EQ(offsetof(BlockQ5_0, qh), 2u);
  EXPECT_EQ(offsetof(BlockQ5_0, qs), 6u);
  EXPECT_EQ(offsetof(BlockQ5_1, qh), 4u);
  EXPECT_EQ(offsetof(BlockQ5_1, qs), 8u);
  EXPECT_EQ(offsetof(BlockQ8_1, s), 2u);
  EXPECT_EQ(offsetof(BlockQ8_1, qs), 4u);
  EXPECT_EQ(offsetof(BlockQ4_K, dmin), 2u);
  EXPECT_EQ(offsetof(BlockQ4_K, scales), 4u);
  EXPECT_EQ(offsetof(BlockQ5_K, qh), 16u);
  EXPECT_EQ(offsetof(BlockQ6_K, qh), 128u);
  EXPECT_EQ(offsetof(BlockQ6_K, scales), 192u);
  EXPECT_EQ(offsetof(BlockQ8_K, qs), 4u);
  EXPECT_EQ(offsetof(BlockQ2_K, d), 80u);
  EXPECT_EQ(offsetof(BlockQ3_K, d), 108u);
}

TEST(TypeTraits, GeometryOfEveryKnownCode) {
  int known = 0;
  for (const Expected& e : kExpected) {
    const uint32_t code = static_cast<uint32_t>(e.type);
    SCOPED_TRACE(e.name);
    EXPECT_TRUE(is_known_type(code));
    const TypeTraits& t = type_traits(e.type);
    ASSERT_NE(t.name, nullptr);
    EXPECT_STREQ(t.name, e.name);
    EXPECT_STREQ(type_name(e.type), e.name);
    EXPECT_EQ(t.block_size, e.block_size);
    EXPECT_EQ(t.type_size, e.type_size);
    EXPECT_EQ(t.is_quantized, e.is_quantized);
    EXPECT_EQ(row_size(e.type, 4096), static_cast<size_t>(4096 / e.block_size) * e.type_size);
    ++known;
  }
  int table_known = 0;
  for (uint32_t code = 0; code < kGgmlTypeCount; ++code) table_known += is_known_type(code);
  EXPECT_EQ(known, table_known);  // the expectation list covers the whole table
}

TEST(TypeTraits, UnknownCodes) {
  for (uint32_t code : {4u, 5u, 31u, 32u, 33u, 36u, 39u, 99u, 0xffffffffu}) {
    SCOPED_TRACE(code);
    EXPECT_FALSE(is_known_type(code));
    const GgmlType type = static_cast<GgmlType>(code);
    EXPECT_EQ(type_traits(type).name, nullptr);
    EXPECT_EQ(type_traits(type).block_size, 0);
    EXPECT_STREQ(type_name(type), "unknown");
    EXPECT_FALSE(is_supported_type(type));
    EXPECT_THROW(row_size(type, 32), Error);
  }
}

TEST(TypeTraits, SupportedTypesAndVecDotTypes) {
  using T = GgmlType;
  const std::pair<T, T> supported[] = {{T::F32, T::F32},   {T::F16, T::F16},   {T::BF16, T::BF16},
                                       {T::Q4_0, T::Q8_0}, {T::Q5_0, T::Q8_0}, {T::Q8_0, T::Q8_0},
                                       {T::Q4_1, T::Q8_1}, {T::Q5_1, T::Q8_1}, {T::Q4_K, T::Q8_K},
                                       {T::Q5_K, T::Q8_K}, {T::Q6_K, T::Q8_K}};
  int n_supported = 0;
  for (const auto& [type, vdt] : supported) {
    SCOPED_TRACE(type_name(type));
    EXPECT_TRUE(is_supported_type(type));
    const TypeTraits& t = type_traits(type);
    EXPECT_EQ(t.vec_dot_type, vdt);
    EXPECT_NE(t.to_float, nullptr);
    EXPECT_NE(t.from_float, nullptr);
    EXPECT_NE(t.vec_dot, nullptr);
    // Activations must be quantizable into the vec_dot type, with matching blocks.
    EXPECT_NE(type_traits(vdt).from_float, nullptr);
    EXPECT_EQ(type_traits(vdt).block_size % t.block_size == 0 ||
                  t.block_size % type_traits(vdt).block_size == 0,
              true);
    ++n_supported;
  }
  int table_supported = 0;
  for (uint32_t code = 0; code < kGgmlTypeCount; ++code) {
    table_supported += is_supported_type(static_cast<GgmlType>(code));
  }
  EXPECT_EQ(n_supported, table_supported);
  // Activation-only types convert both ways but are not weight types.
  for (T act : {T::Q8_1, T::Q8_K}) {
    EXPECT_FALSE(is_supported_type(act));
    EXPECT_NE(type_traits(act).to_float, nullptr);
    EXPECT_NE(type_traits(act).from_float, nullptr);
    EXPECT_EQ(type_traits(act).vec_dot, nullptr);
  }
  // Known types without kernels still report ggml's CPU vec_dot type.
  EXPECT_EQ(type_traits(T::Q2_K).vec_dot_type, T::Q8_K);
  EXPECT_EQ(type_traits(T::IQ4_NL).vec_dot_type, T::Q8_0);
  EXPECT_EQ(type_traits(T::IQ4_XS).vec_dot_type, T::Q8_K);
  EXPECT_EQ(type_traits(T::Q2_K).to_float, nullptr);
}

TEST(TypeTraits, RowSizeRejectsPartialBlocks) {
  EXPECT_EQ(row_size(GgmlType::Q4_K, 512), 288u);
  EXPECT_EQ(row_size(GgmlType::Q8_0, 0), 0u);
  EXPECT_EQ(row_size(GgmlType::F16, 7), 14u);
  EXPECT_THROW(row_size(GgmlType::Q4_0, 33), Error);
  EXPECT_THROW(row_size(GgmlType::Q6_K, 128), Error);
  EXPECT_THROW(row_size(GgmlType::Q8_0, -32), Error);
}

TEST(TypeTraits, WrappersCheckTypeAndLength) {
  std::vector<float> x(256, 1.0f), y(256);
  std::vector<uint8_t> q(row_size(GgmlType::Q4_K, 256));
  quantize_row(GgmlType::Q4_K, x.data(), q.data(), 256);
  dequantize_row(GgmlType::Q4_K, q.data(), y.data(), 256);
  EXPECT_NEAR(y[17], 1.0f, 1e-2f);
  EXPECT_THROW(quantize_row(GgmlType::Q4_K, x.data(), q.data(), 100), Error);
  EXPECT_THROW(dequantize_row(GgmlType::Q8_0, q.data(), y.data(), 48), Error);
  EXPECT_THROW(quantize_row(GgmlType::Q2_K, x.data(), q.data(), 256), Error);  // no kernels
  EXPECT_THROW(dequantize_row(GgmlType::IQ2_XXS, q.data(), y.data(), 256), Error);
  EXPECT_THROW(quantize_row(static_cast<GgmlType>(4), x.data(), q.data(), 32), Error);
  try {
    row_size(GgmlType::Q4_0, 33);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q4_0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace quanta
