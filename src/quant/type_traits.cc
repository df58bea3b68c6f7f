// The type-traits table: geometry and names of every ggml type (as ggml.c's type_traits),
// plus the scalar reference kernels and ggml CPU vec_dot types of the types quanta supports.
#include <array>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/ref_kernels.h"
#include "quant/types.h"

namespace quanta {
namespace {

using Table = std::array<TypeTraits, kGgmlTypeCount>;

void set_geometry(Table& t, GgmlType type, const char* name, int64_t block_size, size_t type_size,
                  bool is_quantized) {
  TypeTraits& e = t[static_cast<uint32_t>(type)];
  e.name = name;
  e.block_size = block_size;
  e.type_size = type_size;
  e.is_quantized = is_quantized;
}

void set_kernels(Table& t, GgmlType type, ToFloatFn to_float, FromFloatFn from_float,
                 VecDotFn vec_dot, GgmlType vec_dot_type) {
  TypeTraits& e = t[static_cast<uint32_t>(type)];
  e.to_float = to_float;
  e.from_float = from_float;
  e.vec_dot = vec_dot;
  e.vec_dot_type = vec_dot_type;
}

// Geometry verified against ggml.c's type_traits (block size, bytes per block).
void fill_geometry(Table& t) {
  using T = GgmlType;
  set_geometry(t, T::F32, "f32", 1, 4, false);
  set_geometry(t, T::F16, "f16", 1, 2, false);
  set_geometry(t, T::Q4_0, "q4_0", kQK4_0, sizeof(BlockQ4_0), true);
  set_geometry(t, T::Q4_1, "q4_1", kQK4_1, sizeof(BlockQ4_1), true);
  set_geometry(t, T::Q5_0, "q5_0", kQK5_0, sizeof(BlockQ5_0), true);
  set_geometry(t, T::Q5_1, "q5_1", kQK5_1, sizeof(BlockQ5_1), true);
  set_geometry(t, T::Q8_0, "q8_0", kQK8_0, sizeof(BlockQ8_0), true);
  set_geometry(t, T::Q8_1, "q8_1", kQK8_1, sizeof(BlockQ8_1), true);
  set_geometry(t, T::Q2_K, "q2_K", kQK_K, sizeof(BlockQ2_K), true);
  set_geometry(t, T::Q3_K, "q3_K", kQK_K, sizeof(BlockQ3_K), true);
  set_geometry(t, T::Q4_K, "q4_K", kQK_K, sizeof(BlockQ4_K), true);
  set_geometry(t, T::Q5_K, "q5_K", kQK_K, sizeof(BlockQ5_K), true);
  set_geometry(t, T::Q6_K, "q6_K", kQK_K, sizeof(BlockQ6_K), true);
  set_geometry(t, T::Q8_K, "q8_K", kQK_K, sizeof(BlockQ8_K), true);
  // IQ / TQ types: geometry only. Bytes: d (2) + payload, per ggml-common.h.
  set_geometry(t, T::IQ2_XXS, "iq2_xxs", kQK_K, 2 + 64, true);           // qs u16[32]
  set_geometry(t, T::IQ2_XS, "iq2_xs", kQK_K, 2 + 64 + 8, true);         // qs, scales[8]
  set_geometry(t, T::IQ3_XXS, "iq3_xxs", kQK_K, 2 + 96, true);           // qs[3*QK_K/8]
  set_geometry(t, T::IQ1_S, "iq1_s", kQK_K, 2 + 32 + 16, true);          // qs[32], qh u16[8]
  set_geometry(t, T::IQ4_NL, "iq4_nl", 32, 2 + 16, true);                // qs[16]
  set_geometry(t, T::IQ3_S, "iq3_s", kQK_K, 2 + 64 + 8 + 32 + 4, true);  // qs qh signs scales
  set_geometry(t, T::IQ2_S, "iq2_s", kQK_K, 2 + 64 + 8 + 8, true);       // qs[64] qh[8] sc[8]
  set_geometry(t, T::IQ4_XS, "iq4_xs", kQK_K, 2 + 2 + 4 + 128, true);    // scales_h/l, qs
  set_geometry(t, T::I8, "i8", 1, 1, false);
  set_geometry(t, T::I16, "i16", 1, 2, false);
  set_geometry(t, T::I32, "i32", 1, 4, false);
  set_geometry(t, T::I64, "i64", 1, 8, false);
  set_geometry(t, T::F64, "f64", 1, 8, false);
  set_geometry(t, T::IQ1_M, "iq1_m", kQK_K, 32 + 16 + 8, true);  // qs, qh, scales (no d)
  set_geometry(t, T::BF16, "bf16", 1, 2, false);
  set_geometry(t, T::TQ1_0, "tq1_0", kQK_K, 48 + 4 + 2, true);  // qs[48] qh[4] d
  set_geometry(t, T::TQ2_0, "tq2_0", kQK_K, 64 + 2, true);      // qs[64] d
}

// vec_dot_type as ggml's CPU backend (ggml-cpu.c type_traits_cpu).
void fill_kernels(Table& t) {
  using T = GgmlType;
  namespace r = ref;
  set_kernels(t, T::F32, r::to_float_f32, r::from_float_f32, r::vec_dot_f32, T::F32);
  set_kernels(t, T::F16, r::to_float_f16, r::from_float_f16, r::vec_dot_f16, T::F16);
  set_kernels(t, T::BF16, r::to_float_bf16, r::from_float_bf16, r::vec_dot_bf16, T::BF16);
  set_kernels(t, T::Q4_0, r::to_float_q4_0, r::from_float_q4_0, r::vec_dot_q4_0_q8_0, T::Q8_0);
  set_kernels(t, T::Q4_1, r::to_float_q4_1, r::from_float_q4_1, r::vec_dot_q4_1_q8_1, T::Q8_1);
  set_kernels(t, T::Q5_0, r::to_float_q5_0, r::from_float_q5_0, r::vec_dot_q5_0_q8_0, T::Q8_0);
  set_kernels(t, T::Q5_1, r::to_float_q5_1, r::from_float_q5_1, r::vec_dot_q5_1_q8_1, T::Q8_1);
  set_kernels(t, T::Q8_0, r::to_float_q8_0, r::from_float_q8_0, r::vec_dot_q8_0_q8_0, T::Q8_0);
  set_kernels(t, T::Q8_1, r::to_float_q8_1, r::from_float_q8_1, nullptr, T::Q8_1);
  set_kernels(t, T::Q4_K, r::to_float_q4_K, r::from_float_q4_K, r::vec_dot_q4_K_q8_K, T::Q8_K);
  set_kernels(t, T::Q5_K, r::to_float_q5_K, r::from_float_q5_K, r::vec_dot_q5_K_q8_K, T::Q8_K);
  set_kernels(t, T::Q6_K, r::to_float_q6_K, r::from_float_q6_K, r::vec_dot_q6_K_q8_K, T::Q8_K);
  // Activation-only in ggml: Q8_1 names itself as vec_dot_type; Q8_K leaves it unset (F32).
  set_kernels(t, T::Q8_K, r::to_float_q8_K, r::from_float_q8_K, nullptr, T::F32);
  // Types without quanta kernels still report ggml's vec_dot_type.
  for (T type : {T::Q2_K, T::Q3_K, T::IQ2_XXS, T::IQ2_XS, T::IQ3_XXS, T::IQ1_S, T::IQ3_S, T::IQ2_S,
                 T::IQ4_XS, T::IQ1_M, T::TQ1_0, T::TQ2_0}) {
    t[static_cast<uint32_t>(type)].vec_dot_type = T::Q8_K;
  }
  t[static_cast<uint32_t>(T::IQ4_NL)].vec_dot_type = T::Q8_0;
}

const Table& table() {
  static const Table t = [] {
    Table result{};
    fill_geometry(result);
    fill_kernels(result);
    return result;
  }();
  return t;
}

const TypeTraits& checked_traits(GgmlType type, const char* what) {
  const TypeTraits& t = type_traits(type);
  if (t.name == nullptr) fail("%s: unknown ggml type %u", what, static_cast<uint32_t>(type));
  return t;
}

void check_row_length(const TypeTraits& t, int64_t n, const char* what) {
  if (n < 0 || n % t.block_size != 0) {
    fail("%s: row of %lld values is not a multiple of the %s block size %lld", what,
         static_cast<long long>(n), t.name, static_cast<long long>(t.block_size));
  }
}

}  // namespace

const TypeTraits& type_traits(GgmlType type) {
  static const TypeTraits kUnknown{};
  const uint32_t code = static_cast<uint32_t>(type);
  return code < kGgmlTypeCount ? table()[code] : kUnknown;
}

bool is_known_type(uint32_t code) {
  return code < kGgmlTypeCount && table()[code].name != nullptr;
}

bool is_supported_type(GgmlType type) {
  const TypeTraits& t = type_traits(type);
  // Usable as a weight type: all three kernels. Q8_1/Q8_K (activation-only) have no vec_dot.
  return t.name != nullptr && t.to_float && t.from_float && t.vec_dot;
}

const char* type_name(GgmlType type) {
  const TypeTraits& t = type_traits(type);
  return t.name ? t.name : "unknown";
}

size_t row_size(GgmlType type, int64_t n) {
  const TypeTraits& t = checked_traits(type, "row_size");
  check_row_length(t, n, "row_size");
  return static_cast<size_t>(n / t.block_size) * t.type_size;
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  const TypeTraits& t = checked_traits(type, "quantize_row");
  if (!t.from_float) fail("quantize_row: no quantizer for type %s", t.name);
  check_row_length(t, n, "quantize_row");
  t.from_float(src, dst, n);
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  const TypeTraits& t = checked_traits(type, "dequantize_row");
  if (!t.to_float) fail("dequantize_row: no dequantizer for type %s", t.name);
  check_row_length(t, n, "dequantize_row");
  t.to_float(src, dst, n);
}

}  // namespace quanta
