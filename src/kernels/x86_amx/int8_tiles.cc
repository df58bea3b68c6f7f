// AMX products of Q4_0, Q8_0 and Q4_K weights (layouts kQ4_0x8 / kQ8_0x8 / kQ4_Kx8,
// kernels/repack.h) against Q8_0 / Q8_K activations, bit-identical with the avx2 and VNNI
// kernels, for products with many tokens (prefill, batched decode); fewer tokens go to the
// base table's kernel. Per unit of 32 values (int8_formats.h), one tdpbssd gives the exact
// int32 sums S of 16 tokens x 16 weight rows (A: the tokens' quants, packed once per call into
// a 512-byte tile per token tile and unit; B: the rows' quants as int8, unpacked once per call
// into a tile per unit: the table marks these layouts wants_all_tokens, so the ops split
// rows, not tokens). Then, on 16-row vectors, the avx2 kernels' float steps in their order:
// per segment of the reduction (the avx2 kernel's), the format's step per unit into lane
// L = unit within its group of 8, over the groups, then out = ((acc0 + acc4) + (acc2 + acc6))
// + ((acc1 + acc5) + (acc3 + acc7)) (simd.h's hsum), stored by the first segment and added by
// the others.
#include <immintrin.h>

#include <cstring>

#include "core/error.h"
#include "kernels/x86_amx/amx.h"
#include "kernels/x86_amx/int8_formats.h"
#include "kernels/x86_amx/tile_config.h"
#include "kernels/x86_avx2/simd.h"

namespace quanta::kernels::QUANTA_ISA_NS {
namespace {

// The token chunk's activations packed as A tiles (kept in L2 across row tiles) and their
// per-unit scalars.
constexpr size_t kPackedActBytes = 1024 * 1024;
constexpr int64_t kMaxTokenFloats = kMaxTScalars * kPackedActBytes / 32;
// Fewest tokens worth unpacking the weights for (fewer: the base table's kernel). One thread,
// 2048 x 2048 (dev/gemm/gemm_bench): AMX 196 against VNNI 157 GMAC/s at 32 tokens, 146 against
// 163 at 16.
constexpr int64_t kAmxMinTokens = 32;

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
  // Gather offsets of the 16 rows' scales (rows past n repeat row 0; `live` zeroes them).
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
    F::group_lines(grp, row_bytes, n, b_tiles + kTileBytes * 8 * g);
    for (int l = 0; l < 8; ++l) {
      F::row_vectors(grp, l, idx, live, wv + kTile * F::kWVecs * (8 * g + l));
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
    store_tile(static_cast<int>(j % 4), &c[0][0], 64);  // C tile j % 4
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
// of 8 units (the avx2 tail blocks keep their own lanes), and a token tile's packed
// activations within the buffer (k <= 65536).
bool use_tiles(int64_t k, int64_t n_tokens) {
  const int64_t tile_bytes = k / 32 * static_cast<int64_t>(kTileBytes);
  return n_tokens >= kAmxMinTokens && k % 256 == 0 &&
         tile_bytes <= static_cast<int64_t>(kPackedActBytes);
}

// The kernel-table entry's body: the tiles, or the base table's kernel for the calls they
// leave to it.
template <class F>
void rows_or_base(MatmulRowsFn base, GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                  const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                  int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(base != nullptr);
  if (!use_tiles(k, n_tokens) || row_end <= row_begin) {
    return base(type, w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                row_end);
  }
  amx_rows<F>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin, row_end);
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
  QUANTA_ASSERT(type == GgmlType::Q4_0);
  rows_or_base<Q4_0Tiles>(g_base_q4_0x8, type, w, row_bytes, k, act, act_row_bytes, n_tokens, y,
                          y_stride, row_begin, row_end);
}

void matmul_rows_packed_q8_0x8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::Q8_0);
  rows_or_base<Q8_0Tiles>(g_base_q8_0x8, type, w, row_bytes, k, act, act_row_bytes, n_tokens, y,
                          y_stride, row_begin, row_end);
}

void matmul_rows_packed_q4_Kx8(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                               const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                               int64_t y_stride, int64_t row_begin, int64_t row_end) {
  QUANTA_ASSERT(type == GgmlType::Q4_K);
  rows_or_base<Q4_KTiles>(g_base_q4_Kx8, type, w, row_bytes, k, act, act_row_bytes, n_tokens, y,
                          y_stride, row_begin, row_end);
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
