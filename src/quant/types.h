// Tensor element types, with GGML/GGUF enum values kept verbatim, and the one type-traits
// table indexed by them: block geometry plus the scalar reference kernels (the oracle).
#pragma once

#include <cstddef>
#include <cstdint>

namespace quanta {

// NOTE: values are the on-disk GGUF `ggml_type` codes; never renumber. Gaps (4, 5, 31..33)
// are types ggml removed; they are rejected as unknown.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
};

inline constexpr uint32_t kGgmlTypeCount = 36;  // one past the largest known code

// x: a row of `n` values in this type; y: a row of `n` values in `vec_dot_type`.
using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
using FromFloatFn = void (*)(const float* src, void* dst, int64_t n);
using VecDotFn = float (*)(int64_t n, const void* x, const void* y);

struct TypeTraits {
  const char* name = nullptr;  // lower-case ggml name ("q4_K"); null for unknown codes
  int64_t block_size = 0;      // values per block (1 for plain types)
  size_t type_size = 0;        // bytes per block
  bool is_quantized = false;
  // Scalar reference kernels; null where quanta has no kernels for the type.
  ToFloatFn to_float = nullptr;      // dequantize
  FromFloatFn from_float = nullptr;  // quantize (round to nearest, ggml's *_ref rounding)
  // dot(x in this type, y in vec_dot_type) with ggml's generic CPU math: integer block sums
  // scaled and accumulated in F32 (F32/F16/BF16: F32 products summed in double, as ggml).
  VecDotFn vec_dot = nullptr;
  GgmlType vec_dot_type = GgmlType::F32;
};

// Traits for a code; a default (name == nullptr) entry for unknown codes.
const TypeTraits& type_traits(GgmlType type);
// True when `code` names a type ggml defines (known geometry).
bool is_known_type(uint32_t code);
// True when quanta can compute with the type (dequantize, quantize and dot product).
bool is_supported_type(GgmlType type);
const char* type_name(GgmlType type);  // "unknown" for unknown codes
// Bytes of a row of `n` values; n must be a multiple of the block size.
size_t row_size(GgmlType type, int64_t n);

// Convenience wrappers over the table's kernels. They throw quanta::Error when the type has
// no such kernel or `n` is not a multiple of its block size.
// Quantize `n` floats into row_size(type, n) bytes at `dst` (round to nearest).
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);
// Dequantize `n` values of `type` at `src` into `dst`.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

}  // namespace quanta
