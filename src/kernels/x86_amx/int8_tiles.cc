// AMX products of Q4_0 and Q8_0 weights (layouts kQ4_0x8 / kQ8_0x8, kernels/repack.h)
// against Q8_0 activations, bit-identical with the avx2 and VNNI kernels, for products with
// many tokens (prefill, batched decode); fewer tokens go to the base table's kernel.
// Per block of 32 values, one tdpbssd gives the exact int32 dot products S of 16 tokens x
// 16 weight rows (A: the tokens' Q8_0 quants, packed once per call into a 512-byte tile per
// token tile and block; B: the rows' quants as int8, unpacked once per call into a tile per
// block: the table marks these layouts rearranges_weights, so the ops split rows, not tokens).
// Then, on 16-row vectors, the avx2 kernels' float steps in their order: per segment of the
// reduction (the avx2 kernel's), acc_L = fma(float(S), dx * dy, acc_L) over the groups of 8 blocks
// for each lane L = block within the group, out = ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5)
// + (acc3 + acc7)) (simd.h's hsum), stored by the first segment and added by the others.
#include <immintrin.h>

#include <cstring>

#include "core/error.h"
#include "kernels/x86_amx/amx.h"
#include "kernels/x86_avx2/simd.h"

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

constexpr int64_t kTile = 16;          // tokens per A / C tile, weight rows per B / C tile
constexpr size_t kBlockBytes = 34;     // a Q8_0 block: f16 d, 32 int8 quants
constexpr size_t kTileBytes = 512;     // a block's A tile (16 tokens x 32) or B tile (8 x 64)
constexpr int64_t kMaxSegUnits = 448;  // the longest avx2 segment (Q4_K: 56 super-blocks)
constexpr int kMaxWVecs = 3;           // row vectors per unit (Q4_K)
constexpr int kMaxTScalars = 2;        // token scalars per unit (Q4_K)
// The token chunk's activations packed as A tiles (kept in L2 across row tiles) and their
// block scales.
constexpr size_t kPackedActBytes = 1024 * 1024;
constexpr int64_t kMaxTokenFloats = kMaxTScalars * kPackedActBytes / 32;
// Fewest tokens worth unpacking the weights for (fewer: the base table's kernel). One thread,
// 2048 x 2048 (dev/gemm/gemm_bench): AMX 196 against VNNI 157 GMAC/s at 32 tokens, 146 against
// 163 at 16.
constexpr int64_t kAmxMinTokens = 32;

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

// The LDTILECFG operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0-3: C (nt tokens x 16 rows, int32); 4, 5: A (nt tokens x 32 quants); 6, 7: B (8 lines
// of 16 dwords).
void configure(int nt) {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = static_cast<uint8_t>(t < 6 ? nt : 8);
    cfg.colsb[t] = static_cast<uint16_t>(t >= 4 && t < 6 ? 32 : 64);
  }
  _tile_loadconfig(&cfg);
}

// Rows r0.. (n of them, <= 16; missing rows are zeros) over units [u0, u0 + nus) as B tiles
// (unit u at b_tiles + 512 (u - u0)) and their row vectors (wv + 16 kWVecs (u - u0)).
template <class F>
void unpack_rows(const uint8_t* w, size_t row_bytes, int64_t r0, int n, int64_t u0, int64_t nus,
                 uint8_t* b_tiles, float* wv) {
  // Gather offsets of the 16 rows (rows past n repeat row 0; their lines are zeroed below).
  alignas(64) int32_t offsets[kTile];
  for (int i = 0; i < kTile; ++i) offsets[i] = static_cast<int32_t>((i < n ? i : 0) * row_bytes);
  const __m512i idx = _mm512_load_si512(offsets);
  const __mmask16 live = static_cast<__mmask16>((1u << n) - 1);
  const uint8_t* base = w + static_cast<size_t>(r0) * row_bytes;
  constexpr int64_t kAhead = 2;  // groups prefetched ahead in each row
  for (int64_t g = 0; g < nus / 8; ++g) {
    const uint8_t* grp = base + static_cast<size_t>(u0 / 8 + g) * F::kGroupBytes;
    if (g + kAhead < nus / 8) {
      for (int i = 0; i < n; ++i) {
        for (size_t off = 0; off < F::kGroupBytes; off += 64) {
          prefetch(grp + kAhead * F::kGroupBytes + i * row_bytes + off);
        }
      }
    }
    for (int l = 0; l < 8; ++l) {
      uint8_t* tile = b_tiles + kTileBytes * (8 * g + l);
      F::lines(grp, l, idx, tile);
      F::row_vectors(grp, l, idx, live, wv + kTile * F::kWVecs * (8 * g + l));
      if (n < kTile) {
        for (int m = 0; m < 8; ++m) {
          __m512i* line = reinterpret_cast<__m512i*>(tile + 64 * m);
          _mm512_store_si512(line, _mm512_maskz_mov_epi32(live, _mm512_load_si512(line)));
        }
      }
    }
  }
}

// The activations of nt <= 16 tokens (rows at act, ab apart) as A tiles, unit u at
// a_tiles + 512 u (token t's 32 quants at 32 t; missing tokens are zeros), and their scalars
// ts[16 (kTScalars u + s) + t].
template <class F>
void pack_tokens(const uint8_t* act, size_t ab, int nt, int64_t nu, uint8_t* a_tiles, float* ts) {
  for (int64_t u = 0; u < nu; ++u) {
    uint8_t* tile = a_tiles + kTileBytes * u;
    float* tu = ts + kTile * F::kTScalars * u;
    for (int t = 0; t < kTile; ++t) {
      float scalars[kMaxTScalars] = {};
      if (t < nt) {
        const uint8_t* row = act + t * ab;
        std::memcpy(tile + 32 * t, F::act_quants(row, u), 32);
        F::token_scalars(row, u, scalars);
      } else {
        std::memset(tile + 32 * t, 0, 32);
      }
      for (int i = 0; i < F::kTScalars; ++i) tu[kTile * i + t] = scalars[i];
    }
  }
}

// Block j of a tile's schedule into C tile j % 4 (A, B through tiles 4 + j % 2, 6 + j % 2).
void issue(int64_t j, const uint8_t* a_tile, const uint8_t* b_tile) {
  constexpr long kA = 32, kB = 64;  // bytes per tile row
  switch (j % 4) {
    case 0:
      _tile_zero(0);
      _tile_loadd(4, a_tile, kA);
      _tile_loadd(6, b_tile, kB);
      _tile_dpbssd(0, 4, 6);
      break;
    case 1:
      _tile_zero(1);
      _tile_loadd(5, a_tile, kA);
      _tile_loadd(7, b_tile, kB);
      _tile_dpbssd(1, 5, 7);
      break;
    case 2:
      _tile_zero(2);
      _tile_loadd(4, a_tile, kA);
      _tile_loadd(6, b_tile, kB);
      _tile_dpbssd(2, 4, 6);
      break;
    default:
      _tile_zero(3);
      _tile_loadd(5, a_tile, kA);
      _tile_loadd(7, b_tile, kB);
      _tile_dpbssd(3, 5, 7);
      break;
  }
}

// C tile j % 4 into c (16 x 16 int32).
void collect(int64_t j, int32_t* c) {
  switch (j % 4) {
    case 0:
      _tile_stored(0, c, 64);
      break;
    case 1:
      _tile_stored(1, c, 64);
      break;
    case 2:
      _tile_stored(2, c, 64);
      break;
    default:
      _tile_stored(3, c, 64);
      break;
  }
}

// One tile of nt tokens (packed: a_tiles, ts) x 16 rows (b_tiles, wv) over the segment's
// nus units (a multiple of 8), taken lane by lane (unit j of the schedule: L = j / G,
// u = 8 (j % G) + L, G = nus / 8) with two units' tile products in flight while the float
// steps of a third run: the sums of the 8 lanes' chains into out[t][16].
template <class F>
void segment_tile(const uint8_t* a_tiles, const float* ts, int nt, int64_t nus,
                  const uint8_t* b_tiles, const float* wv, float* out) {
  alignas(64) float lanes[8][kTile][kTile];  // [L][token][row]
  alignas(64) int32_t c[kTile][kTile];
  const int64_t per_lane = nus / 8, n = nus;
  const auto unit = [per_lane](int64_t j) { return 8 * (j % per_lane) + j / per_lane; };
  constexpr int64_t kInFlight = 2;
  for (int64_t j = 0; j < kInFlight && j < n; ++j) {
    issue(j, a_tiles + kTileBytes * unit(j), b_tiles + kTileBytes * unit(j));
  }
  __m512 acc[kTile];
  for (int64_t j = 0; j < n; ++j) {
    collect(j, &c[0][0]);
    if (j + kInFlight < n) {
      const int64_t u = unit(j + kInFlight);
      issue(j + kInFlight, a_tiles + kTileBytes * u, b_tiles + kTileBytes * u);
    }
    if (j % per_lane == 0) {
      for (int t = 0; t < kTile; ++t) acc[t] = _mm512_setzero_ps();
    }
    const int64_t u = unit(j);
    const float* wu = wv + kTile * F::kWVecs * u;
    const float* tu = ts + kTile * F::kTScalars * u;
    for (int t = 0; t < nt; ++t) {
      // (full mask: GCC 12 warns on the plain _mm512_cvtepi32_ps)
      const __m512 sum = _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_load_si512(c[t]));
      acc[t] = F::step(acc[t], sum, wu, tu, t);
    }
    if (j % per_lane == per_lane - 1) {
      for (int t = 0; t < nt; ++t) _mm512_store_ps(lanes[j / per_lane][t], acc[t]);
    }
  }
  for (int t = 0; t < nt; ++t) {
    __m512 v[8];
    for (int l = 0; l < 8; ++l) v[l] = _mm512_load_ps(lanes[l][t]);
    const __m512 even = _mm512_add_ps(_mm512_add_ps(v[0], v[4]), _mm512_add_ps(v[2], v[6]));
    const __m512 odd = _mm512_add_ps(_mm512_add_ps(v[1], v[5]), _mm512_add_ps(v[3], v[7]));
    _mm512_store_ps(out + kTile * t, _mm512_add_ps(even, odd));
  }
}

template <class F>
void amx_rows(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act, size_t ab,
              int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  const int64_t nu = k / 32;
  // Static TLS (1.5 MiB of each thread's stack mapping, touched only by threads that run
  // this): buffers on the heap instead ran Q4_0 pp512 5% slower (303-311 against 325 t/s).
  alignas(64) static thread_local uint8_t b_tiles[kMaxSegUnits * kTileBytes];
  alignas(64) static thread_local float wv[kMaxSegUnits * kMaxWVecs * kTile];
  alignas(64) static thread_local uint8_t a_tiles[kPackedActBytes];
  alignas(64) static thread_local float ts[kMaxTokenFloats];
  alignas(64) float out[kTile * kTile];
  // Token chunks of whole tiles whose packed activations fit a_tiles (and their scalars ts).
  const int64_t tile_bytes = static_cast<int64_t>(kTileBytes) * nu;  // one token tile, packed
  const int64_t tile_floats = kTile * F::kTScalars * nu;
  QUANTA_ASSERT(tile_bytes <= static_cast<int64_t>(kPackedActBytes));
  const int64_t tc = kTile * (static_cast<int64_t>(kPackedActBytes) / tile_bytes);
  int configured = -1;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += tc) {
    const int64_t ntc = n_tokens - t0 < tc ? n_tokens - t0 : tc;
    for (int64_t tt = 0; tt < ntc; tt += kTile) {
      const int nt = static_cast<int>(ntc - tt < kTile ? ntc - tt : kTile);
      pack_tokens<F>(act + (t0 + tt) * ab, ab, nt, nu, a_tiles + tt / kTile * tile_bytes,
                     ts + tt / kTile * tile_floats);
    }
    for (int64_t r0 = row_begin; r0 < row_end; r0 += kTile) {
      const int n = static_cast<int>(row_end - r0 < kTile ? row_end - r0 : kTile);
      for (int64_t u0 = 0; u0 < nu; u0 += F::kSegUnits) {
        const int64_t nus = nu - u0 < F::kSegUnits ? nu - u0 : F::kSegUnits;
        unpack_rows<F>(w, row_bytes, r0, n, u0, nus, b_tiles, wv);
        for (int64_t tt = 0; tt < ntc; tt += kTile) {
          const int nt = static_cast<int>(ntc - tt < kTile ? ntc - tt : kTile);
          if (nt != configured) {
            configure(nt);
            configured = nt;
          }
          const uint8_t* tiles = a_tiles + tt / kTile * tile_bytes + kTileBytes * u0;
          const float* scalars = ts + tt / kTile * tile_floats + kTile * F::kTScalars * u0;
          segment_tile<F>(tiles, scalars, nt, nus, b_tiles, wv, out);
          const int64_t tok = t0 + tt;
          for (int t = 0; t < nt; ++t) {
            float* dst = y + (tok + t) * y_stride + r0;
            const float* src = out + kTile * t;
            for (int i = 0; i < n; ++i) dst[i] = u0 == 0 ? src[i] : dst[i] + src[i];
          }
        }
      }
    }
  }
  _tile_release();
}

// The base table's kernels, for the calls this file leaves to them (fill_table sets them).
MatmulRowsFn g_base_q4_0x8 = nullptr;
MatmulRowsFn g_base_q8_0x8 = nullptr;
MatmulRowsFn g_base_q4_Kx8 = nullptr;

// Whether a call runs on AMX: enough tokens to amortize unpacking the weights, whole groups
// of 8 blocks (the avx2 tail blocks keep their own lanes).
bool use_tiles(int64_t k, int64_t n_tokens) {
  return n_tokens >= kAmxMinTokens && k % 256 == 0;
}

}  // namespace

void set_int8_base_kernels(MatmulRowsFn q4_0x8, MatmulRowsFn q8_0x8, MatmulRowsFn q4_Kx8) {
  g_base_q4_0x8 = q4_0x8;
  g_base_q8_0x8 = q8_0x8;
  g_base_q4_Kx8 = q4_Kx8;
}

void matmul_rows_packed_q4_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::Q4_0 && g_base_q4_0x8 != nullptr);
  if (!use_tiles(k, n_tokens) || row_end <= row_begin) {
    return g_base_q4_0x8(type, w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride,
                         row_begin, row_end);
  }
  amx_rows<Q4_0Tiles>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                      row_end);
}

void matmul_rows_packed_q8_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::Q8_0 && g_base_q8_0x8 != nullptr);
  if (!use_tiles(k, n_tokens) || row_end <= row_begin) {
    return g_base_q8_0x8(type, w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride,
                         row_begin, row_end);
  }
  amx_rows<Q8_0Tiles>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                      row_end);
}

void matmul_rows_packed_q4_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::Q4_K && g_base_q4_Kx8 != nullptr);
  if (!use_tiles(k, n_tokens) || row_end <= row_begin) {
    return g_base_q4_Kx8(type, w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride,
                         row_begin, row_end);
  }
  amx_rows<Q4_KTiles>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                      row_end);
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
