// ggml quantization block structs, byte-identical with ggml-common.h: the on-disk (GGUF) and
// in-memory layout of every block type quanta reads or writes. F16 scales are raw IEEE-half
// bits (convert with core/fp16.h); all multi-byte fields are little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

namespace quanta {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK_K = 256;       // values per K-quant super-block
inline constexpr int kKScaleSize = 12;  // packed 6-bit scales+mins of Q4_K/Q5_K

// Q4_0: value = d * (q - 8), q in [0, 15].
// bytes [0,2) d (f16) | [2,18) qs: byte j holds value j (low nibble) and j+16 (high nibble).
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "block_q4_0 size");

// Q4_1: value = d * q + m, q in [0, 15].
// [0,2) d (f16) | [2,4) m (f16) | [4,20) qs (nibbles as Q4_0).
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "block_q4_1 size");

// Q5_0: value = d * (q - 16), q in [0, 31]; low 4 bits in qs, bit 4 of value j in qh bit j.
// [0,2) d (f16) | [2,6) qh (u32 LE, unaligned) | [6,22) qs (nibbles as Q4_0).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22, "block_q5_0 size");

// Q5_1: value = d * q + m, q in [0, 31].
// [0,2) d (f16) | [2,4) m (f16) | [4,8) qh (u32 LE) | [8,24) qs.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24, "block_q5_1 size");

// Q8_0: value = d * q, q in [-127, 127].
// [0,2) d (f16) | [2,34) qs (int8, value order).
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34, "block_q8_0 size");

// Q8_1 (activations for Q4_1/Q5_1 dots): value = d * q; s = d * sum(q) (f16).
// [0,2) d (f16) | [2,4) s (f16) | [4,36) qs (int8).
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK8_1];
};
static_assert(sizeof(BlockQ8_1) == 36, "block_q8_1 size");

// Q2_K (geometry only; no kernels yet): 16 sub-blocks of 16, 2-bit quants, 4-bit scale|min.
// [0,16) scales (low nibble scale, high nibble min) | [16,80) qs | [80,82) d | [82,84) dmin.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84, "block_q2_K size");

// Q3_K (geometry only): 16 sub-blocks of 16, 3-bit quants (2 low bits in qs, high bit in
// hmask), 6-bit signed scales packed in 12 bytes.
// [0,32) hmask | [32,96) qs | [96,108) scales | [108,110) d.
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110, "block_q3_K size");

// Q4_K: 8 sub-blocks of 32; value = d*sc[j]*q - dmin*m[j], q in [0,15], sc/m 6-bit.
// [0,2) d (f16) | [2,4) dmin (f16) | [4,16) scales: bytes 0-3 sc[0..3] low 6 bits (top 2 bits
// = sc[4..7] bits 4-5), bytes 4-7 m[0..3] (top 2 bits = m[4..7] bits 4-5), bytes 8-11
// sc[4..7] low nibble | m[4..7] low nibble << 4 | [16,144) qs: 4 chunks of 32 bytes, chunk c
// holds values 64c+l (low nibble) and 64c+32+l (high nibble).
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 2 * 2 + kKScaleSize + kQK_K / 2, "block_q4_K size");
static_assert(sizeof(BlockQ4_K) == 144, "block_q4_K size");

// Q5_K: as Q4_K with a fifth bit: q in [0,31]; bit 4 of value 64c+l in qh[l] bit 2c, of value
// 64c+32+l in qh[l] bit 2c+1.
// [0,2) d | [2,4) dmin | [4,16) scales (as Q4_K) | [16,48) qh | [48,176) qs (as Q4_K).
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 2 * 2 + kKScaleSize + kQK_K / 8 + kQK_K / 2, "q5_K size");
static_assert(sizeof(BlockQ5_K) == 176, "block_q5_K size");

// Q6_K: 16 sub-blocks of 16; value = d * scales[j] * (q - 32), q in [0,63], scales int8.
// Per half (128 values, h = 0/1): ql[64h + l] = q(128h+l) low4 | q(128h+64+l) low4 << 4,
// ql[64h+32+l] = q(128h+32+l) low4 | q(128h+96+l) low4 << 4, qh[32h + l] = high 2 bits of
// q(128h+l), q(+32), q(+64), q(+96) at bit pairs 0,2,4,6.
// [0,128) ql | [128,192) qh | [192,208) scales (int8) | [208,210) d (f16).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == kQK_K / 2 + kQK_K / 4 + kQK_K / 16 + 2, "block_q6_K size");
static_assert(sizeof(BlockQ6_K) == 210, "block_q6_K size");

// Q8_K (activations for K-quant dots): value = d * q, d is a full f32; bsums[j] = sum of
// qs[16j .. 16j+15] (used to apply the K-quant mins without touching the quants).
// [0,4) d (f32) | [4,260) qs (int8) | [260,292) bsums (int16).
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 4 + kQK_K + kQK_K / 16 * 2, "block_q8_K size");
static_assert(sizeof(BlockQ8_K) == 292, "block_q8_K size");

static_assert(offsetof(BlockQ4_K, qs) == 16 && offsetof(BlockQ5_K, qs) == 48, "K layout");
static_assert(offsetof(BlockQ6_K, d) == 208 && offsetof(BlockQ8_K, bsums) == 260, "K layout");

}  // namespace quanta
