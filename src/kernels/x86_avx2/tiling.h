// The shared loop structure of every AVX2 matmul_rows / vec_dot: weight rows in register
// tiles of K::kRows, tokens in groups of K::kTokens, tokens chunked so their activations stay
// in L2, and the reduction dimension cut into segments when per-token prepared data (K::kPrep
// floats per block, e.g. the activation scales) would not fit a fixed stack buffer. Products
// with at least K::kGemmMinTokens tokens (prefill, batched decode) use the larger GEMM tile
// K::kGemmRows x K::kGemmTokens: each output's arithmetic is the same in every tile shape, so
// both paths give bit-identical results (batch invariance).
// Include only from the ISA folders' files (see simd.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/x86_avx2/simd.h"

#ifndef QUANTA_ISA_NS
#error "set QUANTA_ISA_NS (the ISA folder's namespace; src/kernels/CMakeLists.txt does)"
#endif

namespace quanta::kernels::QUANTA_ISA_NS {

// Software prefetch distance, in bytes ahead of the current position of each weight row
// (a tile streams kRows rows at once, so about kRows * kPrefetchBytes are requested ahead).
inline constexpr size_t kPrefetchBytes = 1024;
// The reduction is cut into segments of at most kSegFloats / (K::kPrep * K::kTokens) blocks
// (a constant of the kernel: never of the call's shape, so results do not depend on it).
inline constexpr int64_t kSegFloats = 8192;
// Prepared data of one token chunk (stack buffer, 128 KiB): at least the GEMM tile's tokens.
inline constexpr int64_t kPrepBufFloats = 32768;
inline constexpr size_t kActChunkBytes = 256 * 1024;  // activations reused across row tiles

// What one tile call sees: R weight rows starting at `w` and T tokens starting at `act`, both
// positioned at the segment's first block, and the segment's prepared per-token data.
struct TileArgs {
  const uint8_t* w;      // weight row 0 of the tile, at the segment's first block
  size_t row_stride;     // bytes between the tile's weight rows
  size_t next_tile;      // bytes from the tile's row 0 to the next tile's row 0
  const uint8_t* act;    // activation row of token 0 of the group, same block
  size_t act_row_bytes;  // bytes between activation rows
  const float* prep;     // token 0's prepared data: K::kPrep planes of `plane` floats
  int64_t prep_stride;   // floats between tokens in `prep`
  int64_t plane;         // floats per plane (>= nb, a multiple of 8)
  int64_t nb;            // blocks in the segment (values, for the plain float types)
};

// Prefetches `lines` cache lines of each of the R rows, kPrefetchBytes past byte `pos` of
// the segment; past the segment's end it continues into the next tile's rows, so they are
// on their way when this tile finishes. Prefetches never fault.
template <int R>
inline void prefetch_rows(const TileArgs& a, size_t seg_bytes, size_t pos, int lines) {
  size_t off = pos + kPrefetchBytes;
  if (off >= seg_bytes) off += a.next_tile - seg_bytes;
  // Integer addresses: the targets may lie past the weights, which is fine for a prefetch.
  const uintptr_t base = reinterpret_cast<uintptr_t>(a.w) + off;
  for (int i = 0; i < R; ++i) {
    for (int l = 0; l < lines; ++l) {
      prefetch(reinterpret_cast<const uint8_t*>(base + i * a.row_stride + 64 * l));
    }
  }
}

// Calls K::tile<R, nt> for the runtime token count nt <= K::kTokens.
template <class K, int R, int T>
inline void run_tile(int nt, const TileArgs& a, float* out) {
  if constexpr (T > 1) {
    if (nt < T) return run_tile<K, R, T - 1>(nt, a, out);
  }
  K::template tile<R, T>(a, out);
}

constexpr int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}
constexpr int64_t max64(int64_t a, int64_t b) {
  return a > b ? a : b;
}
constexpr int64_t round_up8(int64_t v) {
  return (v + 7) & ~int64_t{7};
}

// Tokens of the register block at token t0 of an nt-token run cut into blocks of 3 and 4
// tokens (the Q4_0x8 and Q4_Kx8 GEMM blocks): nt % 3 blocks of 4 first, then blocks of 3, so
// no block is shorter than 3 tokens unless nt < 3 or nt = 5.
constexpr int block_tokens_3_4(int nt, int t0) {
  const int fours = nt >= 4 && nt != 5 ? nt % 3 : 0;
  if (t0 < 4 * fours) return 4;
  return nt - t0 < 3 ? nt - t0 : 3;
}

// The int16 sums of a register block of R rows x TB tokens over a group of 8 steps, for
// weights stored as 4 vectors of nibble pairs (step m < 4: the low nibbles of vector m, then
// the high nibbles of vector m - 4; kQ4_0x8 groups, kQ4_Kx8 super-blocks), each weight
// vector unpacked once for the TB tokens and each activation vector (y + t * stride + 32 m)
// loaded once for the R rows. kSubtract: s[i][t] -= maddubs(levels of row i, activation
// vector m of token t) from the caller's starting values; else s[i][t] = the sum of the 8.
template <int R, int TB, bool kSubtract>
[[gnu::always_inline]] inline void nibble_block_sums(const uint8_t* const* x, const uint8_t* y,
                                                     size_t stride, __m256i (&s)[R][TB]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  // A plain unrolled loop, not a lambda: through a lambda GCC kept a memory copy of s (dead
  // 32-byte stores per block) and spilled the raw weight vectors (-4%).
#pragma GCC unroll 8
  for (int m = 0; m < 8; ++m) {
    __m256i v[R];
    for (int i = 0; i < R; ++i) {
      const __m256i w = loadu256(x[i] + 32 * (m & 3));
      v[i] = _mm256_and_si256(m < 4 ? w : _mm256_srli_epi16(w, 4), m4);
    }
    for (int t = 0; t < TB; ++t) {
      const __m256i yv = loadu256(y + t * stride + 32 * m);
      for (int i = 0; i < R; ++i) {
        const __m256i prod = _mm256_maddubs_epi16(v[i], yv);
        if constexpr (kSubtract) {
          s[i][t] = _mm256_sub_epi16(s[i][t], prod);
        } else {
          s[i][t] = m == 0 ? prod : _mm256_add_epi16(s[i][t], prod);
        }
        // One running sum per (row, token) in a register: GCC would otherwise reassociate,
        // keep all 8 products live and spill them.
        __asm__("" : "+x"(s[i][t]));
      }
    }
  }
}

// Tokens per chunk of a product: a chunk's activations stay in L2 while every row tile
// reads them, in whole tiles of `tile` tokens, and its prepared data (`prep_floats` per
// token; 0 for none) fits the kPrepBufFloats buffer (whole tiles when it holds one, else a
// partial tile per chunk).
constexpr int64_t chunk_tokens(size_t act_row_bytes, int64_t n_tokens, int64_t tile,
                               int64_t prep_floats) {
  int64_t tc = static_cast<int64_t>(kActChunkBytes / act_row_bytes);
  tc = min64(n_tokens, max64(tile, tc - tc % tile));
  if (prep_floats > 0) {
    const int64_t fit = kPrepBufFloats / prep_floats;
    tc = min64(tc, fit >= tile ? fit - fit % tile : fit);
  }
  return tc;
}

// The full groups of 8 blocks of R rows against T tokens, for kernels on weights repacked
// in groups (K::kGroupBytes per group of a row, K::kGroupFloats prepared floats per group of
// a token): each group's rows are prefetched (kPrefetchLines cache lines each) and run by
// K::group_block in register blocks of K::kBlockTokens tokens (the last block shorter).
template <class K, int kPrefetchLines, int R, int T>
[[gnu::always_inline]] inline void gemm_group_blocks(const TileArgs& a, __m256 (&acc)[R][T]) {
  constexpr int TB = K::kBlockTokens;
  for (int64_t g = 0; g < a.nb / 8; ++g) {
    const uint8_t* grp[R];
    for (int i = 0; i < R; ++i) {
      grp[i] = a.w + i * a.row_stride + g * K::kGroupBytes;
      for (int l = 0; l < kPrefetchLines; ++l) prefetch(grp[i] + kPrefetchBytes + 64 * l);
    }
    const float* prep = a.prep + g * K::kGroupFloats;
    int t0 = 0;
    for (; t0 + TB <= T; t0 += TB) {
      K::template group_block<R, TB, T>(grp, prep + t0 * a.prep_stride, a.prep_stride,
                                        &acc[0][t0]);
    }
    if constexpr (T % TB != 0) {
      K::template group_block<R, T % TB, T>(grp, prep + t0 * a.prep_stride, a.prep_stride,
                                            &acc[0][t0]);
    }
  }
}

// K's kernel with the tile shape R x T (the GEMM configuration of a kernel).
template <class K, int R, int T>
struct Shaped : K {
  static constexpr int kRows = R;
  static constexpr int kTokens = T;
};

// Blocks per segment of the reduction for kernel K (see kSegFloats), or K::kSegBlocks where
// K fixes it (a kernel bit-identical with another one keeps that one's segments).
template <class K>
constexpr int64_t segment_blocks() {
  if constexpr (requires { K::kSegBlocks; }) {
    return K::kSegBlocks;
  } else {
    return K::kPrep > 0 ? (kSegFloats / (K::kPrep * K::kTokens)) & ~int64_t{7} : int64_t{1} << 40;
  }
}

// True for a GEMM shape S of a kernel K whose tiles write y directly:
// S::gemm_tile<R>(args, nt, y, y_stride, row_step, first) computes R rows (S::kRows, or 1 for
// the last rows) x nt <= S::kTokens tokens and stores them at y[t * y_stride + i * row_step]
// when `first` (the reduction's first segment), else adds them: no per-tile output buffer.
// Decode shapes (S = K) keep run_tile.
template <class K, class S>
inline constexpr bool kDirectTiles =
    !std::is_same_v<K, S> && requires(const TileArgs& a, float* y) {
      S::template gemm_tile<1>(a, 1, y, int64_t{}, int64_t{}, true);
    };

// matmul_rows with the tile shape S::kRows x S::kTokens; K (the base kernel) fixes the
// segments of the reduction.
template <class K, class S>
void matmul_rows_shaped(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                        size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                        int64_t row_begin, int64_t row_end) {
  const int64_t nb = k / K::kBlockValues;
  if (nb == 0 || n_tokens <= 0 || row_end <= row_begin) {
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = row_begin; r < row_end; ++r) y[t * y_stride + r] = 0.0f;
    }
    return;
  }
  // Segments of the reduction: as long as the prepared data of a base token group fits
  // kSegFloats. The segment length depends on the kernel only, never on n_tokens, the rows
  // or the tile shape, so each output is computed the same way whatever the call's shape.
  int64_t seg = nb;
  if constexpr (K::kPrep > 0) {
    static_assert(kPrepBufFloats / (K::kPrep * round_up8(segment_blocks<K>())) >= K::kTokens,
                  "the prepared-data buffer must hold a token group");
    seg = min64(nb, segment_blocks<K>());
  }
  const int64_t tc = chunk_tokens(act_row_bytes, n_tokens, S::kTokens, K::kPrep * round_up8(seg));
  alignas(32) float prep[K::kPrep > 0 ? kPrepBufFloats : 1];
  for (int64_t t0 = 0; t0 < n_tokens; t0 += tc) {
    const int64_t ntc = min64(tc, n_tokens - t0);
    for (int64_t b0 = 0; b0 < nb; b0 += seg) {
      const int64_t nbs = min64(seg, nb - b0);
      const int64_t plane = round_up8(nbs);
      const int64_t prep_stride = K::kPrep * plane;
      const size_t w_off = static_cast<size_t>(b0) * K::kWBytes;
      const size_t a_off = static_cast<size_t>(b0) * K::kABytes;
      if constexpr (K::kPrep > 0) {
        for (int64_t t = 0; t < ntc; ++t) {
          K::prepare(act + (t0 + t) * act_row_bytes + a_off, nbs, prep + t * prep_stride, plane);
        }
      }
      // NOTE: a tile's rows are spread out: with q = rows / kRows, tile j holds rows j,
      // j + q, j + 2q, ... of the range, so each row of a tile streams through memory pages
      // of its own. Adjacent rows (1 KiB apart for Q4_0 at k = 2048) interleaved in the same
      // pages defeat the hardware prefetcher and halve the DRAM read rate of decode.
      const int64_t n_rows = row_end - row_begin;
      const int64_t q = n_rows / S::kRows;
      for (int64_t j = 0; j < q + n_rows % S::kRows; ++j) {
        const bool full = j < q;  // the last n_rows % kRows rows go one at a time
        const int64_t r0 = full ? row_begin + j : row_begin + S::kRows * q + (j - q);
        const int64_t row_step = full ? q : 1;
        const int nr = full ? S::kRows : 1;
        for (int64_t tg = 0, nt = 0; tg < ntc; tg += nt) {
          // S::kTokens tokens per tile and a shorter last one, or the kernel's own schedule
          // (S::tile_tokens(chunk tokens, tokens left), at most S::kTokens).
          if constexpr (requires { S::tile_tokens(int64_t{}, int64_t{}); }) {
            nt = S::tile_tokens(ntc, ntc - tg);
          } else {
            nt = min64(S::kTokens, ntc - tg);
          }
          const TileArgs a{w + r0 * row_bytes + w_off,
                           static_cast<size_t>(row_step) * row_bytes,
                           row_bytes,
                           act + (t0 + tg) * act_row_bytes + a_off,
                           act_row_bytes,
                           prep + tg * prep_stride,
                           prep_stride,
                           plane,
                           nbs};
          if constexpr (kDirectTiles<K, S>) {  // the tile writes y itself
            float* dst = y + (t0 + tg) * y_stride + r0;
            const int n = static_cast<int>(nt);
            if (full) {
              S::template gemm_tile<S::kRows>(a, n, dst, y_stride, row_step, b0 == 0);
            } else {
              S::template gemm_tile<1>(a, n, dst, y_stride, 1, b0 == 0);
            }
            continue;
          }
          float out[S::kRows * S::kTokens];  // every tile writes all nr x nt outputs it is given
          if (full) {
            run_tile<S, S::kRows, S::kTokens>(nt, a, out);
          } else {
            run_tile<S, 1, S::kTokens>(nt, a, out);
          }
          for (int i = 0; i < nr; ++i) {
            for (int t = 0; t < nt; ++t) {
              float& dst = y[(t0 + tg + t) * y_stride + r0 + i * row_step];
              dst = b0 == 0 ? out[i * nt + t] : dst + out[i * nt + t];
            }
          }
        }
      }
    }
  }
}

// y[t * y_stride + r] = dot(weight row r, activation row t) for r in [row_begin, row_end),
// t in [0, n_tokens); see KernelTable::matmul_rows. Products of at least K::kGemmMinTokens
// tokens take the GEMM tile shape where the kernel has one.
template <class K>
void matmul_rows(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                 size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                 int64_t row_begin, int64_t row_end) {
  if constexpr (requires { K::kGemmTokens; }) {
    if (n_tokens >= K::kGemmMinTokens) {
      using S = Shaped<K, K::kGemmRows, K::kGemmTokens>;
      return matmul_rows_shaped<K, S>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride,
                                      row_begin, row_end);
    }
  }
  matmul_rows_shaped<K, K>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                           row_end);
}

// One dot product through the same tiles (1 row x 1 token).
template <class K>
float vec_dot(int64_t n, const void* x, const void* y) {
  const int64_t nb = n / K::kBlockValues;
  if (nb == 0) return 0.0f;
  float out = 0.0f;
  matmul_rows<K>(static_cast<const uint8_t*>(x), static_cast<size_t>(nb) * K::kWBytes, n,
                 static_cast<const uint8_t*>(y), static_cast<size_t>(nb) * K::kABytes, 1, &out, 1,
                 0, 1);
  return out;
}

}  // namespace quanta::kernels::QUANTA_ISA_NS

// Defines the exported per-type matmul_rows_<type> of avx2.h from a kernel traits struct.
#define QUANTA_AVX2_DEFINE_ROWS(name, Kernel)                                                      \
  void name(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,                     \
            size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, \
            int64_t row_end) {                                                                     \
    matmul_rows<Kernel>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,     \
                        row_end);                                                                  \
  }

