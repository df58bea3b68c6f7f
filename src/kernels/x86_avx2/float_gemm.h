// Cache-blocked GEMM of the plain float weight types (F32/F16/BF16) for products of several
// tokens (prefill, batched decode), computing every output with exactly the operations of the
// decode tiles in float_dot.cc: 8 lanes along k, one FMA chain per lane over the 64-byte lines
// of a reduction segment, hsum, the partial line's values one at a time, segments added in
// order. Blocking only pauses the lane chains (accumulators kept in memory), so the results
// are bit-identical to decode's whatever the batch, tile or row split.
// Include only from x86_avx2 files (see simd.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/x86_avx2/simd.h"

namespace quanta::kernels::avx2 {

// The end of one output over a segment: the lanes' hsum, then the values of the segment's
// last partial line, [from, to), one at a time. Shared by the decode tiles and the GEMM so
// both round the same way.
template <class F>
inline float finish_output(__m256 acc, const uint8_t* w, const uint8_t* act, int64_t from,
                           int64_t to) {
  float sum = hsum(acc);
  for (int64_t e = from; e < to; ++e) {
    const size_t pos = static_cast<size_t>(e) * F::kElem;
    sum += F::scalar(w + pos) * F::scalar(act + pos);
  }
  return sum;
}

// The blocked product. Loop nest per call:
//   token chunk (up to kChunkBytes of activations per segment: they stay in L2)
//     reduction segment (seg_values: the decode kernel's, so the same partial sums)
//       row block (kBlockRows rows: their weights stay in L2 for the chunk's sub-chunks)
//         sub-chunk (kSubTokens tokens: accumulators kBlockRows x kSubTokens x 8 floats)
//           k-block (kBlockLines lines: the sub-chunk's activations converted to an F32
//                    panel in L1, the tile's weights copied to a panel in L1)
//             row tile (kRows rows) x token group (kTokens tokens), in registers
// A full tile's column (8 values) is kRows weight loads and conversions, kTokens F32 loads
// folded into the kRows * kTokens FMAs. The weights are read from memory once per chunk.
template <class F>
struct FloatGemm {
  static constexpr int kRows = 3;
  static constexpr int kTokens = 4;
  static constexpr int kBlockRows = 48;       // multiple of kRows
  static constexpr int kSubTokens = 16;       // multiple of kTokens
  static constexpr int kMaxChunkTokens = 64;  // multiple of kSubTokens
  static constexpr size_t kChunkBytes = 256 * 1024;
  static constexpr int64_t kBlockLines = 8;  // 64-byte weight lines per row and k-block
  static constexpr int64_t kLineValues = 64 / F::kElem;
  static constexpr int kGroups = kSubTokens / kTokens;
  static constexpr int kTiles = kBlockRows / kRows + kRows - 1;  // + rows left one at a time
  // Weight panel: line l of row i in 64-byte slot 4 * l + i. Activation panel of a group:
  // vector c of line l of token t at [l][c][t] (8 floats), so each load of a column falls
  // into its own slot and the panels never evict each other in L1.
  static constexpr size_t kSlot = 64;
  static constexpr size_t kWLineBytes = 4 * kSlot;
  static constexpr size_t kALineBytes = F::kVecs * kTokens * 32;
  static constexpr size_t kGroupBytes = kBlockLines * kALineBytes;

  struct Scratch {
    __m256 acc[kTiles][kGroups][kRows * kTokens];
    alignas(64) uint8_t act[kGroups * kGroupBytes];
    alignas(64) uint8_t w[kBlockLines * kWLineBytes];
  };

  // R weight rows x T tokens over `lines` lines of the panels; accumulators in acc_mem.
  template <int R, int T>
  [[gnu::noinline]] static void tile(const uint8_t* wp, const uint8_t* ap, int64_t lines,
                                     __m256* acc_mem) {
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = acc_mem[i * kTokens + t];
    }
    for (int64_t l = 0; l < lines; ++l) {
      const uint8_t* wl = wp + l * kWLineBytes;
      const float* al = reinterpret_cast<const float*>(ap + l * kALineBytes);
#pragma GCC unroll 4
      for (int c = 0; c < F::kVecs; ++c) {
        __m256 wv[R];
        for (int i = 0; i < R; ++i) wv[i] = F::vec(wl + i * kSlot, c);
        for (int t = 0; t < T; ++t) {
          const __m256 yv = _mm256_load_ps(al + (c * kTokens + t) * 8);
          for (int i = 0; i < R; ++i) acc[i][t] = _mm256_fmadd_ps(wv[i], yv, acc[i][t]);
        }
      }
    }
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc_mem[i * kTokens + t] = acc[i][t];
    }
  }

  template <int R, int T>
  static void run_tile(int nt, const uint8_t* wp, const uint8_t* ap, int64_t lines,
                       __m256* acc_mem) {
    if constexpr (T > 1) {
      if (nt < T) return run_tile<R, T - 1>(nt, wp, ap, lines, acc_mem);
    }
    tile<R, T>(wp, ap, lines, acc_mem);
  }

  // Copies `lines` lines of n weight rows (stride apart) into slots 4 * l + i of `panel`.
  static void pack_weights(const uint8_t* src, size_t stride, int n, int64_t lines,
                           uint8_t* panel) {
    for (int i = 0; i < n; ++i) {
      for (int64_t l = 0; l < lines; ++l) {
        const uint8_t* s = src + i * stride + l * 64;
        uint8_t* d = panel + l * kWLineBytes + i * kSlot;
        _mm256_store_si256(reinterpret_cast<__m256i*>(d), loadu256(s));
        _mm256_store_si256(reinterpret_cast<__m256i*>(d + 32), loadu256(s + 32));
      }
    }
  }

  // Converts `lines` lines of n tokens (stride apart) into a group's F32 panel.
  static void pack_act(const uint8_t* src, size_t stride, int n, int64_t lines, uint8_t* panel) {
    for (int t = 0; t < n; ++t) {
      for (int64_t l = 0; l < lines; ++l) {
        float* d = reinterpret_cast<float*>(panel + l * kALineBytes);
        for (int c = 0; c < F::kVecs; ++c) {
          _mm256_store_ps(d + (c * kTokens + t) * 8, F::vec(src + t * stride + l * 64, c));
        }
      }
    }
  }

  // First row of tile j of a block of nr rows from r0: full tiles of kRows rows, then the
  // remaining nr % kRows rows one at a time.
  static int64_t tile_row(int64_t r0, int j, int full_tiles) {
    return j < full_tiles ? r0 + j * kRows : r0 + full_tiles * kRows + (j - full_tiles);
  }

  // Rows [r0, r0 + nr) x tokens [0, ntc) (act, y at the sub-chunk's first token), segment
  // [v0, v0 + nv) of the reduction: the full lines blocked, then each output finished.
  static void block(const uint8_t* w, size_t row_bytes, const uint8_t* act,
                    size_t act_row_bytes, int ntc, float* y, int64_t y_stride, int64_t r0,
                    int nr, int64_t v0, int64_t nv, Scratch& s) {
    const int full_tiles = nr / kRows;
    const int n_tiles = full_tiles + nr % kRows;
    const int n_groups = (ntc + kTokens - 1) / kTokens;
    for (int j = 0; j < n_tiles; ++j) {
      for (int g = 0; g < n_groups; ++g) {
        for (int e = 0; e < kRows * kTokens; ++e) s.acc[j][g][e] = _mm256_setzero_ps();
      }
    }
    const int64_t lines = nv / kLineValues;
    const size_t seg_off = static_cast<size_t>(v0) * F::kElem;
    for (int64_t l0 = 0; l0 < lines; l0 += kBlockLines) {
      const int64_t nl = lines - l0 < kBlockLines ? lines - l0 : kBlockLines;
      const size_t off = seg_off + static_cast<size_t>(l0) * 64;
      for (int g = 0; g < n_groups; ++g) {
        const int nt = ntc - g * kTokens < kTokens ? ntc - g * kTokens : kTokens;
        pack_act(act + static_cast<size_t>(g) * kTokens * act_row_bytes + off, act_row_bytes, nt,
                 nl, s.act + g * kGroupBytes);
      }
      for (int j = 0; j < n_tiles; ++j) {
        const int rows_here = j < full_tiles ? kRows : 1;
        const uint8_t* wt = w + tile_row(r0, j, full_tiles) * row_bytes + off;
        pack_weights(wt, row_bytes, rows_here, nl, s.w);
        for (int i = 0; i < rows_here; ++i) {  // the next k-block of these rows, into L2
          for (int64_t b = 0; b < kBlockLines; ++b) {
            const uint8_t* p = wt + i * row_bytes + (kBlockLines + b) * 64;
            _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
          }
        }
        for (int g = 0; g < n_groups; ++g) {
          const int nt = ntc - g * kTokens < kTokens ? ntc - g * kTokens : kTokens;
          const uint8_t* ap = s.act + g * kGroupBytes;
          if (rows_here == kRows) {
            run_tile<kRows, kTokens>(nt, s.w, ap, nl, s.acc[j][g]);
          } else {
            run_tile<1, kTokens>(nt, s.w, ap, nl, s.acc[j][g]);
          }
        }
      }
    }
    const int64_t tail_from = v0 + lines * kLineValues;
    for (int j = 0; j < n_tiles; ++j) {
      const int rows_here = j < full_tiles ? kRows : 1;
      const int64_t row = tile_row(r0, j, full_tiles);
      for (int i = 0; i < rows_here; ++i) {
        for (int t = 0; t < ntc; ++t) {
          const __m256 a = s.acc[j][t / kTokens][i * kTokens + t % kTokens];
          const float out = finish_output<F>(a, w + (row + i) * row_bytes,
                                             act + static_cast<size_t>(t) * act_row_bytes,
                                             tail_from, v0 + nv);
          float& dst = y[t * y_stride + row + i];
          dst = v0 == 0 ? out : dst + out;  // segments added in order, as decode does
        }
      }
    }
  }

  // y[t * y_stride + r] for rows [row_begin, row_end) and n_tokens tokens; the reduction of
  // k values cut into segments of seg_values (a multiple of kLineValues).
  static void run(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                  size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                  int64_t row_begin, int64_t row_end, int64_t seg_values) {
    alignas(64) Scratch s;
    const int64_t seg_bytes = (k < seg_values ? k : seg_values) * static_cast<int64_t>(F::kElem);
    int64_t chunk = static_cast<int64_t>(kChunkBytes) / seg_bytes;
    chunk = chunk < kSubTokens ? kSubTokens : chunk > kMaxChunkTokens ? kMaxChunkTokens : chunk;
    chunk -= chunk % kSubTokens;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += chunk) {
      const int64_t ntc = n_tokens - t0 < chunk ? n_tokens - t0 : chunk;
      for (int64_t v0 = 0; v0 < k; v0 += seg_values) {
        const int64_t nv = k - v0 < seg_values ? k - v0 : seg_values;
        for (int64_t r0 = row_begin; r0 < row_end; r0 += kBlockRows) {
          const int nr = static_cast<int>(row_end - r0 < kBlockRows ? row_end - r0 : kBlockRows);
          for (int64_t u0 = t0; u0 < t0 + ntc; u0 += kSubTokens) {
            const int nu = static_cast<int>(t0 + ntc - u0 < kSubTokens ? t0 + ntc - u0 : kSubTokens);
            block(w, row_bytes, act + static_cast<size_t>(u0) * act_row_bytes, act_row_bytes, nu,
                  y + u0 * y_stride, y_stride, r0, nr, v0, nv, s);
          }
        }
      }
    }
  }
};

}  // namespace quanta::kernels::avx2
