// The kernel-table entries of the VNNI folders (x86_avx512vnni/, x86_avxvnni/, each defining
// them in its own namespace QUANTA_ISA_NS from x86_vnni/vnni_dot.h and vnni_kquant.h). Plain
// declarations; call them only where the CPU has the folder's ISA (dispatch.cc's tables do).
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

#ifndef QUANTA_ISA_NS
#error "set QUANTA_ISA_NS (the ISA folder's namespace; src/kernels/CMakeLists.txt does)"
#endif

namespace quanta::kernels::QUANTA_ISA_NS {

// KernelTable::packed_rows for Q4_0 weights in WeightLayout::kQ4_0x8 and Q8_0 weights in
// kQ8_0x8 (the contract of KernelTable::matmul_rows), bit-identical with the AVX2 table's.
void matmul_rows_packed_q4_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);
void matmul_rows_packed_q8_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);

// KernelTable::packed_rows for Q4_K weights in WeightLayout::kQ4_Kx8 and Q6_K weights in
// kQ6_Kx8 (x86_vnni/vnni_kquant.h), bit-identical with the AVX2 table's.
void matmul_rows_packed_q4_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);
void matmul_rows_packed_q6_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace quanta::kernels::QUANTA_ISA_NS

// In the SIMDe test build: asserts once that the stand-ins of vnni_ops.h agree with
// SIMDe's vpdpbusd and vpdpwssd.
#if QUANTA_SIMDE_EMULATION
#define QUANTA_VNNI_CHECK_EMULATION()                        \
  do {                                                       \
    static const bool emulation_ok = vnni_ops_match_simde(); \
    QUANTA_ASSERT(emulation_ok);                             \
  } while (0)
// ... and also that the 512-bit stand-in agrees with SIMDe's _mm512_dpbusd_epi32.
#define QUANTA_VNNI_CHECK_EMULATION_512()                           \
  do {                                                              \
    QUANTA_VNNI_CHECK_EMULATION();                                  \
    static const bool emulation_512_ok = dpbusd512_matches_simde(); \
    QUANTA_ASSERT(emulation_512_ok);                                \
  } while (0)
// ... and also that of the 512-bit dpwssd (the Q4_K / Q6_K zmm tiles).
#define QUANTA_VNNI_CHECK_EMULATION_512_K()                           \
  do {                                                                \
    QUANTA_VNNI_CHECK_EMULATION_512();                                \
    static const bool emulation_512_k_ok = dpwssd512_matches_simde(); \
    QUANTA_ASSERT(emulation_512_k_ok);                                \
  } while (0)
#else
#define QUANTA_VNNI_CHECK_EMULATION_512_K() \
  do {                                      \
  } while (0)
#define QUANTA_VNNI_CHECK_EMULATION() \
  do {                                \
  } while (0)
#define QUANTA_VNNI_CHECK_EMULATION_512() \
  do {                                    \
  } while (0)
#endif

// Defines the Q4_0 / Q8_0 entries above in a VNNI folder's .cc (after x86_vnni/vnni_dot.h) with
// GEMM register blocks of `rows` x `tokens` int32 sums (256-bit vectors).
#define QUANTA_VNNI_DEFINE_PACKED_ROWS(rows, tokens) \
  QUANTA_VNNI_DEFINE_PACKED_ROWS_OF(rows, tokens, false, QUANTA_VNNI_CHECK_EMULATION)

// ... with GEMM tiles of `rows` (even) in zmm blocks of row pairs x up to 8 tokens (the
// avx512vnni folder; VnniKernel's pair_block), the last rows % `rows` in 1 x `tokens` ymm blocks.
#define QUANTA_VNNI_DEFINE_PACKED_ROWS_ZMM(rows, tokens) \
  QUANTA_VNNI_DEFINE_PACKED_ROWS_OF(rows, tokens, true, QUANTA_VNNI_CHECK_EMULATION_512)

// (check: the emulation's check of the intrinsics the kernel uses)
#define QUANTA_VNNI_DEFINE_PACKED_ROWS_OF(rows, tokens, zmm, check)                                \
  void matmul_rows_packed_q4_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,     \
                                 const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,       \
                                 float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) { \
    QUANTA_ASSERT(type == GgmlType::Q4_0);                                                         \
    check();                                                                                       \
    matmul_rows<VnniKernel<VnniQ4_0, rows, tokens, zmm>>(                                          \
        w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin, row_end);           \
  }                                                                                                \
  void matmul_rows_packed_q8_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,     \
                                 const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,       \
                                 float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) { \
    QUANTA_ASSERT(type == GgmlType::Q8_0);                                                         \
    check();                                                                                       \
    matmul_rows<VnniKernel<VnniQ8_0, rows, tokens, zmm>>(                                          \
        w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin, row_end);           \
  }
