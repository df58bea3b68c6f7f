// Block steps shared by the round-to-nearest (ref_*.cc) and the importance-weighted
// (weighted*.cc) quantizers, which differ only in how they choose the scales: level packing of
// the legacy 32-value blocks and of the K-quants, storing Q4_K/Q5_K scales and requantizing.
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace quanta::ref::detail {

// Legacy blocks (Q4_0, Q4_1, Q5_0, Q5_1): low nibbles of levels L [32] into qs [16], value j
// in the low and value j + 16 in the high nibble of byte j.
void pack_nibbles(const uint8_t* L, uint8_t* qs);

// Q5_0/Q5_1: bit 4 of each level L [32] into qh [4], a little-endian u32 (value j -> bit j).
void pack_high_bits(const uint8_t* L, uint8_t* qh);

// Stores d and dmin (f16) and the 6-bit sub-block scales ls [8] and mins lm [8] of a Q4_K or
// Q5_K super-block (Block), then requantizes x [256] with the stored, rounded scales:
// L[i] = clamp(round((x + dmin*m) / (d*sc)), 0, nmax). A sub-block whose stored d*sc is 0
// keeps the levels already in L, as ggml does.
template <typename Block>
void store_scale_min_block(const float* x, int nmax, const uint8_t* ls, const uint8_t* lm, float d,
                           float dmin, Block* y, uint8_t* L);

// Q4_K quants: levels L [256] in [0, 15] into qs [128] (layout in blocks.h).
void pack_q4_K_levels(const uint8_t* L, uint8_t* qs);

// Q5_K quants: levels L [256] in [0, 31] into qh [32] (bit 4) and qs [128] (low nibbles).
void pack_q5_K_levels(const uint8_t* L, uint8_t* qh, uint8_t* qs);

// One Q6_K super-block from x [256] (ggml quantize_row_q6_K_ref, or quantize_row_q6_K_impl
// when `weights` [256] is set): make_qx_quants per sub-block of 16 with those weights (null:
// x^2), 8-bit sub-block scales relative to the largest, requantization with the stored
// scales. NOTE: ggml passes the importance directly as the weights here (no sqrt(sigma2 + x^2)
// factor, unlike the other types).
void quantize_q6_K_block(const float* x, const float* weights, BlockQ6_K* y);

}  // namespace quanta::ref::detail
