// The weight formats of the amx int8 tile kernels (int8_tiles.cc): how Q4_0, Q8_0 and Q4_K
// weights in their repacked layouts become int8 B tiles and per-row scale vectors, how a
// token's Q8_0 / Q8_K activations become A-tile rows and scalars, and the AVX2 kernels' float
// steps per unit of 32 values. Include only from x86_amx/*.cc.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/x86_avx2/simd.h"

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

constexpr int64_t kTile = 16;          // tokens per A / C tile, weight rows per B / C tile
constexpr size_t kTileBytes = 512;     // a unit's A tile (16 tokens x 32) or B tile (8 x 64)
constexpr int64_t kMaxSegUnits = 448;  // the longest avx2 segment (Q4_K: 56 super-blocks)
constexpr int kMaxWVecs = 3;           // row vectors per unit (Q4_K)
constexpr int kMaxTScalars = 2;        // token scalars per unit (Q4_K)

// Dwords at base + idx[n] (the masked forms throughout: GCC 12 warns on the plain ones).
inline __m512i gather(__m512i idx, const uint8_t* base) {
  return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), 0xFFFF, idx, base, 1);
}

// The F16 in each dword's low half as F32, lanes past `live` zero.
inline __m512 f16_lanes(__m512i d, __mmask16 live) {
  const __m256i h = _mm512_maskz_cvtepi32_epi16(0xFFFF, d);
  return _mm512_maskz_mov_ps(live, _mm512_maskz_cvtph_ps(0xFFFF, h));
}

// The dword-transpose of 16 rows' 32-byte vectors (row i at p + i row_bytes; rows from n on
// read as zeros): out[L] dword i = dword L of row i. Rows i and i + 8 share a zmm; 4 x 4
// transposes within its 128-bit lanes, then two chunk shuffles per output (full-mask forms:
// GCC 12 warns on the plain ones).
inline void transpose_16x8(const uint8_t* p, size_t row_bytes, int n, __m512i* out) {
  __m512i v[8];
  for (int i = 0; i < 8; ++i) {
    const __m256i lo = i < n ? loadu256(p + i * row_bytes) : _mm256_setzero_si256();
    const __m256i hi = i + 8 < n ? loadu256(p + (i + 8) * row_bytes) : _mm256_setzero_si256();
    v[i] = _mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(lo), hi, 1);
  }
  // u[4h + q], 128-bit chunk c: dword q + 4 (c % 2) of rows 4h..4h+3 (c < 2) or 8+4h.. (c >= 2).
  __m512i u[8];
  for (int h = 0; h < 2; ++h) {
    const __m512i* x = v + 4 * h;
    const __m512i t0 = _mm512_maskz_unpacklo_epi32(0xFFFF, x[0], x[1]);
    const __m512i t1 = _mm512_maskz_unpackhi_epi32(0xFFFF, x[0], x[1]);
    const __m512i t2 = _mm512_maskz_unpacklo_epi32(0xFFFF, x[2], x[3]);
    const __m512i t3 = _mm512_maskz_unpackhi_epi32(0xFFFF, x[2], x[3]);
    u[4 * h] = _mm512_maskz_unpacklo_epi64(0xFF, t0, t2);
    u[4 * h + 1] = _mm512_maskz_unpackhi_epi64(0xFF, t0, t2);
    u[4 * h + 2] = _mm512_maskz_unpacklo_epi64(0xFF, t1, t3);
    u[4 * h + 3] = _mm512_maskz_unpackhi_epi64(0xFF, t1, t3);
  }
  for (int q = 0; q < 4; ++q) {  // [rows 0-3 | 8-11 | 4-7 | 12-15], then chunks 0, 2, 1, 3
    const __m512i low = _mm512_maskz_shuffle_i32x4(0xFFFF, u[q], u[4 + q], 0x88);
    const __m512i high = _mm512_maskz_shuffle_i32x4(0xFFFF, u[q], u[4 + q], 0xDD);
    out[q] = _mm512_maskz_shuffle_i32x4(0xFFFF, low, low, 0xD8);
    out[q + 4] = _mm512_maskz_shuffle_i32x4(0xFFFF, high, high, 0xD8);
  }
}

// The B tiles of a group of 8 units whose 4 vectors hold two 4-bit levels per byte (dword L
// of vector j: values 4j..4j+3 of unit L in the low nibbles, 16+4j.. in the high ones): unit
// L's lines j and j + 4 at tiles + 512 L, minus `offset`.
inline void nibble_lines(const uint8_t* grp, size_t row_bytes, int n, uint8_t* tiles,
                         int8_t offset) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), off = _mm512_set1_epi8(offset);
  for (int j = 0; j < 4; ++j) {
    __m512i t[8];
    transpose_16x8(grp + 32 * j, row_bytes, n, t);
    for (int l = 0; l < 8; ++l) {
      uint8_t* tile = tiles + kTileBytes * l;
      _mm512_store_si512(tile + 64 * j, _mm512_sub_epi8(_mm512_and_si512(t[l], m4), off));
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(t[l], 4), m4);
      _mm512_store_si512(tile + 64 * (j + 4), _mm512_sub_epi8(hi, off));
    }
  }
}

// The weight formats. Units of 32 values (a Q4_0 / Q8_0 block, a Q4_K sub-block) in groups
// of 8 (144 / 272 / 144 bytes in the repacked layouts; unit L of a group is the AVX2 kernels'
// lane L). Each format gives:
//   kSegUnits: the AVX2 kernel's reduction segment, in units;
//   group_lines(grp, row_bytes, n, tiles): the B tiles of the group's 8 units for 16 rows
//     (rows from n on: zeros, or Q4_0's -8; their outputs are never stored): unit L's line m
//     (dword i = values 4m..4m+3 of row i, as int8) at tiles + 512 L + 64 m;
//   row_vectors(grp, l, idx, live, wv): unit l's kWVecs vectors of 16 rows' floats (`idx`: the
//     rows' byte offsets; rows past `live` zero);
//   act_quants(row, u) / token_scalars(row, u, ts): unit u of a token's activation row (its 32
//     quants; kTScalars floats);
//   step(acc, s, wv, ts, t): the AVX2 float steps of a unit for token t, s = float(sum).
struct Q4_0Tiles {
  static constexpr size_t kGroupBytes = 144;
  static constexpr int64_t kSegUnits = 408;  // avx2 Q4_0Kernel: (8192 / (10 * 2)) & ~7
  static constexpr int kWVecs = 1;           // dx
  static constexpr int kTScalars = 1;        // dy
  static void group_lines(const uint8_t* grp, size_t row_bytes, int n, uint8_t* tiles) {
    nibble_lines(grp, row_bytes, n, tiles, 8);  // the levels minus 8
  }
  static void row_vectors(const uint8_t* grp, int l, __m512i idx, __mmask16 live, float* wv) {
    _mm512_store_ps(wv, f16_lanes(gather(idx, grp + 128 + 2 * l), live));
  }
  static const uint8_t* act_quants(const uint8_t* row, int64_t u) { return row + 34 * u + 2; }
  static void token_scalars(const uint8_t* row, int64_t u, float* ts) {
    ts[0] = f16_to_f32(load_u16(row + 34 * u));
  }
  // acc = fma(s, dx * dy, acc)
  static __m512 step(__m512 acc, __m512 s, const float* wv, const float* ts, int t) {
    return _mm512_fmadd_ps(s, _mm512_mul_ps(_mm512_load_ps(wv), _mm512_set1_ps(ts[t])), acc);
  }
};
struct Q8_0Tiles : Q4_0Tiles {
  static constexpr size_t kGroupBytes = 272;
  static constexpr int64_t kSegUnits = 240;  // avx2 Q8_0Kernel: (8192 / (17 * 2)) & ~7
  static void group_lines(const uint8_t* grp, size_t row_bytes, int n, uint8_t* tiles) {
    for (int m = 0; m < 8; ++m) {
      __m512i t[8];
      transpose_16x8(grp + 32 * m, row_bytes, n, t);
      for (int l = 0; l < 8; ++l) _mm512_store_si512(tiles + kTileBytes * l + 64 * m, t[l]);
    }
  }
  static void row_vectors(const uint8_t* grp, int l, __m512i idx, __mmask16 live, float* wv) {
    _mm512_store_ps(wv, f16_lanes(gather(idx, grp + 256 + 2 * l), live));
  }
};
// Q4_K in kQ4_Kx8 against Q8_K activations (292-byte blocks: f32 yd, 256 quants, 16 int16
// bsums): a super-block is a group, its sub-blocks the units. The AVX2 steps (x86_avx2/
// q4_k_dot.cc, x86_vnni/vnni_kquant.h): acc = fnmadd(dmin * m, C, fma(float(P) * float(sc),
// d * yd, acc)), C = float(bsum pair) * yd.
struct Q4_KTiles {
  static constexpr size_t kGroupBytes = 144;
  static constexpr int64_t kSegUnits = 8 * 56;  // avx2 Q4KKernel: (8192 / (72 * 2)) & ~7 blocks
  static constexpr int kWVecs = 3;              // float(sc), dmin * m, d
  static constexpr int kTScalars = 2;           // yd, C
  static constexpr size_t kActBytes = 292;
  static void group_lines(const uint8_t* grp, size_t row_bytes, int n, uint8_t* tiles) {
    nibble_lines(grp, row_bytes, n, tiles, 0);
  }
  // kQ4_Kx8's scales (repack.h): byte 132 + L = sc | (m & 3) << 6, bits 4L.. of the u32 at
  // 140 = m >> 2, d and dmin at 128 and 130.
  static void row_vectors(const uint8_t* grp, int l, __m512i idx, __mmask16 live, float* wv) {
    const __m512i scb = gather(idx, grp + 132 + l);
    const __m512i hi =
        _mm512_maskz_srlv_epi32(0xFFFF, gather(idx, grp + 140), _mm512_set1_epi32(4 * l));
    const __m512i m = _mm512_or_si512(
        _mm512_maskz_srli_epi32(0xFFFF, _mm512_and_si512(scb, _mm512_set1_epi32(0xFF)), 6),
        _mm512_maskz_slli_epi32(0xFFFF, _mm512_and_si512(hi, _mm512_set1_epi32(15)), 2));
    const __m512i sc = _mm512_and_si512(scb, _mm512_set1_epi32(63));
    const __m512i dd = gather(idx, grp + 128);
    const __m512 dmin = f16_lanes(_mm512_maskz_srli_epi32(0xFFFF, dd, 16), live);
    _mm512_store_ps(wv, _mm512_maskz_cvtepi32_ps(live, sc));
    _mm512_store_ps(wv + kTile, _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(live, m), dmin));
    _mm512_store_ps(wv + 2 * kTile, f16_lanes(dd, live));
  }
  static const uint8_t* act_quants(const uint8_t* row, int64_t u) {
    return row + kActBytes * (u / 8) + 4 + 32 * (u % 8);
  }
  static void token_scalars(const uint8_t* row, int64_t u, float* ts) {
    const uint8_t* blk = row + kActBytes * (u / 8);
    float yd;
    std::memcpy(&yd, blk, sizeof yd);
    const uint8_t* bsums = blk + 260 + 4 * (u % 8);
    const auto b0 = static_cast<int16_t>(load_u16(bsums)),
               b1 = static_cast<int16_t>(load_u16(bsums + 2));
    ts[0] = yd;
    ts[1] = static_cast<float>(static_cast<int32_t>(b0) + b1) * yd;
  }
  static __m512 step(__m512 acc, __m512 s, const float* wv, const float* ts, int t) {
    const __m512 scaled = _mm512_mul_ps(s, _mm512_load_ps(wv));
    const __m512 dy = _mm512_mul_ps(_mm512_load_ps(wv + 2 * kTile), _mm512_set1_ps(ts[t]));
    acc = _mm512_fmadd_ps(scaled, dy, acc);
    return _mm512_fnmadd_ps(_mm512_load_ps(wv + kTile), _mm512_set1_ps(ts[kTile + t]), acc);
  }
};
static_assert(Q4_0Tiles::kSegUnits <= kMaxSegUnits && Q8_0Tiles::kSegUnits <= kMaxSegUnits &&
              Q4_KTiles::kSegUnits <= kMaxSegUnits);

}  // namespace
}  // namespace quanta::kernels::QUANTA_ISA_NS
