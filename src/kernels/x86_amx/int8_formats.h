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

// The weight formats. Units of 32 values (a Q4_0 / Q8_0 block, a Q4_K sub-block) in groups
// of 8 (144 / 272 / 144 bytes in the repacked layouts; unit L of a group is the AVX2 kernels'
// lane L). Each format gives:
//   kSegUnits: the AVX2 kernel's reduction segment, in units;
//   lines(grp, l, idx, out): unit l's B tile for 16 rows (`idx`: the rows' byte offsets): line
//     m (dword n = values 4m..4m+3 of row n, as int8) at out + 64 m;
//   row_vectors(grp, l, idx, live, wv): unit l's kWVecs vectors of 16 rows' floats (rows past
//     `live` zero);
//   act_quants(row, u) / token_scalars(row, u, ts): unit u of a token's activation row (its 32
//     quants; kTScalars floats);
//   step(acc, s, wv, ts, t): the AVX2 float steps of a unit for token t, s = float(sum).
struct Q4_0Tiles {
  static constexpr size_t kGroupBytes = 144;
  static constexpr int64_t kSegUnits = 408;  // avx2 Q4_0Kernel: (8192 / (10 * 2)) & ~7
  static constexpr int kWVecs = 1;           // dx
  static constexpr int kTScalars = 1;        // dy
  // Dword L of vector j: the levels of values 4j..4j+3 (low nibbles) and 16+4j.. (high).
  static void lines(const uint8_t* grp, int l, __m512i idx, uint8_t* out) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
    for (int j = 0; j < 4; ++j) {
      const __m512i w = gather(idx, grp + 32 * j + 4 * l);
      _mm512_store_si512(out + 64 * j, _mm512_sub_epi8(_mm512_and_si512(w, m4), eight));
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), m4);
      _mm512_store_si512(out + 64 * (j + 4), _mm512_sub_epi8(hi, eight));
    }
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
  static void lines(const uint8_t* grp, int l, __m512i idx, uint8_t* out) {
    for (int m = 0; m < 8; ++m) _mm512_store_si512(out + 64 * m, gather(idx, grp + 32 * m + 4 * l));
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
  static void lines(const uint8_t* grp, int l, __m512i idx, uint8_t* out) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int j = 0; j < 4; ++j) {
      const __m512i w = gather(idx, grp + 32 * j + 4 * l);
      _mm512_store_si512(out + 64 * j, _mm512_and_si512(w, m4));
      _mm512_store_si512(out + 64 * (j + 4), _mm512_and_si512(_mm512_srli_epi16(w, 4), m4));
    }
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
